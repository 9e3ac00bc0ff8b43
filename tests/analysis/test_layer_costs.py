"""Tests of `tfcompress.analysis.layer_costs`: the per-layer MAC rules."""

import keras
import pytest

from tfcompress.analysis import layer_costs
from tfcompress.analysis import profile
from tfcompress.analysis.layer_costs import LayerCost
from tfcompress.analysis.layer_costs import layer_cost


def test_one_dimensional_and_three_dimensional_convolutions():
    cost = layer_cost(
        keras.layers.Conv3D(4, 3), [(1, 6, 6, 6, 2)], (1, 4, 4, 4, 4)
    )
    assert cost.macs == 4 * 4 * 4 * 3 * 3 * 3 * 2 * 4
    cost = layer_cost(
        keras.layers.Conv1DTranspose(4, 3, strides=2), [(1, 5, 2)], (1, 11, 4)
    )
    assert cost.macs == 5 * 3 * 2 * 4
    cost = layer_cost(
        keras.layers.DepthwiseConv1D(3, depth_multiplier=2),
        [(1, 10, 4)],
        (1, 8, 8),
    )
    assert cost.macs == 8 * 3 * 4 * 2
    cost = layer_cost(
        keras.layers.SeparableConv1D(6, 3), [(1, 10, 4)], (1, 8, 6)
    )
    assert cost.macs == 8 * 3 * 4 + 8 * 4 * 6


def test_cost_covers_the_whole_call_batch_included():
    # `profile` calls with a batch of one, so this is per example there.
    dense = keras.layers.Dense(4)
    assert layer_cost(dense, [(1, 3)], (1, 4)).macs == 3 * 4
    assert layer_cost(dense, [(2, 3)], (2, 4)).macs == 2 * 3 * 4
    conv = keras.layers.Conv2D(4, 3, data_format="channels_first")
    cost = layer_cost(conv, [(2, 3, 6, 6)], (2, 4, 4, 4))
    assert cost.macs == 2 * 4 * 4 * 3 * 3 * 3 * 4


def test_one_dimensional_pooling():
    cost = layer_cost(keras.layers.AveragePooling1D(2), [(1, 8, 3)], (1, 4, 3))
    assert cost.macs == 4 * 3 * 2
    cost = layer_cost(
        keras.layers.GlobalAveragePooling1D(), [(1, 8, 3)], (1, 3)
    )
    assert cost.macs == 8 * 3


@pytest.mark.parametrize(
    "equation, output_shape, input_shape, expected",
    [
        ("ab,bc->ac", 4, (3,), 3 * 4),
        ("abc,cd->abd", (5, 4), (5, 3), 5 * 3 * 4),
        ("...b,bc->...c", 4, (6, 3), 6 * 3 * 4),
    ],
)
def test_einsum_dense(equation, output_shape, input_shape, expected):
    layer = keras.layers.EinsumDense(equation, output_shape=output_shape)
    model = keras.Sequential([keras.Input(input_shape), layer])
    assert profile(model).macs == expected


def test_up_sampling_bilinear_is_unknown():
    nearest = keras.layers.UpSampling2D(2)
    assert layer_cost(nearest, [(1, 4, 4, 3)], (1, 8, 8, 3)).macs == 0
    bilinear = keras.layers.UpSampling2D(2, interpolation="bilinear")
    cost = layer_cost(bilinear, [(1, 4, 4, 3)], (1, 8, 8, 3))
    assert cost.macs is None
    assert "unknown" in cost.note


