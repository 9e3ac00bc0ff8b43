"""Quantization-aware rewrites of transformer and text layers, one by one.

Each twin computes what the float layer computes when its rounding is
off, and each rewrite converts to int8 TFLite ops that match the
quantization-aware model.
"""

import keras
import numpy as np
import pytest

from tests.quantization.conftest import LOSS
from tests.quantization.conftest import float_ops
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.quantization import ActivationQuantizer
from tfcompress.quantization import QuantizeRule
from tfcompress.quantization import quantize_model
from tfcompress.quantization.quantized_attention import (
    GroupedQueryAttentionInOps,
)
from tfcompress.quantization.quantized_attention import (
    MultiHeadAttentionInOps,
)
from tfcompress.quantization.quantized_einsum_dense import (
    QuantizedEinsumDense,
)
from tfcompress.quantization.quantized_embedding import QuantizedEmbedding
from tfcompress.quantization.quantized_layers import QuantizedDense
from tfcompress.quantization.quantized_normalization import (
    QuantizedLayerNormalization,
)


def _twin(layer, twin_class, x, **extra):
    """`twin_class` built from `layer`'s config, with its weights."""
    twin = twin_class.from_config({**layer.get_config(), **extra})
    twin(x)
    for target, source in zip(twin.weights, layer.weights):
        target.assign(source)
    return twin


def _switch(model_or_layer, on):
    """Turns every rounding (kernels, tables, activations) on or off."""
    for layer in model_or_layer._flatten_layers(include_self=True):
        if hasattr(layer, "quantize_enabled"):
            layer.quantize_enabled.assign(1.0 if on else 0.0)


def _round_per_channel(matrix, bits=8):
    """Symmetric narrow-range rounding, one scale per column (numpy)."""
    levels = 2 ** (bits - 1) - 1
    scale = np.maximum(np.abs(matrix).max(axis=0), 1e-8) / levels
    return np.round(matrix / scale) * scale


def _fit(model, x, y, epochs=1, learning_rate=1e-3):
    model.compile(
        keras.optimizers.Adam(learning_rate), LOSS, jit_compile=False
    )
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)


def test_dense_on_token_inputs_stays_int8_after_training(tmp_path):
    # Before: Keras's 3-D matmul put the bias after its reshape, so once
    # `fit` made the bias non-zero the FULLY_CONNECTED output had no range
    # and the converter left both Dense layers float.
    inputs = keras.Input((6, 8))
    x = keras.layers.Dense(16, activation="relu", name="up")(inputs)
    x = keras.layers.Dense(8, name="down")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(512, 6, 8)).astype("float32")
    y_train = np.argmax(x_train[:, :, :3].mean(axis=1), axis=-1)
    qat, report = quantize_model(model)
    assert report.quantized == ("up", "down", "head")
    _fit(qat, x_train, y_train)
    assert np.abs(qat.get_layer("up").bias.numpy()).max() > 0
    path = to_tflite(qat, tmp_path / "dense.tflite", quantization="int8").path
    assert float_ops(path) == []
    connected = [
        op for op in inspect_tflite(path).ops if op.name == "FULLY_CONNECTED"
    ]
    assert len(connected) == 3
    for op in connected:
        weights, bias = op.inputs[1], op.inputs[2]
        assert weights.dtype == "int8"
        assert weights.quantization.num_scales == op.outputs[0].shape[-1]
        assert bias.dtype == "int32"  # Fused into the op.
    assert verify(qat, path, x_train).top1_agreement == 1.0


def test_dense_twin_on_tokens_is_the_dense_layer_with_rounding_off():
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 8)).astype("float32")
    dense = keras.layers.Dense(6, activation="relu", bias_initializer="ones")
    expected = dense(x)
    twin = _twin(dense, QuantizedDense, x, weight_bits=8)
    _switch(twin, on=False)
    np.testing.assert_allclose(twin(x, training=True), expected, atol=1e-6)
    # Rounding on: the kernel on its per-channel int8 grid.
    rounded = _round_per_channel(dense.kernel.numpy())
    reference = np.maximum(x @ rounded + 1.0, 0.0)
    np.testing.assert_allclose(twin(x), reference, atol=1e-5)


