"""Tiny files for the command line's tests, made by the command line.

A two-layer model on 6 features, 24 examples, and its float32 and int8
`.tflite` files written by `tfcompress export` (the real converter): every
subcommand is then tested on files it or its siblings made.
"""

import keras
import numpy as np
import pytest

from tfcompress.cli import main


def run_cli(capsys, *args):
    """Runs `tfcompress ARGS` in this process: `(exit code, stdout, stderr)`."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def cli_files(tmp_path_factory):
    """`{name: path}`: model.keras, x.npy (24 examples), wrong_shape.npy,
    model_float32.tflite and model_int8.tflite."""
    folder = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(4, name="logits"),
        ]
    )
    files = {
        "model": folder / "model.keras",
        "x": folder / "x.npy",
        "wrong_shape": folder / "wrong_shape.npy",
        "float32": folder / "model_float32.tflite",
        "int8": folder / "model_int8.tflite",
    }
    model.save(files["model"])
    rng = np.random.default_rng(0)
    np.save(files["x"], rng.standard_normal((24, 6)).astype("float32"))
    np.save(files["wrong_shape"], rng.standard_normal((24, 5)).astype("float32"))
    assert main(["export", str(files["model"])]) == 0
    assert (
        main(
            [
                "export",
                str(files["model"]),
                "--quantization",
                "int8",
                "--data",
                str(files["x"]),
            ]
        )
        == 0
    )
    return files
