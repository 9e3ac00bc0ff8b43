"""`tfcompress inspect`: ops, dtypes, int8 share and sizes of a file."""

import json
import os

from tests.cli.conftest import run_cli


def test_inspect_int8_file(cli_files, capsys):
    path = cli_files["int8"]
    code, stdout, _ = run_cli(capsys, "inspect", path)
    assert code == 0
    size = os.path.getsize(path)
    assert stdout.startswith(f"{path}: {size:,} bytes, ")
    assert "2 of 2 weighted ops integer, 100.0% of weight bytes int8" in stdout
    assert "FULLY_CONNECTED  RELU" in stdout

    code, stdout, _ = run_cli(capsys, "inspect", path, "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["size_bytes"] == size
    assert 0 < result["gzipped_size_bytes"] < size
    assert result["op_counts"] == {
        "QUANTIZE": 1,
        "FULLY_CONNECTED": 2,
        "DEQUANTIZE": 1,
    }
    assert result["input_dtypes"] == ["float32"]
    assert result["precision"]["num_integer_ops"] == 2
    assert len(result["inspection"]["ops"]) == 4


def test_inspect_float_file_has_no_integer_ops(cli_files, capsys):
    code, stdout, _ = run_cli(capsys, "inspect", cli_files["float32"], "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["precision"]["num_integer_ops"] == 0
    # Both kernels, 4 bytes a weight (and biases, where stored).
    (dtype, size), = result["weight_bytes_by_dtype"].items()
    assert dtype == "float32" and size >= 4 * (16 * 6 + 4 * 16)


def test_inspect_bad_files(tmp_path, cli_files, capsys):
    not_tflite = tmp_path / "notes.tflite"
    not_tflite.write_text("not a flatbuffer")
    for path, message in [
        (tmp_path / "missing.tflite", "no such file"),
        (cli_files["model"], "expected a .tflite file"),
        (not_tflite, "is not a TFLite file"),
    ]:
        code, stdout, err = run_cli(capsys, "inspect", path)
        assert code == 2
        assert message in err and stdout == ""