EINSUM_CASES = [
    # Attention projections: queries / keys / values, and the output.
    ("abc,cde->abde", (None, 2, 4), "de", (5, 8)),
    ("abcd,cde->abe", (None, 6), "e", (5, 2, 4)),
    ("btd,de->bte", (None, 12), "e", (5, 8)),
    ("...b,bc->...c", 7, "c", (3, 5, 8)),
    ("abc,cd->abd", (None, 3), None, (5, 8)),
    ("abc,dce->abde", (None, 2, 4), "e", (5, 8)),
    # Not matrix products: one kernel per position, a bias on a free axis.
    ("abc,bcd->abd", (5, 3), "d", (5, 8)),
    ("abcd,cde->abe", (5, 6), "b", (5, 2, 4)),
]


@pytest.mark.parametrize("equation, output_shape, bias_axes, shape", EINSUM_CASES)
def test_einsum_dense_twin_rounds_each_output_channel(
    equation, output_shape, bias_axes, shape
):
    x = np.random.default_rng(2).normal(size=(2, *shape)).astype("float32")
    layer = keras.layers.EinsumDense(
        equation,
        output_shape=output_shape,
        bias_axes=bias_axes,
        bias_initializer="random_normal",
        activation="relu",
    )
    expected = layer(x)
    twin = _twin(layer, QuantizedEinsumDense, x, weight_bits=8)
    _switch(twin, on=False)
    np.testing.assert_allclose(twin(x, training=True), expected, atol=1e-5)
    # Rounding on: the einsum with the kernel rounded per element of its
    # output axes (those it shares with the output only).
    inputs, rest = equation.split(",")
    kernel_axes, outputs = rest.split("->")
    channels = [a for a in kernel_axes if a in outputs]
    others = [a for a in kernel_axes if a not in channels]
    order = [kernel_axes.index(a) for a in others + channels]
    kernel = np.transpose(layer.kernel.numpy(), order)
    moved_shape = kernel.shape
    kernel = _round_per_channel(kernel.reshape(-1, np.prod(
        moved_shape[len(others):]
    ))).reshape(moved_shape)
    kernel = np.transpose(kernel, np.argsort(order))
    reference = keras.ops.einsum(equation, x, kernel)
    if layer.bias is not None:
        reference = reference + layer.bias.numpy()
    reference = np.maximum(reference, 0.0)
    np.testing.assert_allclose(twin(x), reference, atol=1e-5)


def test_embedding_twin_reads_a_per_tensor_int8_table():
    ids = np.array([[1, 5, 0, 9], [3, 3, 7, 2]])
    layer = keras.layers.Embedding(10, 6, embeddings_initializer="normal")
    expected = layer(ids)
    twin = _twin(layer, QuantizedEmbedding, ids, weight_bits=8)
    _switch(twin, on=False)
    np.testing.assert_allclose(twin(ids, training=True), expected)
    table = layer.embeddings.numpy()
    low, high = min(table.min(), 0.0), max(table.max(), 0.0)
    scale = (high - low) / 255
    zero_point = np.round(-low / scale)
    rows = np.asarray(twin(ids))
    levels = rows / scale + zero_point
    # One grid for the whole table: TFLite's GATHER on int8 data.
    np.testing.assert_allclose(levels, np.round(levels), atol=2e-3)
    assert np.abs(rows - np.asarray(expected)).max() <= scale / 2 + 1e-6
    assert levels.min() >= -1e-3 and levels.max() <= 255 + 1e-3


