"""to_tflite's calibrated modes: percentile / MSE ranges, int16x8, integer
inputs and outputs, and layers kept in float32."""

import os

import keras
import numpy as np
import pytest

from tests.tflite_fixtures import INPUT_SHAPE
from tests.tflite_fixtures import make_hard_model
from tfcompress.export import LiteRTModel
from tfcompress.export import inspect_tflite
from tfcompress.export import layer_quantization_error
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.quantization import ActivationHistogram

SPIKY_SHAPE = (16, 16, 4)


def fake_quant_int8(values, low, high):
    """Quantize-dequantize with an asymmetric int8 range [low, high]."""
    scale = (high - low) / 255
    zero_point = np.round(-128 - low / scale)
    q = np.clip(np.round(values / scale + zero_point), -128, 127)
    return (q - zero_point) * scale


def activation_ranges(path):
    """`{tensor name: (low, high, scale)}` of a file's int8 activations."""
    ranges = {}
    for op in inspect_tflite(path).ops:
        for tensor in op.outputs:
            q = tensor.quantization
            if tensor.dtype == "int8" and q is not None and q.axis is None:
                scale, zero_point = q.scales[0], q.zero_points[0]
                ranges[tensor.name] = (
                    (-128 - zero_point) * scale,
                    (127 - zero_point) * scale,
                    scale,
                )
    return ranges


# The range statistics, on values whose answers are known.


def test_percentile_range_matches_numpy():
    values = np.random.default_rng(0).standard_t(3, 200_000)
    histogram = ActivationHistogram(values.min(), values.max())
    histogram.add(values)
    low, high = histogram.percentile_range(99.9)
    expected = np.percentile(values, [0.05, 99.95])
    # Whole bins are kept: at most one bin wider than the exact quantiles.
    width = (values.max() - values.min()) / 16384
    assert expected[0] - width <= low <= expected[0]
    assert expected[1] <= high <= expected[1] + width
    assert histogram.percentile_range(100) == (values.min(), values.max())


def test_mse_range_minimizes_quantization_error():
    rng = np.random.default_rng(0)
    values = rng.standard_t(3, 200_000)
    histogram = ActivationHistogram(values.min(), values.max())
    histogram.add(values)
    low, high = histogram.mse_range("int8")
    assert values.min() < low < 0 < high < values.max()

    def error(a, b):
        return np.mean((fake_quant_int8(values, a, b) - values) ** 2)

    chosen = error(low, high)
    # A third less error than the full range, and within 1% of the best
    # range on a brute-force grid.
    assert chosen < 0.7 * error(values.min(), values.max())
    grid = np.linspace(0.05, 1, 20)
    best = min(
        error(a * values.min(), b * values.max()) for a in grid for b in grid
    )
    assert chosen < 1.01 * best


def test_mse_range_keeps_zero_and_one_sided_ranges():
    values = np.maximum(np.random.default_rng(0).standard_t(3, 100_000), 0)
    histogram = ActivationHistogram(0.0, values.max())
    histogram.add(values)
    low, high = histogram.mse_range("int8")
    assert low == 0.0 and 0 < high <= values.max()
    # int16 ranges are symmetric and rarely need clipping.
    low16, high16 = histogram.mse_range("int16x8")
    assert low16 == 0.0 and high16 > high


# Percentile and MSE calibration on a model whose calibration data has
# outliers: 3 corrupted pixels in 100 images stretch the min/max ranges.


