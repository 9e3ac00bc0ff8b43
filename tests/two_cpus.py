"""Running a script on two logical CPU devices, for MirroredStrategy tests."""

import os
import subprocess
import sys
import textwrap

# Logical devices must be configured before TensorFlow starts, so the
# script runs in a fresh interpreter that does this first.
_PRELUDE = """\
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def run_on_two_cpus(body, tmp_path, timeout=300):
    """Runs `body` after splitting the CPU in two; returns its stdout lines.

    Fails the test, with the end of stderr, if the script fails.
    """
    script = tmp_path / "two_cpus.py"
    script.write_text(_PRELUDE + textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()