LAYER_NORM_CASES = [
    {"epsilon": 1e-6},
    {"axis": [1, 2]},
    {"rms_scaling": True},
    {"center": False},
    {"scale": False},
    {"center": False, "scale": False},
]


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("config", LAYER_NORM_CASES)
def test_layer_normalization_twin_is_the_layer_with_rounding_off(config):
    x = np.random.default_rng(3).normal(2.0, 3.0, (2, 4, 5, 6))
    x = x.astype("float32")
    layer = keras.layers.LayerNormalization(
        beta_initializer="random_normal",
        gamma_initializer="random_normal",
        **config,
    )
    expected = layer(x)
    twin = _twin(
        layer,
        QuantizedLayerNormalization,
        x,
        weight_bits=8,
        activation_bits=8,
    )
    _switch(twin, on=False)
    np.testing.assert_allclose(twin(x, training=True), expected, atol=2e-5)
    # With rounding, it stays close: every intermediate tensor is int8.
    _switch(twin, on=True)
    twin(x, training=True)  # Sets the ranges.
    error = np.abs(np.asarray(twin(x)) - np.asarray(expected)).max()
    assert 0 < error < 0.1 * np.abs(np.asarray(expected)).max()


def _attention_inputs():
    rng = np.random.default_rng(4)
    query = rng.normal(size=(2, 5, 8)).astype("float32")
    value = rng.normal(size=(2, 7, 8)).astype("float32")
    mask = rng.uniform(size=(2, 5, 7)) > 0.3
    return query, value, mask


@pytest.mark.parametrize("keyword", ["plain", "mask", "causal", "scores"])
def test_attention_in_ops_computes_what_keras_attention_computes(keyword):
    query, value, mask = _attention_inputs()
    kwargs = {
        "plain": {},
        "mask": {"attention_mask": mask},
        "causal": {"use_causal_mask": True},
        "scores": {"return_attention_scores": True},
    }[keyword]
    for layer, twin_class in [
        (
            keras.layers.MultiHeadAttention(2, 4, dropout=0.2),
            MultiHeadAttentionInOps,
        ),
        (
            keras.layers.GroupQueryAttention(
                head_dim=4, num_query_heads=4, num_key_value_heads=2
            ),
            GroupedQueryAttentionInOps,
        ),
    ]:
        expected = layer(query, value, **kwargs)
        twin = twin_class.from_config(layer.get_config())
        twin(query, value)
        twin.set_weights(layer.get_weights())
        got = twin(query, value, **kwargs)
        for a, b in zip(keras.tree.flatten(got), keras.tree.flatten(expected)):
            np.testing.assert_allclose(a, b, atol=1e-5)


def _attention_model(kind):
    inputs = keras.Input((8, 16))
    if kind == "grouped_query":
        attention = keras.layers.GroupQueryAttention(
            head_dim=4, num_query_heads=4, num_key_value_heads=2, name="mha"
        )
        y = attention(inputs, inputs)
    else:
        attention = keras.layers.MultiHeadAttention(
            2, 8, dropout=0.1 if kind == "dropout" else 0.0, name="mha"
        )
        y = attention(inputs, inputs, use_causal_mask=kind == "causal")
    y = keras.layers.GlobalAveragePooling1D()(y)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(y))


@pytest.mark.parametrize(
    "kind, min_agreement",
    [
        ("dropout", 0.99),
        # A masked score is -1e9 in Keras (probability 0); the file's
        # SELECT_V2 puts the int8 scores' smallest value there instead, so
        # a little probability leaks to masked positions (known, see
        # `MultiHeadAttentionInOps`).
        ("causal", 0.98),
        ("grouped_query", 0.99),
    ],
)
def test_attention_exports_int8_matmuls_and_softmax(
    kind, min_agreement, tmp_path
):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(512, 8, 16)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("int32")
    qat, report = quantize_model(_attention_model(kind), strict=True)
    # In graph order: grouped-query attention projects its keys first.
    assert sorted(report.quantized) == [
        "head",
        "mha/attention_output",
        "mha/key",
        "mha/query",
        "mha/value",
    ]
    # The scores go through a softmax with TFLite's fixed int8 range.
    fixed = [
        layer
        for layer in qat.layers
        if isinstance(layer, ActivationQuantizer) and layer.fixed_range
    ]
    assert len(fixed) == 1 and fixed[0].name.startswith("mha_softmax")
    _fit(qat, x, y)
    path = to_tflite(qat, tmp_path / "mha.tflite", quantization="int8").path
    assert float_ops(path) == []
    inspection = inspect_tflite(path)
    names = [op.name for op in inspection.ops]
    assert names.count("FULLY_CONNECTED") == 5
    assert names.count("BATCH_MATMUL") == 2
    (softmax,) = [op for op in inspection.ops if op.name == "SOFTMAX"]
    output = softmax.outputs[0].quantization
    assert output.scales[0] == pytest.approx(1 / 256)
    assert output.zero_points[0] == -128
    assert verify(qat, path, x).top1_agreement >= min_agreement


