import keras
import numpy as np
import pytest

import tfcompress
from tests.quantization.conftest import LOSS
from tests.quantization.conftest import export_qat
from tests.quantization.conftest import float_ops
from tests.quantization.conftest import top1
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.layers import ChannelShuffle
from tfcompress.layers import CPConv2D
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual
from tfcompress.layers import LowRankDense
from tfcompress.layers import PartialConv2D
from tfcompress.layers import ShuffleConv2D
from tfcompress.layers import Tucker2Conv2D
from tfcompress.quantization import ActivationQuantizer
from tfcompress.quantization import quantize_model


def _switch_off(model):
    for layer in model._flatten_layers(include_self=False):
        if hasattr(layer, "quantize_enabled"):
            layer.quantize_enabled.assign(0.0)


def test_report_lists_every_kernel_and_quantizer(trained_mobilenet):
    qat, report = quantize_model(trained_mobilenet)
    assert report.quantized == (
        "stem",
        "separable/depthwise",
        "separable/pointwise",
        *[
            f"block{b}/{k}"
            for b in (1, 2, 3)
            for k in ("expand", "depthwise", "project")
        ],
        "logits",
    )
    assert report.float_layers == ()
    quantizers = [
        layer
        for layer in qat.layers
        if isinstance(layer, ActivationQuantizer)
    ]
    # Input, stem, 2 separable, 3 per block (expand, depthwise, project),
    # 2 residual adds, pooling, logits.
    assert len(quantizers) == report.output_quantizers == 1 + 1 + 2 + 9 + 2 + 2
    assert "block1/expand" in report.table()
    # One row per layer with a kernel, in graph order.
    assert tuple(row.name for row in report.rows) == report.quantized
    assert {row.status for row in report.rows} == {"int8"}
    assert report.row("block1/expand").layer_type == "Conv2D"
    as_dict = report.to_dict()
    assert as_dict["quantized"] == list(report.quantized)
    assert as_dict["rows"][0] == {
        "name": "stem", "layer_type": "Conv2D", "status": "int8", "reason": ""
    }


def test_rewrite_computes_the_same_function_with_rounding_off(
    trained_mobilenet, digits
):
    x = digits[2][:64]
    weights_before = [w.copy() for w in trained_mobilenet.get_weights()]
    qat, _ = quantize_model(trained_mobilenet)
    # The input model is untouched: same weights, same layers, same output.
    for before, after in zip(weights_before, trained_mobilenet.get_weights()):
        np.testing.assert_array_equal(before, after)
    expected = trained_mobilenet.predict(x, verbose=0)
    _switch_off(qat)
    # Training mode with rounding off is the float model in training mode.
    reference = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)
    reference.set_weights(weights_before)
    np.testing.assert_allclose(
        qat(x, training=True), reference(x, training=True), atol=1e-5
    )
    np.testing.assert_allclose(
        trained_mobilenet.predict(x, verbose=0), expected, atol=0
    )


def test_calibrated_ranges_are_the_tensors_ranges(trained_mobilenet, digits):
    x = digits[0][:256]
    qat, _ = quantize_model(trained_mobilenet, data=x)
    input_quantizer = qat.get_layer("image_quant")
    assert float(input_quantizer.range_min.numpy()) == pytest.approx(
        float(x.min())
    )
    assert float(input_quantizer.range_max.numpy()) == pytest.approx(
        float(x.max())
    )
    # The moving statistics of batch norm are not moved by calibration.
    np.testing.assert_array_equal(
        qat.get_layer("stem_bn").moving_mean.numpy(),
        trained_mobilenet.get_layer("stem_bn").moving_mean.numpy(),
    )
    # Calibrated and untrained, the QAT model already agrees with the float
    # model on nearly every digit.
    x_test = digits[2]
    agreement = np.mean(top1(qat, x_test) == top1(trained_mobilenet, x_test))
    assert agreement >= 0.95


def test_qat_exports_fully_int8_with_parity(trained_mobilenet, digits, tmp_path):
    x, y, x_test, y_test = digits
    qat, _ = quantize_model(trained_mobilenet, data=x[:256])
    qat.compile(keras.optimizers.Adam(1e-4), LOSS, metrics=["accuracy"])
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = export_qat(qat, tmp_path / "qat.tflite")
    inspection = inspect_tflite(path)
    assert float_ops(path) == []
    names = [op.name for op in inspection.ops]
    # Conv + BN + ReLU6 folded into single int8 convs.
    assert names.count("CONV_2D") == 8
    assert names.count("DEPTHWISE_CONV_2D") == 4
    assert "MUL" not in names
    for op in inspection.ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            weights = op.inputs[1]
            channels = op.outputs[0].shape[-1]
            assert weights.dtype == "int8"
            assert weights.quantization.num_scales == channels
    report = verify(qat, path, x_test)
    assert report.top1_agreement >= 0.99
    accuracy = np.mean(top1(qat, x_test) == y_test)
    float_accuracy = np.mean(top1(trained_mobilenet, x_test) == y_test)
    assert accuracy >= float_accuracy - 0.02


