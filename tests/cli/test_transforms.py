"""`tfcompress prune | decompose | quantize`: a `.keras` model in, a
`.keras` model and a report out; then exported and verified by the
command line (real converter, real LiteRT)."""

import json
import os

import keras

from tests.cli.conftest import run_cli


def export_and_verify(capsys, model_path, x, *export_args):
    """Exports with `tfcompress export` and returns `verify`'s JSON."""
    tflite = model_path.with_suffix(".tflite")
    code, _, err = run_cli(
        capsys, "export", model_path, "-o", tflite, *export_args
    )
    assert code == 0, err
    code, stdout, err = run_cli(
        capsys, "verify", model_path, tflite, "--data", x, "--json"
    )
    assert code == 0, err
    return json.loads(stdout)


def test_prune_then_export(tmp_path, cli_files, capsys):
    out = tmp_path / "pruned.keras"
    code, stdout, err = run_cli(
        capsys, "prune", cli_files["model"], "--sparsity", "0.5", "-o", out,
        "--json",
    )
    assert code == 0, err
    report = json.loads(stdout)["report"]
    assert report["macs_before"] == 6 * 16 + 16 * 4
    assert report["macs_after"] == 6 * 8 + 8 * 4
    # prune_channels' own progress lines go to stderr, with the CLI's.
    assert "channel groups ranked by l1" in err
    assert "saving" in err
    assert keras.saving.load_model(out).get_layer("hidden").units == 8
    parity = export_and_verify(capsys, out, cli_files["x"])
    assert parity["relative_error"] < 1e-5


def test_decompose_then_export(tmp_path, cli_files, capsys):
    out = tmp_path / "decomposed.keras"
    code, stdout, err = run_cli(
        capsys, "decompose", cli_files["model"], "--rank", "2", "--method",
        "svd", "--data", cli_files["x"], "-o", out,
    )
    assert code == 0, err
    assert "hidden: svd rank 2" in err
    assert "LowRankDense" in stdout and f"wrote {out}" in stdout
    layer = keras.saving.load_model(out).get_layer("hidden")
    assert type(layer).__name__ == "LowRankDense"
    parity = export_and_verify(capsys, out, cli_files["x"])
    assert parity["relative_error"] < 1e-5


def test_quantize_then_export_without_data(tmp_path, cli_files, capsys):
    out = tmp_path / "qat.keras"
    code, stdout, err = run_cli(
        capsys, "quantize", cli_files["model"], "--data", cli_files["x"],
        "-o", out, "--json",
    )
    assert code == 0, err
    assert os.path.isfile(out)
    # A quantization-aware model exports to int8 with its own ranges.
    parity = export_and_verify(
        capsys, out, cli_files["x"], "--quantization", "int8"
    )
    assert parity["top1_agreement"] == 1.0
    assert parity["relative_error"] < 0.02


def test_transforms_bad_inputs_write_nothing(tmp_path, cli_files, capsys):
    model = cli_files["model"]
    out = tmp_path / "out.keras"
    for args, message in [
        (["decompose", model, "--rank", "2", "--data",
          cli_files["wrong_shape"], "-o", out],
         "--data: examples of shape (5,)"),
        (["prune", tmp_path / "missing.keras", "--sparsity", "0.5", "-o", out],
         "no such file"),
        (["prune", cli_files["int8"], "--sparsity", "0.5", "-o", out],
         "expected a .keras file"),
        (["prune", model, "--sparsity", "0.5", "-o", tmp_path / "x.tflite"],
         "--output must end with .keras"),
        (["prune", model, "--sparsity", "0.5", "--importance", "taylor",
          "--data", cli_files["x"], "-o", out],
         "--importance taylor needs --data and --labels"),
        (["quantize", model, "--weight-bits", "1", "-o", out],
         "weight_bits"),
    ]:
        code, stdout, err = run_cli(capsys, *args)
        assert code == 2, (args, err)
        assert message in err and stdout == ""
    assert os.listdir(tmp_path) == []
