import keras
import numpy as np
import pytest

from tfcompress.layers import LowRankDense


def test_from_factors_equals_dense_with_product_kernel():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(12, 3)), rng.normal(size=(3, 5))
    bias = rng.normal(size=5)
    layer = LowRankDense.from_factors(u, v, bias=bias, activation="relu")
    x = rng.normal(size=(4, 12)).astype("float32")
    expected = np.maximum(x @ (u @ v) + bias, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5)
    np.testing.assert_allclose(layer.full_kernel(), u @ v, atol=1e-6)


def test_parameter_count_is_m_plus_n_times_rank():
    layer = LowRankDense(256, rank=16)
    layer.build((None, 512))
    assert layer.count_params() == (512 + 256) * 16 + 256
    no_bias = LowRankDense(256, rank=16, use_bias=False)
    no_bias.build((None, 512))
    assert no_bias.count_params() == (512 + 256) * 16


def test_applies_on_the_last_axis():
    layer = LowRankDense(6, rank=2)
    assert tuple(layer(np.zeros((2, 3, 4), "float32")).shape) == (2, 3, 6)


@pytest.mark.parametrize("rank", [0, -1])
def test_invalid_rank(rank):
    with pytest.raises(ValueError, match=f"`rank` must be an integer >= 1. Received: rank={rank}"):
        LowRankDense(8, rank=rank)


def test_from_factors_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="matching rank"):
        LowRankDense.from_factors(np.zeros((4, 2)), np.zeros((3, 5)))