def _all_layers_model():
    inputs = keras.Input((8, 8, 4))
    x = DepthwiseSeparableConv2D(8, 3, name="separable")(inputs)
    x = InvertedResidual(8, expansion=2, name="block")(x)
    x = ShuffleConv2D(8, groups=2, name="shuffle")(x)
    x = ChannelShuffle(2, name="channel_shuffle")(x)
    x = PartialConv2D(n_div=2, name="partial")(x)
    x = CPConv2D(8, 3, rank=4, name="cp")(x)
    x = Tucker2Conv2D(8, 3, ranks=(4, 4), name="tucker")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = LowRankDense(6, rank=3, name="low_rank")(x)
    branch = keras.layers.Dense(6, name="branch")(x)
    x = keras.layers.Concatenate(name="concat")([x, branch])
    outputs = keras.layers.Dense(5, name="logits")(x)
    return keras.Model(inputs, outputs)


def test_every_tfcompress_layer_is_quantized_and_converts(tmp_path):
    model = _all_layers_model()
    x = np.random.default_rng(0).uniform(0, 1, (128, 8, 8, 4)).astype(
        "float32"
    )
    qat, report = quantize_model(model, data=x, strict=True)
    assert report.float_layers == ()
    assert report.quantized == (
        "separable/depthwise",
        "separable/pointwise",
        "block/expand",
        "block/depthwise",
        "block/project",
        "shuffle/conv",
        "partial/conv",
        "cp/input_projection",
        "cp/vertical",
        "cp/horizontal",
        "cp/output_projection",
        "tucker/input_projection",
        "tucker/core",
        "tucker/output_projection",
        "low_rank/u",
        "low_rank/v",
        "branch",
        "logits",
    )
    path = export_qat(qat, tmp_path / "all.tflite")
    assert float_ops(path) == []
    assert verify(qat, path, x[:64]).top1_agreement >= 0.95


def test_nested_models_are_inlined(digits, tmp_path):
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
        ],
        name="features",
    )
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10, name="head")(inner(inputs))
    model = keras.Model(inputs, outputs)
    qat, report = quantize_model(model, data=digits[0][:128])
    assert report.quantized == ("features/conv", "head")
    path = export_qat(qat, tmp_path / "nested.tflite")
    assert float_ops(path) == []
    # The input model still holds its nested model, unchanged.
    assert model.layers[1] is inner