@pytest.fixture(scope="module")
def spiky_case(tmp_path_factory):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(SPIKY_SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    x_calibration = rng.standard_normal((100,) + SPIKY_SHAPE, "float32")
    for k in range(3):
        x_calibration[10 * k, 5, 5 + k, k] = 25.0 * (-1) ** k
    x_test = rng.standard_normal((200,) + SPIKY_SHAPE, "float32")
    directory = tmp_path_factory.mktemp("spiky")
    exports = {
        calibration: to_tflite(
            model,
            directory / f"{calibration}.tflite",
            quantization="int8",
            data=x_calibration,
            calibration=calibration,
        )
        for calibration in ("minmax", "percentile", "mse")
    }
    return model, x_calibration, x_test, exports


def test_percentile_ranges_lie_within_minmax_ranges(spiky_case):
    _, _, _, exports = spiky_case
    assert exports["percentile"].calibration == "percentile"
    assert "percentile calibration" in str(exports["percentile"])
    minmax = activation_ranges(exports["minmax"].path)
    percentile = activation_ranges(exports["percentile"].path)
    assert set(percentile) == set(minmax) and len(minmax) >= 3
    for name, (low, high, scale) in percentile.items():
        mm_low, mm_high, mm_scale = minmax[name]
        # Up to one step of zero-point nudging.
        assert low >= mm_low - mm_scale and high <= mm_high + mm_scale, name
        assert scale <= mm_scale * 1.01, name
    # The spikes stretched the input's range to [-25, 25]; 99.99% of its
    # 102,400 values lie within about 4 standard deviations.
    input_name = inspect_tflite(exports["minmax"].path).ops[0].outputs[0].name
    assert minmax[input_name][2] == pytest.approx(50 / 255, rel=0.02)
    assert percentile[input_name][2] < 0.4 * minmax[input_name][2]


def test_percentile_100_reproduces_the_converter(
    spiky_case, conv_model, conv_int16x8, brightness_data, tmp_path
):
    # Keeping every value gives back the converter's own ranges: the route
    # through the calibrated file and the quantizer changes nothing else.
    model, x_calibration, _, exports = spiky_case
    full = to_tflite(
        model,
        tmp_path / "int8.tflite",
        quantization="int8",
        data=x_calibration,
        calibration="percentile",
        percentile=100,
    )
    ranges = activation_ranges(full.path)
    expected = activation_ranges(exports["minmax"].path)
    assert ranges.keys() == expected.keys()
    for name in expected:
        assert ranges[name] == pytest.approx(expected[name]), name
    full16 = to_tflite(
        conv_model,
        tmp_path / "int16x8.tflite",
        quantization="int16x8",
        data=brightness_data[0][:200],
        calibration="percentile",
        percentile=100,
    )

    def scales(path):
        return [
            t.quantization.scales[0]
            for op in inspect_tflite(path).ops
            for t in op.outputs
            if t.quantization is not None
        ]

    assert scales(full16.path) == pytest.approx(scales(conv_int16x8.path))


def test_clipping_lowers_output_error(spiky_case):
    model, _, x_test, exports = spiky_case
    errors = {
        calibration: verify(model, export, x_test).relative_error
        for calibration, export in exports.items()
    }
    # Measured: minmax 0.95%, mse 0.83%, percentile 0.61%.
    assert errors["mse"] < 0.95 * errors["minmax"]
    assert errors["percentile"] < 0.8 * errors["minmax"]
    mse_input = activation_ranges(exports["mse"].path)
    minmax_input = activation_ranges(exports["minmax"].path)
    assert sum(r[2] for r in mse_input.values()) < sum(
        r[2] for r in minmax_input.values()
    )


# int16x8 and integer inputs / outputs, on the trained conv classifier.


@pytest.fixture(scope="module")
def conv_int16x8(conv_model, brightness_data, tmp_path_factory):
    return to_tflite(
        conv_model,
        tmp_path_factory.mktemp("int16x8") / "conv_int16x8.tflite",
        quantization="int16x8",
        data=brightness_data[0][:200],
    )


def test_int16x8_activations_int16_weights_int8(conv_int16x8):
    inspection = inspect_tflite(conv_int16x8)
    assert inspection.op_counts == {
        "QUANTIZE": 1,
        "CONV_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "DEQUANTIZE": 1,
    }
    assert inspection.input_dtypes == inspection.output_dtypes == ["float32"]
    for op in inspection.ops[1:-1]:
        activations = [t for t in op.inputs + op.outputs if not t.is_constant]
        assert {t.dtype for t in activations} == {"int16"}, op.name
        assert all(t.quantization.zero_points == (0,) for t in activations)
    for op in inspection.ops:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            kernel, bias = op.inputs[1], op.inputs[2]
            assert (kernel.dtype, bias.dtype) == ("int8", "int64"), op.name
    # 8 3x3 kernels and a 10x8 dense kernel.
    assert inspection.weight_bytes_by_dtype["int8"] == 8 * 9 + 10 * 8


def test_int16x8_error_below_int8(
    conv_model, conv_int8, conv_int16x8, brightness_data
):
    x_test = brightness_data[2]
    int8 = verify(conv_model, conv_int8, x_test)
    int16x8 = verify(conv_model, conv_int16x8, x_test)
    # Measured: 0.8% and 0.4% (the int8 weights remain).
    assert int16x8.relative_error < 0.7 * int8.relative_error
    assert int16x8.top1_agreement >= 0.95


@pytest.mark.parametrize(
    "quantization, io_type, calibration",
    [
        ("int8", "int8", None),
        ("int8", "int8", "mse"),
        ("int16x8", "int16", "mse"),
    ],
)
def test_integer_input_and_output(
    conv_model, brightness_data, tmp_path, quantization, io_type, calibration
):
    x_train, _, x_test, _ = brightness_data
    export = to_tflite(
        conv_model,
        tmp_path / "model.tflite",
        quantization=quantization,
        data=x_train[:100],
        calibration=calibration,
        input_type=io_type,
        output_type=io_type,
    )
    inspection = inspect_tflite(export)
    assert inspection.input_dtypes == inspection.output_dtypes == [io_type]
    assert "QUANTIZE" not in inspection.op_counts
    # LiteRTModel quantizes the float inputs and dequantizes the outputs.
    outputs = LiteRTModel(export.path).predict(x_test)
    expected = conv_model.predict(x_test, verbose=0)
    assert outputs.dtype == np.float32
    assert np.mean(outputs.argmax(-1) == expected.argmax(-1)) >= 0.95
    report = verify(conv_model, export, x_test)
    assert report.top1_agreement >= 0.95
    assert report.relative_error < 0.03


# Mixed precision: one layer that int8 cannot represent, kept in float32.


@pytest.fixture(scope="module")
def hard_case(tmp_path_factory):
    model = make_hard_model()
    x = np.random.default_rng(0).standard_normal((300, 16)).astype("float32")
    directory = tmp_path_factory.mktemp("hard")
    int8 = to_tflite(
        model,
        directory / "int8.tflite",
        quantization="int8",
        data=x[:100],
    )
    mixed = to_tflite(
        model,
        directory / "mixed.tflite",
        quantization="int8",
        data=x[:100],
        keep_float=["hard"],
    )
    return model, x[100:], int8, mixed


def test_keep_float_leaves_the_layer_in_float32(hard_case):
    _, _, _, mixed = hard_case
    assert mixed.keep_float == ("hard",)
    assert "float32: hard" in str(mixed)
    inspection = inspect_tflite(mixed)
    assert inspection.input_dtypes == inspection.output_dtypes == ["float32"]
    dense_ops = [op for op in inspection.ops if op.name == "FULLY_CONNECTED"]
    # Kernels are stored (units, inputs): fc1 (24, 16), hard (32, 24),
    # head (4, 32).
    kernels = {op.inputs[1].shape: op for op in dense_ops}
    hard = kernels[(32, 24)]
    assert {t.dtype for t in hard.inputs + hard.outputs} == {"float32"}
    for shape in [(24, 16), (4, 32)]:
        op = kernels[shape]
        assert {t.dtype for t in op.inputs[:2] + op.outputs} == {"int8"}
    assert inspection.op_counts["QUANTIZE"] == 2
    assert inspection.op_counts["DEQUANTIZE"] == 2


def test_keep_float_removes_the_error_of_the_layer(hard_case):
    model, x_test, int8, mixed = hard_case
    int8_error = verify(model, int8, x_test).relative_error
    mixed_error = verify(model, mixed, x_test).relative_error
    # Measured: 68% for full int8, 4.6% with `hard` in float32.
    assert int8_error > 0.4
    assert mixed_error < 0.1 * int8_error
    report = layer_quantization_error(model, mixed, x_test)
    assert report.row("hard").dtype == "float32"
    assert report.row("fc1").dtype == report.row("head").dtype == "int8"


def test_keep_float_fused_layers_share_an_op(brightness_data, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, name="head"),
        ]
    )
    x = brightness_data[0][:50]
    export = to_tflite(
        model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=x,
        keep_float=["relu"],
    )
    conv = next(op for op in inspect_tflite(export).ops if op.name == "CONV_2D")
    assert conv.inputs[1].dtype == "float32" and conv.activation == "RELU"
    # The batch normalization was folded into the convolution's weights.
    path = tmp_path / "other.tflite"
    with pytest.raises(
        ValueError,
        match=r"Layer 'bn' in `keep_float` has no op of its own.*"
        r"Layers with ops: conv, gap, head, relu",
    ):
        to_tflite(
            model,
            path,
            quantization="int8",
            data=x,
            keep_float=["bn"],
        )
    assert not path.exists()
    assert os.listdir(tmp_path) == ["model.tflite"]


