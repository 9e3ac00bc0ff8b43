import json

import keras
import numpy as np
import pytest

from tfcompress.export import ParityMetric
from tfcompress.export import ParityReport
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.report import Report


def make_digits_model(filters=8):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(filters, 3, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


@pytest.fixture(scope="module")
def digits_model(digits):
    """A tiny conv classifier, trained for 3 epochs on the digits."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = make_digits_model()
    model.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits_files(digits_model, digits, tmp_path_factory):
    directory = tmp_path_factory.mktemp("verification")
    float_export = to_tflite(digits_model, directory / "float.tflite")
    int8_export = to_tflite(
        digits_model,
        directory / "int8.tflite",
        quantization="int8",
        data=digits[0][:200],
    )
    return float_export, int8_export


def test_float32_file_matches_keras(digits_model, digits_files, digits):
    x_test = digits[2]
    report = verify(digits_model, digits_files[0].path, x_test)
    assert isinstance(report, ParityReport)
    assert report.num_examples == 450
    assert report.top1_agreement == 1.0
    assert report.relative_error < 1e-5
    assert report.max_abs_error < 1e-4
    assert 0 <= report.mean_abs_error <= report.max_abs_error
    expected = digits_model.predict(x_test, verbose=0)
    assert report.output_range == pytest.approx(
        (expected.min(), expected.max())
    )
    assert report.output_range[1] - report.output_range[0] > 1.0
    assert report.assert_parity(1.0, max_relative_error=1e-5) is report


def test_int8_file_agrees_on_top1(digits_model, digits_files, digits):
    x_test = digits[2]
    # The model learnt the task, so agreement is not agreement on noise.
    accuracy = np.mean(
        digits_model.predict(x_test, verbose=0).argmax(-1) == digits[3]
    )
    assert accuracy > 0.9
    report = verify(digits_model, digits_files[1], x_test, batch_size=64)
    assert report.top1_agreement >= 0.95
    # Quantized, so no longer float rounding, but still close.
    assert 1e-4 < report.relative_error < 0.1
    report.assert_parity(min_top1_agreement=0.95)


def test_str_and_to_dict(digits_model, digits_files, digits):
    report = verify(digits_model, digits_files[1], digits[2])
    assert str(report) == (
        f"top-1 agreement {report.top1_agreement:.2%} on 450 examples; "
        f"max |error| {report.max_abs_error:.3g}, "
        f"relative error {report.relative_error:.1%}"
    )
    result = report.to_dict()
    assert json.loads(json.dumps(result)) == result
    assert result["num_examples"] == 450
    assert result["top1_agreement"] == report.top1_agreement
    assert result["path"] == digits_files[1].path
    # Float32 errors are too small for a percent.
    float_report = verify(digits_model, digits_files[0], digits[2][:50])
    assert str(float_report).startswith("top-1 agreement 100.00% on 50 ")
    assert "%" not in str(float_report).split("relative error")[1]


def test_rows_and_table(digits_model, digits_files, digits):
    report = verify(digits_model, digits_files[1].path, digits[2])
    assert isinstance(report, Report)
    assert [row.name for row in report.rows] == [
        "top1_agreement",
        "max_abs_error",
        "mean_abs_error",
        "relative_error",
    ]
    assert isinstance(report.rows[0], ParityMetric)
    assert report.row("relative_error").value == report.relative_error
    lines = report.table().splitlines()
    assert lines[0].startswith(
        f"Parity of {digits_files[1].path!r} with its Keras model on 450 "
        "examples"
    )
    assert lines[1].split() == ["Figure", "Value"]
    assert lines[3].split() == [
        "top1_agreement",
        f"{report.top1_agreement:.2%}",
    ]
    assert len(lines) == 3 + 4


def test_file_of_another_model_fails_assert_parity(digits_files, digits):
    keras.utils.set_random_seed(7)
    other = make_digits_model()  # Same shapes, untrained.
    report = verify(other, digits_files[0].path, digits[2])
    assert report.top1_agreement < 0.5
    differ = round((1 - report.top1_agreement) * 450)
    with pytest.raises(
        AssertionError,
        match=rf"top-1 agreement {report.top1_agreement:.2%} is below "
        rf"min_top1_agreement=99.00% \({differ} of 450 examples differ\)",
    ):
        report.assert_parity()
    with pytest.raises(
        AssertionError, match=r"relative error .* is above max_relative_error"
    ):
        report.assert_parity(None, max_relative_error=0.5)


def test_int8_file_fails_a_float_tolerance(
    digits_model, digits_files, digits
):
    report = verify(digits_model, digits_files[1], digits[2][:100])
    with pytest.raises(
        AssertionError,
        match=rf"relative error {report.relative_error:.3g} is above "
        r"max_relative_error=1e-06",
    ):
        report.assert_parity(min_top1_agreement=0.9, max_relative_error=1e-6)


def test_output_without_classes(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    path = to_tflite(model, tmp_path / "regression.tflite").path
    x = np.random.default_rng(0).random((20, 4), dtype="float32")
    report = verify(model, path, x)
    assert report.top1_agreement is None
    assert str(report).startswith("20 examples; max |error| ")
    report.assert_parity(None, max_relative_error=1e-5)
    with pytest.raises(ValueError, match="Pass min_top1_agreement=None"):
        report.assert_parity()


def test_bad_thresholds(digits_model, digits_files, digits):
    report = verify(digits_model, digits_files[0], digits[2][:10])
    with pytest.raises(
        ValueError,
        match=r"in \[0, 1\] or None. Received: min_top1_agreement=99",
    ):
        report.assert_parity(99)
    with pytest.raises(
        ValueError, match=r">= 0 or None. Received: max_relative_error=-1"
    ):
        report.assert_parity(max_relative_error=-1)


def test_missing_file(digits_model, digits, tmp_path):
    path = str(tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError, match="No `.tflite` file"):
        verify(digits_model, path, digits[2])


def test_wrong_input_shape(digits_model, digits_files):
    with pytest.raises(
        ValueError,
        match=r"expected per-example shape \(8, 8, 1\).*"
        r"Received: x.shape=\(5, 8, 8\)",
    ):
        verify(digits_model, digits_files[0], np.zeros((5, 8, 8)))
    with pytest.raises(ValueError, match="`x` is empty"):
        verify(digits_model, digits_files[0], np.zeros((0, 8, 8, 1)))


def test_output_shape_mismatch(digits_files, digits):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(5)]
    )
    with pytest.raises(
        ValueError,
        match=r"outputs of different shapes on `x`: \(450, 5\) \(Keras\) and "
        r"\(450, 10\) \(LiteRT\)",
    ):
        verify(model, digits_files[0], digits[2])


def test_multi_output_model_is_rejected(digits_files, digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(
        inputs, [keras.layers.Dense(10)(x), keras.layers.Dense(2)(x)]
    )
    with pytest.raises(ValueError, match="supports models with one output"):
        verify(model, digits_files[0], digits[2])
