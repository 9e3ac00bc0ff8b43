"""`tfcompress compress MODEL.keras --data train.npz --<budget>`: the
pipeline from the command line (real converter, real LiteRT)."""

import json
import os

import keras
import numpy as np
import pytest

from tests.cli.conftest import run_cli
from tfcompress.cli import main
from tfcompress.litert import inspect_tflite


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits):
    """A tiny trained classifier and its data, as the command reads them."""
    x_train, y_train, x_test, y_test = digits
    folder = tmp_path_factory.mktemp("compress")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x_train, y_train, epochs=2, verbose=0)
    paths = {
        "model": folder / "model.keras",
        "train": folder / "train.npz",
        "val": folder / "val.npz",
        "no_labels": folder / "no_labels.npz",
    }
    model.save(paths["model"])
    np.savez(paths["train"], x=x_train, y=y_train)
    np.savez(paths["val"], x=x_test, y=y_test)
    np.savez(paths["no_labels"], x=x_train)
    return paths


def test_compress_writes_a_verified_int8_file(files, tmp_path, capsys):
    out = tmp_path / "small.tflite"
    code, stdout, err = run_cli(
        capsys, "compress", files["model"], "--data", files["train"],
        "--validation-data", files["val"], "--size-ratio", "0.5",
        "--steps", "int8,verify", "-o", out, "--json",
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert [row["name"] for row in report["rows"]] == ["original", "int8", "verify"]
    assert report["budget_met"] and report["output"] == str(out)
    assert report["final_size_ratio"] <= 0.5
    assert report["top1_agreement"] > 0.95
    # Progress on stderr: the CLI's and the pipeline's own lines.
    assert "compressing to tflite_bytes <= 0.5x" in err
    assert "compress verify:" in err
    ops = [op for op in inspect_tflite(out).ops if op.name == "CONV_2D"]
    assert ops and ops[0].inputs[1].dtype == "int8"


def test_compress_bad_input_and_missed_budget(files, tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "compress", files["model"], "--data", files["no_labels"],
        "--macs-ratio", "0.5",
    )
    assert code == 2 and "no array named 'y'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["compress", str(files["model"]), "--data", str(files["train"]),
              "--latency-ratio", "1.5"])
    assert exit_info.value.code == 2
    assert "must be in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # One budget at a time.
        main(["compress", str(files["model"]), "--data", str(files["train"]),
              "--latency-ratio", "0.5", "--macs-ratio", "0.5"])
    capsys.readouterr()
    # A file that misses the budget is still written, and the exit code
    # says it missed.
    out = tmp_path / "big.tflite"
    code, stdout, err = run_cli(
        capsys, "compress", files["model"], "--data", files["train"],
        "--size-ratio", "0.05", "--steps", "int8", "-o", out,
    )
    assert code == 1, err
    assert "FAILED" in stdout and "misses the budget" in stdout
    assert os.path.exists(out)