def test_fixed_range_quantizer_rounds_on_the_softmax_grid():
    quantizer = ActivationQuantizer(fixed_range=(0.0, 255 / 256))
    probabilities = keras.ops.softmax(
        np.random.default_rng(6).normal(size=(4, 10)).astype("float32")
    )
    for training in (True, False):
        rounded = np.asarray(quantizer(probabilities, training=training))
        np.testing.assert_allclose(
            rounded * 256, np.round(rounded * 256), atol=1e-4
        )
    # Training does not move a fixed range.
    assert float(quantizer.range_max.numpy()) == pytest.approx(255 / 256)
    config = quantizer.get_config()
    assert ActivationQuantizer.from_config(config).fixed_range == (
        0.0,
        255 / 256,
    )
    with pytest.raises(ValueError, match="fixed_range"):
        ActivationQuantizer(fixed_range=(1.0, 0.0))


def test_activation_rules_follow_the_activation():
    inputs = keras.Input((4, 8))
    x = keras.layers.Dense(8, name="dense")(inputs)
    x = keras.layers.Activation("linear", name="identity")(x)
    x = keras.layers.Activation("gelu", name="gelu")(x)
    x = keras.layers.Dense(8, name="logits")(x)
    x = keras.layers.Softmax(name="probs")(x)
    qat, _ = quantize_model(keras.Model(inputs, x))
    quantizers = {
        layer.name: layer
        for layer in qat.layers
        if isinstance(layer, ActivationQuantizer)
    }
    # The linear activation keeps the dense layer's scale; GELU gets one of
    # its own; softmax gets TFLite's fixed one.
    assert "identity_quant" not in quantizers
    assert "gelu_quant" in quantizers
    assert quantizers["probs_quant"].fixed_range == (0.0, 255 / 256)
    assert quantizers["gelu_quant"].fixed_range is None


def test_per_layer_and_fixed_range_rules_check_their_arguments():
    with pytest.raises(ValueError, match="minimum < maximum"):
        QuantizeRule.fixed_range(1.0, 1.0)
    with pytest.raises(ValueError, match="`choose` must be a function"):
        QuantizeRule.per_layer("relu")
    rule = QuantizeRule.per_layer(lambda layer: "relu")
    with pytest.raises(ValueError, match="must choose a QuantizeRule"):
        rule.resolve(keras.layers.ReLU())


def test_text_model_with_masked_attention_quantizes_every_matmul(tmp_path):
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, 50, (512, 8)).astype("int32")
    tokens[:, 6:] = 0  # Padding, masked in the attention.
    labels = (tokens[:, 0] > 25).astype("int32")
    inputs = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(50, 16, mask_zero=True, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    qat, report = quantize_model(model, strict=True)
    assert report.quantized[0] == "embed"
    _fit(qat, tokens, labels)
    path = to_tflite(qat, tmp_path / "text.tflite", quantization="int8").path
    assert float_ops(path) == []
    inspection = inspect_tflite(path)
    (gather,) = [op for op in inspection.ops if op.name == "GATHER"]
    assert gather.inputs[0].dtype == "int8"
    assert gather.inputs[0].quantization.num_scales == 1
    # The padding mask reaches the softmax as a select on int8 scores.
    assert "SELECT_V2" in [op.name for op in inspection.ops]
    assert verify(qat, path, tokens).top1_agreement >= 0.99
