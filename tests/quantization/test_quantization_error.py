import json

import keras
import numpy as np
import pytest

from tests.tflite_fixtures import make_hard_model
from tfcompress.export import LiteRTModel
from tfcompress.export import OpQuantizationError
from tfcompress.export import QuantizationErrorReport
from tfcompress.export import inspect_tflite
from tfcompress.export import layer_quantization_error
from tfcompress.export import to_tflite
from tfcompress.export import verify


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """The fc1 -> hard -> head model, its float file and its int8 file."""
    model = make_hard_model()
    x = np.random.default_rng(0).standard_normal((300, 16)).astype("float32")
    directory = tmp_path_factory.mktemp("report")
    float_export = to_tflite(model, directory / "float.tflite")
    int8 = to_tflite(
        model,
        directory / "int8.tflite",
        quantization="int8",
        data=x[:100],
    )
    report = layer_quantization_error(model, int8, x[100:])
    return model, x[100:], float_export, int8, report


def test_rows_cover_the_ops(hard):
    model, x_test, _, int8, report = hard
    assert isinstance(report, QuantizationErrorReport)
    assert report.num_examples == len(x_test) == 200
    assert report.quantized_path == int8.path
    assert report.reference == f"model {model.name!r}"
    inspection = inspect_tflite(int8)
    computing = [
        op for op in inspection.ops if op.name not in ("QUANTIZE", "DEQUANTIZE")
    ]
    assert [row.index for row in report.rows] == [op.index for op in computing]
    assert [row.op for row in report.rows] == ["FULLY_CONNECTED"] * 3
    assert [row.layers for row in report.rows] == [
        ("fc1",),
        ("hard",),
        ("head",),
    ]
    assert [row.is_output for row in report.rows] == [False, False, True]
    assert report.outputs == [report.rows[-1]]
    for row, op in zip(report.rows, computing):
        assert isinstance(row, OpQuantizationError)
        assert row.dtype == "int8"
        assert row.scale == pytest.approx(op.outputs[0].quantization.scales[0])


def test_worst_row_is_the_hard_layer(hard):
    _, _, _, _, report = hard
    worst = report.worst(1)[0]
    assert worst.layers == ("hard",)
    # Measured: `hard` adds 79% relative error; fc1 adds 0.6%, and head
    # passes on what it receives.
    assert worst.added_error > 0.5
    assert report.row("fc1").added_error < 0.02
    assert report.row("head").added_error < 0.05
    assert report.row("hard").relative_error > 0.5
    # Ranked by accumulated error, hard and head (which inherits it) lead.
    assert {r.name for r in report.worst(2, by="relative_error")} == {
        "hard",
        "head",
    }
    # fc1 is plain rounding: about 1/sqrt(12) of a step, plus its weights.
    assert 0.25 < report.row("fc1").rmse_in_steps < 1.0
    assert report.row("hard").rmse_in_steps > 10


def test_numbers_are_consistent(hard):
    model, x_test, _, int8, report = hard
    for row in report.rows:
        assert row.mean_abs_error <= row.rmse <= row.max_abs_error
        assert row.rmse_in_steps == pytest.approx(row.rmse / row.scale)
        assert row.clipped_fraction is not None
        assert 0 <= row.clipped_fraction <= 1
    # The output row against what `verify` measures between Keras and the
    # file (other kernels, the Keras model instead of the float file).
    output = report.outputs[0]
    parity = verify(model, int8, x_test)
    assert output.mean_abs_error == pytest.approx(
        parity.mean_abs_error, rel=0.05
    )
    assert output.max_abs_error == pytest.approx(parity.max_abs_error, rel=0.1)
    keras_outputs = model.predict(x_test, verbose=0)
    error = LiteRTModel(int8.path).predict(x_test) - keras_outputs
    assert output.rmse == pytest.approx(np.sqrt(np.mean(error**2)), rel=0.05)
    assert output.relative_error == pytest.approx(
        output.rmse / np.std(keras_outputs), rel=0.05
    )


