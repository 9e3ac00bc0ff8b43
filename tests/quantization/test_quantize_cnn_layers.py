"""Quantization-aware rewrites of the layers of real CNNs, a few layers each.

Each model converts to int8 TFLite builtins (read back from the file) that
match the quantization-aware Keras model in LiteRT: separable, 1-D and
transposed convolutions, average pooling on its input's scale (DenseNet's
pooling + concatenation), batch norm that cannot fold, input
normalization, sigmoid / tanh on TFLite's fixed ranges, swish, hard
sigmoid and squeeze-and-excitation.
"""

import keras
import numpy as np
import pytest

from tests.quantization.conftest import float_ops
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.quantization import quantize_model

L = keras.layers


def _data(shape, count=128, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(count, *shape)) * scale).astype("float32")


def _fit_briefly(model, x):
    """One epoch on random targets: batch norms get non-trivial statistics.

    The outputs have no meaningful top-1 (random targets), so these tests
    compare them by relative error; the zoo tier checks agreement on
    trained models.
    """
    rng = np.random.default_rng(1)
    y = rng.normal(size=(len(x), *model.output.shape[1:])).astype("float32")
    model.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=False)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)


def _export(model, x, tmp_path):
    """`(qat_model, report, ops of its int8 file, parity)`."""
    qat, report = quantize_model(model, data=x[:64])
    exported = to_tflite(
        qat, str(tmp_path / "qat.tflite"), quantization="int8", verbose=False
    )
    assert exported.precision.is_integer, exported.precision.table()
    assert float_ops(exported.path) == []
    ops = [op.name for op in inspect_tflite(exported.path).ops]
    return qat, report, ops, verify(qat, exported, x)


def _output_quantization(path, op_name):
    """`(scale, zero point)` of the first `op_name` op's output."""
    for op in inspect_tflite(path).ops:
        if op.name == op_name:
            quantization = op.outputs[0].quantization
            return quantization.scales[0], quantization.zero_points[0]
    raise AssertionError(f"no {op_name} in {path}")


