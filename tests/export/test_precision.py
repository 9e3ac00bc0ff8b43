"""`to_tflite` reads back what it wrote: an integer export never claims
integer compute for ops the converter left in float."""

import dataclasses
import os
import warnings

import keras
import numpy as np
import pytest

import tfcompress
from tests.tflite_fixtures import make_dense_model
from tests.tflite_fixtures import make_hard_model
from tfcompress.export import LiteRTModel
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite


@pytest.fixture(scope="module")
def qat_with_conv3d():
    """A quantization-aware model whose first layer is a Conv3D.

    `quantize_model` has no int8 rewrite for Conv3D and reports it float;
    the user did not ask for it to stay float (`keep_float`), and the
    converter, finding no quantization range around it, leaves the file's
    CONV_3D float without a word.
    """
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 4, 2))
    x = keras.layers.Conv3D(4, 2, activation="relu", name="c3")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    qat_model, report = tfcompress.quantization.quantize_model(model)
    assert report.quantized == ("head",)
    assert report.row("c3").status == "float"
    rng = np.random.default_rng(0)
    x_train = rng.random((256, 4, 4, 4, 2), "float32")
    y_train = rng.integers(0, 4, 256)
    qat_model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    qat_model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    return qat_model, x_train


def test_full_int8_export_is_all_integer(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).random((100, 64), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export = to_tflite(
            make_dense_model(),
            tmp_path / "int8.tflite",
            quantization="int8",
            data=x,
            strict=True,
        )
    headline = "int8: 2 of 2 weighted ops integer, 100.0% of weight bytes int8"
    assert headline in capsys.readouterr().out.splitlines()
    precision = export.precision
    assert precision.headline == headline
    assert precision.is_integer and precision.rows == ()
    assert precision.path == export.path
    assert precision.weight_bytes_by_dtype == {"int8": 64 * 256 + 256 * 10}
    assert "(int8)" in str(export)


def test_keep_float_layers_are_float_as_asked(tmp_path):
    model = make_hard_model()
    x = np.random.default_rng(0).standard_normal((100, 16)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export = to_tflite(
            model,
            tmp_path / "mixed.tflite",
            quantization="int8",
            data=x,
            keep_float=["hard"],
            strict=True,
            verbose=False,
        )
    precision = export.precision
    assert (precision.num_weighted_ops, precision.num_integer_ops) == (3, 2)
    (row,) = precision.rows
    assert (row.name, row.op, row.kept_float) == (
        "hard",
        "FULLY_CONNECTED",
        True,
    )
    assert (row.compute, row.weight_dtype) == ("float", "float32")
    assert precision.unrequested_float_ops == ()
    # Kernels: fc1 16x24 and head 32x4 in int8, hard 24x32 in float32.
    assert precision.weight_bytes_by_dtype == {
        "float32": 4 * 24 * 32,
        "int8": 16 * 24 + 32 * 4,
    }
    assert precision.headline == (
        "int8: 2 of 3 weighted ops integer (1 kept float as asked: hard), "
        "14.3% of weight bytes int8"
    )
    assert "(int8; float32: hard)" in str(export)


def test_float_ops_the_converter_left_are_warned_about(
    qat_with_conv3d, tmp_path, capsys
):
    model, x = qat_with_conv3d
    with pytest.warns(
        UserWarning,
        match=r"quantization='int8' was requested, but 1 of 2 weighted ops "
        r"of '.*qat.tflite' compute in float: CONV_3D 'c3' \(float, "
        r"float32 weights\).*Pass strict=True",
    ):
        export = to_tflite(model, tmp_path / "qat.tflite", quantization="int8")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "int8 requested: 1 of 2 weighted ops integer (1 float: c3), 62.8% of "
        "weight bytes int8"
    )
    # The file really computes c3 in float: float32 kernel, float32 output.
    inspection = inspect_tflite(export)
    weighted = [
        op for op in inspection.ops if op.name in ("CONV_3D", "FULLY_CONNECTED")
    ]
    assert [op.name for op in weighted] == ["CONV_3D", "FULLY_CONNECTED"]
    assert [op.inputs[1].dtype for op in weighted] == ["float32", "int8"]
    assert [op.outputs[0].dtype for op in weighted] == ["float32", "int8"]
    precision = export.precision
    row = precision.row("c3")
    assert (row.compute, row.kept_float) == ("float", False)
    assert row.layers == ("c3",)
    assert precision.weight_bytes_by_dtype == {
        "float32": 4 * (2 * 2 * 2 * 2 * 4),
        "int8": (3 * 3 * 3 * 4) * 4,
    }
    text = str(export)
    assert "(int8 requested; 1 of 2 weighted ops float)" in text
    assert "(int8)" not in text
    # Still a working file.
    outputs = LiteRTModel(export).predict(x[:10])
    expected = model.predict(x[:10], verbose=0)
    assert np.mean(outputs.argmax(-1) == expected.argmax(-1)) >= 0.9


def test_strict_refuses_float_ops_and_writes_nothing(qat_with_conv3d, tmp_path):
    model, _ = qat_with_conv3d
    path = tmp_path / "qat.tflite"
    with pytest.raises(
        ValueError,
        match=r"1 of 2 weighted ops .* compute in float: CONV_3D "
        r"'c3'.*With strict=True no file is written.*Received: strict=True",
    ):
        to_tflite(model, path, quantization="int8", strict=True)
    assert os.listdir(tmp_path) == []
    # An existing file is left as it was.
    path.write_bytes(b"previous model")
    with pytest.raises(ValueError, match=r"strict=True"):
        to_tflite(model, path, quantization="int8", strict=True)
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["qat.tflite"]


@pytest.mark.parametrize(
    "mode, headline",
    [
        (
            "float16",
            "float16: 0 of 2 weighted ops integer (2 float: fc, head), "
            "100.0% of weight bytes float16",
        ),
        (
            "dynamic",
            "dynamic: 0 of 2 weighted ops integer (2 hybrid: integer "
            "weights, float activations), 100.0% of weight bytes int8",
        ),
    ],
)
def test_float_modes_are_reported_for_information(
    tmp_path, capsys, mode, headline
):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu", name="fc"),
            keras.layers.Dense(10, name="head"),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export = to_tflite(
            model, tmp_path / "m.tflite", quantization=mode, strict=True
        )
    assert capsys.readouterr().out.splitlines()[-1] == headline
    assert export.precision.headline == headline
    assert f"({mode})" in str(export)
    quiet = to_tflite(
        model, tmp_path / "q.tflite", quantization=mode, verbose=False
    )
    assert capsys.readouterr().out == ""
    assert quiet.precision == dataclasses.replace(
        export.precision, path=quiet.path
    )


def test_float_export_has_no_precision(conv_float):
    assert conv_float.precision is None
    assert os.fspath(conv_float) == conv_float.path


@pytest.mark.parametrize("name", ["strict", "verbose"])
def test_flags_must_be_bool(tmp_path, name):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=rf"Received: {name}='yes'"):
        to_tflite(model, tmp_path / "m.tflite", **{name: "yes"})
    assert os.listdir(tmp_path) == []