def test_float_file_as_reference(hard):
    _, x_test, float_export, int8, report = hard
    from_file = layer_quantization_error(float_export, int8.path, x_test)
    assert from_file.reference == float_export.path
    # Without the model, rows carry tensor names instead of layers.
    assert all(row.layers == () for row in from_file.rows)
    assert [row.tensor for row in from_file.rows] == [
        row.tensor for row in report.rows
    ]
    for a, b in zip(from_file.rows, report.rows):
        assert a.rmse == pytest.approx(b.rmse, rel=1e-6)
    assert from_file.row(report.rows[1].tensor).added_error > 0.5


def test_float_file_against_itself_has_no_error(hard):
    _, x_test, float_export, _, _ = hard
    report = layer_quantization_error(float_export, float_export, x_test[:10])
    assert len(report.rows) == 3
    for row in report.rows:
        assert row.dtype == "float32" and row.scale is None
        assert row.rmse == 0 and row.rmse_in_steps is None
        assert row.clipped_fraction is None


def test_table_and_dict(hard):
    _, _, _, _, report = hard
    text = report.table()
    assert str(report) == text
    assert "Rel. error" in text and "RMSE/scale" in text
    assert "head (output)" in text
    lines = text.splitlines()
    assert [line.split()[2] for line in lines[4:7]] == ["fc1", "hard", "head"]
    top = report.table(sort_by="added_error", top=1).splitlines()
    assert len(top) == 7 and top[4].split()[2] == "hard"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["num_examples"] == 200
    assert data["rows"][1]["layers"] == ["hard"]
    assert data["rows"][1]["rmse_in_steps"] == report.rows[1].rmse_in_steps


def test_errors(hard, tmp_path):
    model, x_test, float_export, int8, report = hard
    with pytest.raises(ValueError, match=r"Expected `by` to be one of"):
        report.worst(by="size")
    with pytest.raises(ValueError, match=r"Received: n=0"):
        report.worst(0)
    with pytest.raises(KeyError, match=r"No row for 'conv'. Rows: fc1, hard"):
        report.row("conv")
    with pytest.raises(FileNotFoundError, match=r"quantized_path="):
        layer_quantization_error(model, tmp_path / "missing.tflite", x_test)
    with pytest.raises(FileNotFoundError, match=r"reference="):
        layer_quantization_error(tmp_path / "missing.tflite", int8, x_test)
    with pytest.raises(ValueError, match=r"at least one example"):
        layer_quantization_error(float_export, int8, x_test[:0])
    with pytest.raises(ValueError, match=r"expected per-example shape \(16,\)"):
        layer_quantization_error(float_export, int8, np.zeros((4, 15)))


def test_shape_arithmetic_is_not_a_row(tmp_path):
    # A Flatten with a dynamic batch becomes SHAPE, STRIDED_SLICE, PACK
    # (int32 shape arithmetic) and RESHAPE: only the RESHAPE moves data.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    x = np.random.default_rng(0).random((40, 4, 4, 2), "float32")
    export = to_tflite(
        model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=x,
    )
    assert "SHAPE" in inspect_tflite(export).op_counts
    report = layer_quantization_error(model, export, x)
    assert [(row.op, row.layers) for row in report.rows] == [
        ("RESHAPE", ("flatten",)),
        ("FULLY_CONNECTED", ("logits",)),
    ]
    assert report.rows[0].rmse_in_steps == pytest.approx(0.29, abs=0.02)


def test_public_in_quantization_and_in_export(hard):
    import tfcompress
    from tfcompress.report import Report
    from tfcompress.report import Row

    quantization = tfcompress.quantization
    for name in (
        "layer_quantization_error",
        "QuantizationErrorReport",
        "OpQuantizationError",
    ):
        assert name in quantization.__all__
        assert getattr(quantization, name) is getattr(tfcompress.export, name)
    _, _, _, _, report = hard
    assert isinstance(report, Report) and isinstance(report.rows[0], Row)