def test_separable_conv2d_is_a_depthwise_and_a_pointwise_int8_conv(tmp_path):
    inputs = keras.Input((10, 10, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = L.SeparableConv2D(8, 3, padding="same", use_bias=False, name="sep")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.SeparableConv2D(
        12, 3, strides=2, activation="relu", depth_multiplier=2, name="down"
    )(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(4, name="head")(x))
    x = _data((10, 10, 3))
    _fit_briefly(model, x)
    _, report, ops, parity = _export(model, x, tmp_path)
    assert report.quantized == (
        "stem",
        "sep/depthwise",
        "sep/pointwise",
        "down/depthwise",
        "down/pointwise",
        "head",
    )
    assert ops.count("DEPTHWISE_CONV_2D") == 2
    assert ops.count("CONV_2D") == 3
    # Before: no rewrite, both separable convolutions float in the file.
    # A level here and there, as for Conv2D with a folded batch norm.
    assert parity.relative_error < 0.02, str(parity)


def test_conv1d_and_depthwise_conv1d_fold_their_batch_norms(tmp_path):
    inputs = keras.Input((20, 6))
    x = L.Conv1D(8, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.Conv1D(8, 3, strides=2, padding="causal", name="c2")(x)
    x = L.BatchNormalization()(x)
    x = L.DepthwiseConv1D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, L.Dense(4, name="head")(x))
    x = _data((20, 6))
    _fit_briefly(model, x)
    _, report, ops, parity = _export(model, x, tmp_path)
    assert report.float_layers == ()
    # Before: each batch norm was a DEQUANTIZE, float MUL, ADD, QUANTIZE.
    assert "MUL" not in ops and "ADD" not in ops
    assert ops.count("DEQUANTIZE") == 1  # The output's.
    assert ops.count("CONV_2D") == 2 and ops.count("DEPTHWISE_CONV_2D") == 1
    assert parity.relative_error < 0.02, str(parity)


def test_conv2d_transpose_is_an_int8_transpose_conv(tmp_path):
    inputs = keras.Input((6, 6, 3))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.Conv2DTranspose(6, 3, strides=2, padding="same", name="up")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.Conv2DTranspose(4, 2, strides=2, activation="relu", name="up2")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(4)(x))
    x = _data((6, 6, 3))
    _fit_briefly(model, x)
    _, report, ops, parity = _export(model, x, tmp_path)
    assert {"up", "up2"} <= set(report.quantized)
    assert ops.count("TRANSPOSE_CONV") == 2
    assert "MUL" not in ops  # The batch norm folded.
    assert parity.relative_error < 0.03, str(parity)


def test_average_pooling_then_concatenation_converts_and_keeps_scale(
    tmp_path,
):
    # DenseNet's transition and block: before, the converter refused the
    # file ("'tfl.average_pool_2d' op quantization parameters violate the
    # same scale constraint"). The batch norm after the pooling has no conv
    # to fold into: int8 MUL and ADD.
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.Conv2D(8, 1, use_bias=False)(x)
    pooled = L.AveragePooling2D(2)(x)
    y = L.BatchNormalization()(pooled)
    y = L.ReLU()(y)
    y = L.Conv2D(4, 3, padding="same", use_bias=False)(y)
    x = L.Concatenate()([pooled, y])
    x = L.AveragePooling2D(3, strides=1, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(4)(x))
    x = _data((8, 8, 3))
    _fit_briefly(model, x)
    _, _, ops, parity = _export(model, x, tmp_path)
    assert ops.count("AVERAGE_POOL_2D") == 2
    assert ops.count("MUL") == 1 and ops.count("ADD") == 1
    # Every average pool's output has its input's scale and zero point.
    inspection = inspect_tflite(tmp_path / "qat.tflite")
    producers = {t.index: op for op in inspection.ops for t in op.outputs}
    for op in inspection.ops:
        if op.name == "AVERAGE_POOL_2D":
            source = op.inputs[0]
            while producers[source.index].name == "QUANTIZE":
                source = producers[source.index].inputs[0]
            assert op.outputs[0].quantization == source.quantization
    # Means are rounded half up here, half away from zero in TFLite: ties
    # of negative int8 sums differ by one level.
    assert parity.relative_error < 0.03, str(parity)


def test_max_pooling_read_by_a_concatenation_keeps_its_scale(tmp_path):
    # DenseNet's first block: the pooled tensor is concatenated and also
    # read by a batch norm. Before, the converter moved the concatenation's
    # scale up to the max pooling, and the batch norm read requantized
    # values the Keras model never saw.
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    pooled = L.MaxPooling2D(2)(x)
    y = L.BatchNormalization()(pooled)
    y = L.ReLU()(y)
    y = L.Conv2D(8, 3, padding="same", activation="relu")(y)
    x = L.Concatenate()([pooled, L.Conv2D(8, 1)(y)])
    model = keras.Model(inputs, L.Conv2D(4, 1)(x))
    x = _data((8, 8, 3))
    _fit_briefly(model, x)
    _, _, ops, parity = _export(model, x, tmp_path)
    inspection = inspect_tflite(tmp_path / "qat.tflite")
    pool = next(op for op in inspection.ops if op.name == "MAX_POOL_2D")
    assert pool.outputs[0].quantization == pool.inputs[0].quantization
    multiply = next(op for op in inspection.ops if op.name == "MUL")
    assert multiply.inputs[0].index == pool.outputs[0].index
    assert parity.relative_error < 0.05, str(parity)


def test_global_average_pooling_matches_exactly(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 1)(inputs)
    model = keras.Model(inputs, L.GlobalAveragePooling2D()(x))
    _, _, ops, parity = _export(model, _data((8, 8, 3)), tmp_path)
    assert "MEAN" in ops
    assert parity.relative_error == 0.0, str(parity)


@pytest.mark.parametrize(
    "activation, op, scale, zero_point",
    [
        ("sigmoid", "LOGISTIC", 1 / 256, -128),
        ("tanh", "TANH", 1 / 128, 0),
    ],
)
def test_sigmoid_and_tanh_round_on_tflites_fixed_ranges(
    activation, op, scale, zero_point, tmp_path
):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.Activation(activation)(x)
    x = L.Conv2D(8, 3, padding="same", activation=activation)(x)
    model = keras.Model(inputs, L.Conv2D(4, 1)(x))
    _, _, ops, parity = _export(model, _data((8, 8, 3)), tmp_path)
    assert ops.count(op) == 2
    # Before: a learned range, and a requantizing QUANTIZE after each.
    assert ops.count("QUANTIZE") == 1
    found_scale, found_zero_point = _output_quantization(
        tmp_path / "qat.tflite", op
    )
    assert found_scale == pytest.approx(scale)
    assert found_zero_point == zero_point
    assert parity.relative_error < 1e-3, str(parity)


def test_swish_and_hard_sigmoid_are_rounded_op_by_op(tmp_path):
    # Swish is LOGISTIC then MUL, hard sigmoid ADD (+ RELU6) then MUL, each
    # output on its own scale: as layers, and split off a conv.
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="swish")(inputs)
    x = L.Conv2D(8, 3, padding="same")(x)
    x = L.Activation("hard_sigmoid")(x)
    x = L.Conv2D(8, 1)(x)
    x = L.Activation("swish")(x)
    x = L.Conv2D(8, 1, activation="hard_swish")(x)
    model = keras.Model(inputs, L.Conv2D(4, 1)(x))
    _, _, ops, parity = _export(model, _data((8, 8, 3)), tmp_path)
    assert ops.count("LOGISTIC") == 2
    assert ops.count("HARD_SWISH") == 1
    assert ops.count("MUL") == 3 and ops.count("ADD") == 1
    assert ops.count("QUANTIZE") == 1
    assert parity.relative_error < 0.01, str(parity)


