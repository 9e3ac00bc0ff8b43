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