# Argument errors: raised before any file is written.


@pytest.fixture
def small_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(10, name="head"),
        ]
    )


X_SMALL = np.zeros((4,) + INPUT_SHAPE, "float32")


@pytest.mark.parametrize("mode", ["none", "float16", "dynamic"])
def test_calibration_rejected_outside_integer_modes(
    small_model, tmp_path, mode
):
    with pytest.raises(
        ValueError,
        match=r"only applies to quantization='int8' or 'int16x8'.*"
        r"Received: calibration='mse'",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization=mode,
            calibration="mse",
        )
    assert os.listdir(tmp_path) == []


def test_unknown_calibration(small_model, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"'minmax', 'percentile', 'mse'.*Received: calibration='kl'",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            calibration="kl",
        )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("percentile", [0, -5, 100.5, "99", True])
def test_percentile_out_of_range(small_model, tmp_path, percentile):
    with pytest.raises(
        ValueError,
        match=rf"number in \(0, 100\].*Received: percentile={percentile!r}",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            calibration="percentile",
            percentile=percentile,
        )
    assert os.listdir(tmp_path) == []


def test_percentile_needs_percentile_calibration(small_model, tmp_path):
    with pytest.raises(
        ValueError, match=r"only used with calibration='percentile'"
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            calibration="mse",
            percentile=99.9,
        )