def test_squeeze_and_excitation_multiply_matches(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(4, 1, activation="relu")(s)
    s = L.Conv2D(8, 1, activation="sigmoid")(s)
    x = L.Multiply()([x, s])
    model = keras.Model(inputs, L.Conv2D(4, 1)(x))
    _, _, ops, parity = _export(model, _data((8, 8, 3)), tmp_path)
    assert ops.count("LOGISTIC") == 1 and ops.count("MUL") == 1
    assert ops.count("QUANTIZE") == 1
    assert parity.relative_error < 1e-3, str(parity)


def test_input_rescaling_and_normalization_are_int8_ops(tmp_path):
    x = _data((8, 8, 3), scale=60.0) + 128.0
    normalization = L.Normalization()
    normalization.adapt(x / 255.0)
    inputs = keras.Input((8, 8, 3))
    y = L.Rescaling(1 / 127.5, offset=-1.0)(inputs)  # MobileNetV3's.
    y = L.Rescaling(127.5 / 255.0, offset=0.5)(y)
    y = normalization(y)  # EfficientNet's.
    model = keras.Model(inputs, L.Conv2D(4, 3)(y))
    _, report, ops, parity = _export(model, x, tmp_path)
    assert report.float_layers == ()
    assert ops.count("MUL") == 3 and ops.count("ADD") == 3
    assert parity.relative_error < 1e-3, str(parity)


def test_rewritten_layers_round_trip_through_keras_files(tmp_path):
    inputs = keras.Input((12, 6))
    x = L.Rescaling(0.5, offset=1.0)(inputs)
    x = L.Conv1D(8, 3, padding="same", activation="swish")(x)
    x = L.AveragePooling1D(2)(x)
    x = L.BatchNormalization()(x)
    x = L.DepthwiseConv1D(3)(x)
    model = keras.Model(inputs, L.GlobalAveragePooling1D()(x))
    x = _data((12, 6))
    qat, _ = quantize_model(model, data=x[:64])
    path = tmp_path / "qat.keras"
    qat.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        loaded.predict(x[:16], verbose=0), qat.predict(x[:16], verbose=0)
    )