class _NoRule(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


def test_layer_without_rule_is_unknown():
    cost = layer_cost(_NoRule(), [(1, 4)], (1, 4))
    assert cost == LayerCost(None, layer_costs.UNKNOWN_MACS)
    assert not layer_costs.has_rule(_NoRule())


def test_most_specific_rule_wins():
    class ShuffleLikeConv(keras.layers.Conv2D):
        pass

    layer = ShuffleLikeConv(4, 1)
    assert layer_costs.has_rule(layer)
    assert layer_cost(layer, [(1, 2, 2, 3)], (1, 2, 2, 4)).macs == 2 * 2 * 3 * 4


def test_channel_shuffle_has_no_macs():
    from tfcompress.layers import ChannelShuffle

    cost = layer_cost(ChannelShuffle(2), [(1, 4, 4, 8)], (1, 4, 4, 8))
    assert cost.macs == 0
    assert "channel shuffle" in cost.note


def test_int8_weight_bytes():
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    assert layer_costs.int8_weight_bytes(dense, dense.kernel) == 4 * 3
    assert layer_costs.int8_weight_bytes(dense, dense.bias) == 4 * 3
    norm = keras.layers.BatchNormalization()
    norm.build((None, 4))
    assert all(
        layer_costs.int8_weight_bytes(norm, weight) == 0
        for weight in norm.weights
    )


def _profile(layer, *shapes, dtype="float32"):
    inputs = [keras.Input(shape, dtype=dtype) for shape in shapes]
    outputs = layer(inputs[0] if len(inputs) == 1 else inputs)
    model = keras.Model(inputs, outputs)
    report = profile(model)
    assert report.params == model.count_params()
    return report


@pytest.mark.parametrize(
    "layer, per_element",
    [
        # Mean, variance, apply (subtract, scale, shift).
        (keras.layers.LayerNormalization(), 3),
        (keras.layers.LayerNormalization(center=False, scale=False), 3),
        (keras.layers.GroupNormalization(groups=2), 3),
        # Mean square (or sum of squares), apply.
        (keras.layers.RMSNormalization(), 2),
        (keras.layers.UnitNormalization(), 2),
        # Folded into the layer before it at export.
        (keras.layers.BatchNormalization(), 0),
    ],
    ids=lambda value: getattr(value, "name", str(value)),
)
def test_normalizations(layer, per_element):
    report = _profile(layer, (5, 6, 4))
    assert report.macs == per_element * 5 * 6 * 4
    assert report.unknown_macs == []


def test_einsum_indices():
    sizes, summed = layer_costs.einsum_indices(
        "...qd,...kd->...qk", [(2, 3, 4, 8), (3, 5, 8)]
    )
    # The ellipsis broadcasts (2, 3) against (3,).
    assert sizes == {"1": 2, "0": 3, "q": 4, "d": 8, "k": 5}
    assert summed == {"d"}
    # Implicit output: the indices that appear once.
    assert layer_costs.einsum_indices("ij,jk", [(2, 3), (3, 4)])[1] == {"j"}
    assert layer_costs.einsum_indices("ij,jk", [(2, 3), (4, 4)]) is None
    assert layer_costs.einsum_indices("ij", [(2, 3, 4)]) is None


@pytest.mark.parametrize(
    "equation, shapes, expected",
    [
        ("bqd,bkd->bqk", [(6, 8), (5, 8)], 6 * 5 * 8),
        ("bij->bji", [(3, 4)], 0),  # A transpose.
        ("bi,bi->bi", [(4,), (4,)], 0),  # Element-wise.
        ("bi,bj->bij", [(3,), (4,)], 0),  # Outer product.
        ("bij->b", [(3, 4)], 3 * 4),  # A sum: one accumulate per value.
        ("...d,...d->...", [(6, 8), (6, 8)], 6 * 8),
    ],
)
def test_einsum_nodes(equation, shapes, expected):
    inputs = [keras.Input(shape) for shape in shapes]
    outputs = keras.ops.einsum(equation, *inputs)
    report = profile(keras.Model(inputs, outputs))
    assert report.macs == expected
    assert report.unknown_macs == []


def test_einsum_of_three_operands_is_unknown():
    inputs = [keras.Input((3,)) for _ in range(3)]
    outputs = keras.ops.einsum("bi,bi,bi->b", *inputs)
    report = profile(keras.Model(inputs, outputs))
    assert report.macs == 0
    assert len(report.unknown_macs) == 1
    assert "einsum" in report.rows[0].note


def test_dot_layer_and_ops():
    report = _profile(keras.layers.Dot(axes=2), (6, 8), (5, 8))
    assert report.macs == 6 * 5 * 8
    report = _profile(keras.layers.Dot(axes=1, normalize=True), (8,), (8,))
    # Cosine similarity: 2 MACs per element to normalize each input.
    assert report.macs == 8 + 2 * (8 + 8)
    inputs = keras.Input((6, 8))
    outputs = keras.ops.dot(inputs, keras.ops.ones((8, 3)))
    assert profile(keras.Model(inputs, outputs)).macs == 6 * 3 * 8


def test_reductions():
    inputs = keras.Input((6, 8))
    x = keras.ops.mean(inputs, axis=1)
    outputs = keras.ops.sum(x, axis=-1, keepdims=True)
    report = profile(keras.Model(inputs, outputs))
    assert report.unknown_macs == []
    assert report.macs == 6 * 8 + 8


def test_adaptive_average_pooling_uneven_bins():
    # 7 positions into 3 bins: [0, 3), [2, 5), [4, 7), 3 positions each.
    report = _profile(keras.layers.AdaptiveAveragePooling1D(3), (7, 2))
    assert report.macs == 3 * 3 * 2
    # 5 into 2: [0, 3), [2, 5).
    report = _profile(keras.layers.AdaptiveAveragePooling2D((3, 2)), (7, 5, 2))
    assert report.macs == (3 * 3) * (3 + 3) * 2
    report = _profile(keras.layers.AdaptiveMaxPooling2D(2), (6, 6, 2))
    assert report.macs == 0


def test_resizing_and_center_crop():
    nearest = keras.layers.Resizing(4, 4, interpolation="nearest")
    assert _profile(nearest, (8, 8, 3)).macs == 0
    bilinear = _profile(keras.layers.Resizing(4, 4), (8, 8, 3))
    assert bilinear.rows[0].macs is None
    assert "bilinear" in bilinear.rows[0].note
    assert len(bilinear.unknown_macs) == 1
    assert _profile(keras.layers.CenterCrop(4, 6), (8, 8, 3)).macs == 0
    # An image smaller than the target is resized (bilinear).
    grow = _profile(keras.layers.CenterCrop(12, 12), (8, 8, 3))
    assert grow.rows[0].macs is None


def test_random_augmentation_is_identity_at_inference():
    report = _profile(keras.layers.RandomRotation(0.3), (8, 8, 3))
    assert report.macs == 0
    assert "identity at inference" in report.rows[0].note


def test_reversible_embedding():
    embedding = keras.layers.ReversibleEmbedding(100, 8)
    tokens = keras.Input((5,), dtype="int32")
    x = embedding(tokens)
    logits = embedding(x, reverse=True)
    report = profile(keras.Model(tokens, logits))
    # The lookup is free; the tied output layer is a (5 x 8) @ (8 x 100).
    assert report.macs == 5 * 8 * 100
    assert report.rows[0].calls == 2


def test_spectral_normalization_counts_its_layer():
    layer = keras.layers.SpectralNormalization(keras.layers.Dense(3))
    report = _profile(layer, (4,))
    assert report.macs == 4 * 3
    assert report.unknown_macs == []


def test_lambda_is_unknown_with_its_reason():
    layer = keras.layers.Lambda(lambda x: x * 2.0, name="double")
    report = _profile(layer, (4,))
    assert report.unknown_macs == ["double"]
    assert report.rows[0].note == "MACs unknown (Lambda: arbitrary function)"


def test_inception_resnet_residual_scale_is_element_wise():
    from tfcompress.graph import keras_internals

    scale_class = keras_internals.application_layer_class(
        "inception_resnet_v2", "CustomScaleLayer"
    )
    shortcut = keras.Input((4, 4, 3))
    residual = keras.Input((4, 4, 3))
    outputs = scale_class(0.17)([shortcut, residual])
    report = profile(keras.Model([shortcut, residual], outputs))
    assert report.macs == 0
    assert report.unknown_macs == []
    assert keras_internals.application_layer_class("convnext", "Nope") is None