@pytest.mark.parametrize(
    "quantization, io_type, accepted",
    [
        ("int8", "int16", r"'float32' or 'int8'"),
        ("int16x8", "int8", r"'float32' or 'int16'"),
        ("none", "int8", r"float32 inputs and outputs only"),
        ("int8", "uint8", r"'float32' or 'int8'"),
    ],
)
def test_io_type_must_suit_the_mode(
    small_model, tmp_path, quantization, io_type, accepted
):
    data = X_SMALL if quantization != "none" else None
    for name in ("input_type", "output_type"):
        with pytest.raises(
            ValueError, match=rf"{accepted}.*Received: {name}='{io_type}'"
        ):
            to_tflite(
                small_model,
                tmp_path / "m.tflite",
                quantization=quantization,
                data=data,
                **{name: io_type},
            )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["none", "dynamic", "int16x8"])
def test_keep_float_needs_int8(small_model, tmp_path, mode):
    data = X_SMALL if mode == "int16x8" else None
    with pytest.raises(
        ValueError, match=rf"needs quantization='int8'.*quantization='{mode}'"
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization=mode,
            data=data,
            keep_float=["head"],
        )
    assert os.listdir(tmp_path) == []


def test_keep_float_unknown_layer_lists_the_layers(small_model, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"not in model .*: 'conv2d'. Layers: conv, gap, head. "
        r"Received: keep_float=\['conv', 'conv2d'\]",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            keep_float=["conv", "conv2d"],
        )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("keep_float", ["dense", [], [3]])
def test_keep_float_must_be_a_list_of_names(small_model, tmp_path, keep_float):
    with pytest.raises(ValueError, match=r"non-empty list of layer names"):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            keep_float=keep_float,
        )


def test_keep_float_needs_float_input_and_output(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"input and output stay float32"):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=X_SMALL,
            keep_float=["head"],
            output_type="int8",
        )


def test_int16x8_needs_data(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"int16x8 needs calibration data"):
        to_tflite(small_model, tmp_path / "m.tflite", quantization="int16x8")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(quantization="int16x8"),
        dict(quantization="int8", calibration="percentile"),
        dict(quantization="int8", keep_float=["head"]),
    ],
    ids=["int16x8", "percentile", "keep_float"],
)
@pytest.mark.parametrize("bad", ["empty", "shape"])
def test_bad_data_keeps_existing_file(
    small_model, tmp_path, kwargs, bad
):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    rng = np.random.default_rng(0)

    def batches():
        if bad == "empty":
            return
        yield rng.random((4,) + INPUT_SHAPE, "float32")
        yield rng.random((4, 8, 8, 3), "float32")  # Wrong channel count.

    message = (
        r"`data` is empty"
        if bad == "empty"
        else r"expected per-example shape \(8, 8, 1\)"
    )
    with pytest.raises(ValueError, match=message):
        to_tflite(small_model, path, data=batches, **kwargs)
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_export_records_the_calibration(conv_float, conv_int8, conv_int16x8):
    assert conv_float.calibration is None and conv_float.keep_float == ()
    assert conv_int8.calibration == conv_int16x8.calibration == "minmax"
    assert str(conv_int8).endswith("gzipped") and "(int8)" in str(conv_int8)
    assert "(int16x8)" in str(conv_int16x8)
