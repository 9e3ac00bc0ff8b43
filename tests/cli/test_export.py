"""`tfcompress export`: the real converter, the file read back."""

import json
import os

import keras
import numpy as np
import pytest

from tests.cli.conftest import run_cli
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_precision


def test_int8_export_is_integer(cli_files):
    # Written by the fixture with `tfcompress export --quantization int8`.
    inspection = inspect_tflite(cli_files["int8"])
    assert inspection.op_counts == {
        "QUANTIZE": 1,
        "FULLY_CONNECTED": 2,
        "DEQUANTIZE": 1,
    }
    assert tflite_precision(cli_files["int8"]).is_integer
    assert inspection.weight_bytes_by_dtype == {"int8": 16 * 6 + 4 * 16}


# The converter leaves weight tensors under 1024 elements in float32 in
# dynamic range mode: this model's are all smaller.
@pytest.mark.parametrize(
    "mode, weight_dtype", [("float16", "float16"), ("dynamic", "float32")]
)
def test_weight_only_modes(tmp_path, cli_files, capsys, mode, weight_dtype):
    out = tmp_path / f"model_{mode}.tflite"
    code, stdout, err = run_cli(
        capsys, "export", cli_files["model"], "--quantization", mode,
        "-o", out, "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["path"] == str(out)
    assert result["quantization"] == mode
    assert result["size_bytes"] == os.path.getsize(out)
    weights = inspect_tflite(out).weight_bytes_by_dtype
    assert next(iter(weights)) == weight_dtype
    assert f"exporting {mode} TFLite to {out}" in err


def test_calibration_keep_float_and_integer_input(tmp_path, cli_files, capsys):
    out = tmp_path / "mixed.tflite"
    code, stdout, err = run_cli(
        capsys, "export", cli_files["model"], "--quantization", "int8",
        "--data", cli_files["x"], "--calibration", "mse",
        "--keep-float", "logits", "-o", out, "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["calibration"] == "mse"
    assert result["keep_float"] == ["logits"]
    assert result["precision"]["num_integer_ops"] == 1
    assert result["precision"]["num_float_ops"] == 1
    # int8 in, int8 out, for integer-only runtimes.
    out = tmp_path / "int_io.tflite"
    code, _, err = run_cli(
        capsys, "export", cli_files["model"], "--quantization", "int8",
        "--data", cli_files["x"], "--input-type", "int8", "-o", out,
    )
    assert code == 0, err
    assert inspect_tflite(out).input_dtypes == ["int8"]


def test_bad_inputs_write_nothing(tmp_path, cli_files, capsys):
    out = tmp_path / "out.tflite"
    cases = [
        (
            ["export", tmp_path / "missing.keras", "-o", out],
            "no such file",
        ),
        (
            ["export", cli_files["float32"], "-o", out],
            "expected a .keras file",
        ),
        (
            ["export", cli_files["model"], "--quantization", "int8",
             "--data", cli_files["wrong_shape"], "-o", out],
            "--data: examples of shape (5,), but the model takes inputs of "
            "shape (6,)",
        ),
        (
            ["export", cli_files["model"], "--quantization", "int8", "-o", out],
            "--quantization int8 needs calibration examples",
        ),
        (
            ["export", cli_files["model"], "--quantization", "int8",
             "--data", cli_files["model"], "-o", out],
            "--data: expected a .npy or .npz file",
        ),
        (
            ["export", cli_files["model"], "-o", tmp_path / "out.keras"],
            "--output must end with .tflite",
        ),
    ]
    for args, message in cases:
        code, stdout, err = run_cli(capsys, *args)
        assert code == 2, (args, err)
        assert message in err, err
        assert err.splitlines()[-1].startswith("tfcompress export: ")
        assert stdout == ""
    assert os.listdir(tmp_path) == []


def test_strict_refuses_a_float_op_with_exit_code_1(tmp_path, capsys):
    # quantize_model has no int8 rewrite for Conv3D: the converter leaves
    # the file's CONV_3D float, which an int8 export warns about.
    inputs = keras.Input((4, 4, 4, 2))
    x = keras.layers.Conv3D(4, 2, activation="relu", name="c3")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    model.save(tmp_path / "conv3d.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((32, 4, 4, 4, 2), "float32"))
    qat = tmp_path / "qat.keras"
    code, _, err = run_cli(
        capsys, "quantize", tmp_path / "conv3d.keras", "--data",
        tmp_path / "x.npy", "-o", qat,
    )
    assert code == 0, err
    strict = tmp_path / "strict.tflite"
    code, stdout, err = run_cli(
        capsys, "export", qat, "--quantization", "int8", "--strict",
        "-o", strict,
    )
    assert code == 1
    assert "CONV_3D 'c3'" in err and stdout == ""
    assert not strict.exists()
    # Without --strict: the file, and the warning on one line.
    code, _, err = run_cli(
        capsys, "export", qat, "--quantization", "int8", "-o", strict
    )
    assert code == 0
    assert "tfcompress export: UserWarning: quantization='int8' was " in err
    assert strict.exists()
