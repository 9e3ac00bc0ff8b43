"""Peak resident memory of `EarlyExitRunner`, measured in a fresh process.

Each measurement runs in its own Python process that imports only NumPy,
the LiteRT interpreter and `tfcompress/dynamic/runner.py` (loaded from its
file, so that neither TensorFlow nor the rest of tfcompress is resident).
After the imports and the inputs are loaded, the kernel's high-water mark
of resident memory is reset (`/proc/self/clear_refs`, value 5, Linux 4.0+)
and the current resident size noted; the runner is then built and runs
every example; the high-water mark (`VmHWM` in `/proc/self/status`) is
read at the end. The difference is what the model and its runs added at
their peak: measured by the kernel, not estimated from file sizes.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from tfcompress.dynamic import runner as runner_module
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

_SCRIPT = r"""
import importlib.util, json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter  # noqa: F401

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

spec = importlib.util.spec_from_file_location("early_exit_runner", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
args = json.loads(sys.argv[2])
x = np.load(args["inputs"])
reset = True
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    reset = False
baseline = status("VmRSS")
high_before = status("VmHWM")
runner = module.EarlyExitRunner(
    args["stages"], [float(t) for t in args["thresholds"]],
    staged=args["staged"], num_threads=1)
_, exits = runner.predict(x, batch_size=args["batch_size"])
print(json.dumps({"peak": status("VmHWM"), "baseline": baseline,
                  "reset": reset, "high_before": high_before,
                  "examples": int(len(x)),
                  "exits": np.bincount(exits).tolist()}))
"""


@dataclasses.dataclass(frozen=True)
class PeakMemory(Row):
    """Resident memory of one way of running the stages.

    Attributes:
        name: A label (`"staged"`, `"whole"`, ...).
        peak_bytes: High-water mark of the process's resident memory
            during the run.
        baseline_bytes: Resident memory before the runner was built
            (interpreter library, NumPy, the inputs).
        examples: Examples run.
        reset: Whether the high-water mark could be reset before the run;
            if not, `peak_bytes` may include the imports' own peak.
    """

    name: str
    peak_bytes: int
    baseline_bytes: int
    examples: int
    reset: bool

    summary = ("added_bytes",)

    @property
    def added_bytes(self):
        """Peak minus baseline: what loading and running the model added."""
        return self.peak_bytes - self.baseline_bytes


@dataclasses.dataclass(frozen=True, repr=False)
class PeakMemoryReport(Report):
    """Peak resident memory of several ways of running the stages."""

    rows: tuple

    def table(self):
        return "\n".join(
            format_table(
                ["mode", "peak RSS", "baseline", "added", "examples"],
                [
                    [
                        row.name,
                        f"{row.peak_bytes:,}",
                        f"{row.baseline_bytes:,}",
                        f"{row.added_bytes:,}",
                        row.examples,
                    ]
                    for row in self.rows
                ],
            )
        )


def measure_peak_memory(modes, x, thresholds, *, batch_size=1):
    """Measures the peak resident memory of `EarlyExitRunner` per mode.

    Args:
        modes: `{label: (stages, staged)}`: the runner's `stages` argument
            (per-stage files or one multi-signature file) and its `staged`
            flag, e.g. `{"staged": (export.paths, True), "whole":
            (export.single_file, False)}`.
        x: The inputs to run, an array.
        thresholds: The exits' thresholds.
        batch_size: Examples per batch. Defaults to `1`, an on-device
            stream.

    Returns:
        A `PeakMemoryReport`, one `PeakMemory` row per mode.

    Raises:
        RuntimeError: If a measuring process fails; its error output is in
            the message.
    """
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        inputs = os.path.join(scratch, "inputs.npy")
        np.save(inputs, np.asarray(x, np.float32))
        for name, (stages, staged) in modes.items():
            if isinstance(stages, str):
                stages = [stages]
            args = dict(
                inputs=inputs,
                stages=[str(path) for path in stages],
                thresholds=[float(t) for t in thresholds],
                staged=bool(staged),
                batch_size=int(batch_size),
            )
            result = subprocess.run(
                [sys.executable, "-c", _SCRIPT, runner_module.__file__,
                 json.dumps(args)],
                capture_output=True,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"Measuring {name!r} failed:\n{result.stderr[-2000:]}"
                )
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(
                PeakMemory(
                    name=name,
                    peak_bytes=measured["peak"],
                    baseline_bytes=measured["baseline"],
                    examples=measured["examples"],
                    reset=measured["reset"],
                )
            )
    return PeakMemoryReport(rows=tuple(rows))
