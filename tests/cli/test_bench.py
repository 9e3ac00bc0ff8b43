"""`tfcompress bench`: files timed side by side, ratios to the first."""

import json
import os

from tests.cli.conftest import run_cli


def test_two_files_side_by_side(cli_files, capsys):
    float32, int8 = cli_files["float32"], cli_files["int8"]
    code, stdout, err = run_cli(
        capsys, "bench", float32, int8, "--runs", "5", "--rounds", "1",
        "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    first, second = result["files"]
    assert [first["path"], second["path"]] == [str(float32), str(int8)]
    assert first["size_ratio"] == first["latency_ratio"] == 1.0
    assert second["size_bytes"] == os.path.getsize(int8)
    assert second["size_ratio"] == os.path.getsize(int8) / os.path.getsize(
        float32
    )
    assert (first["integer_ops"], second["integer_ops"]) == (0, 2)
    assert second["latency_ratio"] == second["median_ms"] / first["median_ms"]

    code, stdout, _ = run_cli(capsys, "bench", float32, "--runs", "5")
    assert code == 0
    assert "latency ratio" in stdout and "1.00x" in stdout


def test_bench_bad_inputs(tmp_path, cli_files, capsys):
    for args, message in [
        ([cli_files["int8"], cli_files["int8"]], "is listed twice"),
        ([cli_files["int8"], cli_files["x"]], "expected a .tflite file"),
        ([tmp_path / "missing.tflite"], "no such file"),
    ]:
        code, stdout, err = run_cli(capsys, "bench", *args)
        assert code == 2
        assert message in err and stdout == ""