def test_a_softmax_output_gets_its_own_activation_op(digits, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    qat, _ = quantize_model(model, data=digits[0][:128])
    assert {"probs_preact_quant", "probs_activation", "probs_quant"} <= {
        layer.name for layer in qat.layers
    }
    path = export_qat(qat, tmp_path / "softmax.tflite")
    names = [op.name for op in inspect_tflite(path).ops]
    assert "SOFTMAX" in names
    assert float_ops(path) == []


def test_layer_without_int8_rewrite_stays_float_or_raises_when_strict(digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    # GroupNormalization: weights, and no int8 rewrite.
    x = keras.layers.GroupNormalization(groups=2, name="norm")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    _, report = quantize_model(model)
    assert [path for path, _ in report.float_layers] == ["norm"]
    assert "GroupNormalization" in report.float_layers[0][1]
    assert "float  norm" in report.table()
    with pytest.raises(ValueError, match="cannot quantize layer 'norm'"):
        quantize_model(model, strict=True)


def test_filters_quantize_a_subset_that_still_exports_all_int8(
    trained_mobilenet, digits, tmp_path
):
    x, _, x_test, _ = digits
    qat, report = quantize_model(trained_mobilenet, filters="block", data=x[:256])
    assert report.quantized == tuple(
        f"block{b}/{k}" for b in (1, 2, 3) for k in ("expand", "depthwise", "project")
    )
    assert report.float_layers == tuple(
        (path, "not selected by filters")
        for path in ("stem", "separable/depthwise", "separable/pointwise", "logits")
    )
    assert [row.name for row in report.rows][:4] == [
        "stem", "separable/depthwise", "separable/pointwise", "block1/expand"
    ]
    assert "float  stem (Conv2D)" in report.table()
    # Unselected layers keep their float layer (no rounding in training).
    assert type(qat.get_layer("stem")) is keras.layers.Conv2D
    assert type(qat.get_layer("block1_expand")).__name__ == "QuantizedConv2D"
    # The converter's QAT path stores their kernels in int8 all the same.
    export = to_tflite(qat, tmp_path / "subset.tflite", quantization="int8")
    assert float_ops(export.path) == []
    assert verify(qat, export.path, x_test).top1_agreement >= 0.97


def test_filters_by_callable_class_and_path(trained_mobilenet):
    _, report = quantize_model(trained_mobilenet, filters=lambda layer: layer.name == "logits")
    assert report.quantized == ("logits",)
    _, report = quantize_model(trained_mobilenet, filters=keras.layers.DepthwiseConv2D)
    assert report.quantized == tuple(
        ["separable/depthwise"] + [f"block{b}/depthwise" for b in (1, 2, 3)]
    )
    # A path: the one layer of one block.
    _, report = quantize_model(trained_mobilenet, filters=["block2/project", "^stem$"])
    assert report.quantized == ("stem", "block2/project")


def test_unselected_layers_never_raise_when_strict(digits):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    _, report = quantize_model(model, filters=["conv", "head"], strict=True)
    assert report.quantized == ("conv", "head")
    assert report.float_layers == (("norm", "not selected by filters"),)


def test_the_qat_model_is_compiled_like_the_input(trained_mobilenet):
    qat, _ = quantize_model(trained_mobilenet)
    assert qat.compiled and qat.optimizer is not trained_mobilenet.optimizer
    assert qat.get_compile_config() == trained_mobilenet.get_compile_config()
    uncompiled, _ = quantize_model(tfcompress.models.small_mobilenet_v2((8, 8, 1), 10))
    assert not uncompiled.compiled


@pytest.mark.parametrize(
    "filters, message",
    [
        ("nope", r"`filters` matched no layer that quantize_model can handle: 'nope'. Such layers: 'stem', "),
        (["stem", "pool"], r"matched no layer that quantize_model can handle: 'pool'"),
        (3, r"`filters` must be None, a regular expression"),
        ("(", r"invalid regular expression"),
    ],
)
def test_bad_filters_raise_clear_errors(trained_mobilenet, filters, message):
    with pytest.raises(ValueError, match=message):
        quantize_model(trained_mobilenet, filters=filters)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_bad_input_raises_clear_errors(trained_mobilenet):
    with pytest.raises(ValueError, match="weight_bits.*from 2 to 8"):
        quantize_model(trained_mobilenet, weight_bits=1)
    with pytest.raises(ValueError, match="activation_bits.*Received"):
        quantize_model(trained_mobilenet, activation_bits=16)
    subclassed = _Subclassed()
    subclassed(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed model"):
        quantize_model(subclassed)
    with pytest.raises(ValueError, match="built Keras model"):
        quantize_model(keras.layers.Dense(3))
    qat, _ = quantize_model(trained_mobilenet)
    with pytest.raises(ValueError, match="already quantization-aware"):
        quantize_model(qat)


def test_weight_rounding_on_the_int8_grid_per_channel(trained_mobilenet):
    qat, _ = quantize_model(trained_mobilenet, weight_bits=4)
    layer = qat.get_layer("block1_expand")
    kernel = layer.kernel.numpy()
    rounded = layer._rounded(layer.kernel, training=False).numpy()
    bound = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    levels = rounded / (bound / 7.0)
    # 4 bits, narrow range: integers in [-7, 7], per output channel.
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert np.abs(levels).max() <= 7 + 1e-3
    for channel in range(kernel.shape[-1]):
        assert len(np.unique(np.round(levels[..., channel]))) <= 15


def test_to_tflite_exports_a_qat_model_without_calibration_data(
    trained_mobilenet, digits, tmp_path
):
    x, _, x_test, _ = digits
    qat, _ = quantize_model(trained_mobilenet, data=x[:256])
    export = to_tflite(qat, tmp_path / "qat.tflite", quantization="int8")
    assert float_ops(export.path) == []
    assert verify(qat, export.path, x_test).top1_agreement >= 0.99
    # int8 input: the file takes the QAT model's learned input scale.
    export = to_tflite(
        qat, tmp_path / "qat_io.tflite", quantization="int8",
        input_type="int8", output_type="int8",
    )
    inspection = inspect_tflite(export.path)
    assert inspection.inputs[0].dtype == "int8"
    scale = inspection.inputs[0].quantization.scales[0]
    quantizer = qat.get_layer("image_quant")
    span = float(quantizer.range_max.numpy()) - min(
        float(quantizer.range_min.numpy()), 0.0
    )
    assert scale == pytest.approx(span / 255, rel=1e-3)
    assert verify(qat, export.path, x_test).top1_agreement >= 0.99


def test_to_tflite_refuses_what_a_qat_model_would_ignore(
    trained_mobilenet, digits, tmp_path
):
    qat, _ = quantize_model(trained_mobilenet)
    path = tmp_path / "qat.tflite"
    with pytest.raises(ValueError, match="data` would be"):
        to_tflite(qat, path, quantization="int8",
                  data=digits[0][:10])
    with pytest.raises(ValueError, match="exports with quantization='int8'"):
        to_tflite(qat, path, quantization="float16")
    with pytest.raises(ValueError, match="post-training quantization"):
        to_tflite(qat, path, quantization="int8", calibration="mse")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
