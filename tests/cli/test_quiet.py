"""Quiet by default: no TensorFlow, converter or LiteRT C++ log lines.

Two runs of `python -m tfcompress` in a subprocess (the only way to see
what TensorFlow prints while it is imported, before any of tfcompress's
code runs), one in this process to see `--verbose` let them through.
"""

import os
import re
import subprocess
import sys

from tests.cli.conftest import run_cli
from tfcompress import native_stderr

# What TensorFlow 2.21, its converter and LiteRT print from C++ (measured:
# about two dozen lines on an import, an int8 export and a LiteRT run,
# `TF_CPP_MIN_LOG_LEVEL=3` or not).
NATIVE_LOG = re.compile(
    r"^[IWE]\d{4} |fully_quantize|XNNPACK|absl::InitializeLog|"
    r"oneDNN|cuda|cpu_feature_guard|This TensorFlow binary",
    re.MULTILINE,
)


def run_command(*args, cwd):
    env = dict(os.environ)
    # The user's shell does not set it: the command must not need it.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", "tfcompress", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_export_and_verify_print_no_native_log_lines(tmp_path, cli_files):
    out = tmp_path / "quiet_int8.tflite"
    export = run_command(
        "export", cli_files["model"], "--quantization", "int8",
        "--data", cli_files["x"], "-o", out, cwd=tmp_path,
    )
    assert export.returncode == 0, export.stderr
    assert NATIVE_LOG.findall(export.stderr + export.stdout) == []
    assert export.stdout.startswith(f"{out} (int8): ")
    # One timed progress line per step, then "done".
    steps = export.stderr.splitlines()
    assert all(re.match(r"\[ *\d+\.\d+s\] ", line) for line in steps), steps
    assert "int8: 2 of 2 weighted ops integer" in export.stderr
    assert steps[-1].endswith("] done")
    assert "Warning" not in export.stderr

    verify = run_command(
        "verify", cli_files["model"], out, "--data", cli_files["x"],
        cwd=tmp_path,
    )
    assert verify.returncode == 0, verify.stderr
    assert NATIVE_LOG.findall(verify.stderr + verify.stdout) == []
    assert "top1_agreement" in verify.stdout


def test_verbose_shows_the_native_lines(tmp_path, cli_files, capfd):
    args = ["export", cli_files["model"], "--quantization", "int8",
            "--data", cli_files["x"]]
    code, _, quiet_err = run_cli(capfd, *args, "-o", tmp_path / "a.tflite")
    assert code == 0
    assert "fully_quantize" not in quiet_err
    assert "exporting int8 TFLite" in quiet_err
    code, _, verbose_err = run_cli(
        capfd, *args, "-o", tmp_path / "b.tflite", "--verbose"
    )
    assert code == 0
    assert "fully_quantize: 0" in verbose_err


def test_the_command_line_is_recognized():
    quiet = native_stderr.quiet_command_line
    assert quiet(["/venv/bin/tfcompress", "demo"], [])
    assert not quiet(["/venv/bin/tfcompress", "demo", "--verbose"], [])
    # `python -m tfcompress`, while the package is imported.
    assert quiet(["-m", "export"], ["python", "-m", "tfcompress", "export"])
    assert not quiet(["-m"], ["python", "-m", "pytest"])
    assert not quiet(["train.py"], ["python", "train.py"])
