import keras
import numpy as np
import pytest

from tfcompress.layers import CPConv2D


def random_factors(s=5, kh=3, kw=3, t=7, rank=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") for shape in [(s, rank), (kh, rank), (kw, rank), (t, rank)]]


@pytest.mark.parametrize(
    "strides, padding, kernel",
    [(1, "same", (3, 3)), (2, "same", (3, 3)), (1, "valid", (3, 5)), (2, "valid", (3, 3))],
)
def test_from_factors_equals_conv2d_with_the_cp_kernel(strides, padding, kernel):
    factors = random_factors(kh=kernel[0], kw=kernel[1])
    bias = np.arange(7, dtype="float32")
    layer = CPConv2D.from_factors(*factors, bias=bias, strides=strides, padding=padding)
    dense_kernel = np.einsum("sr,hr,wr,tr->hwst", *factors)
    np.testing.assert_allclose(layer.full_kernel(), dense_kernel, rtol=1e-5, atol=1e-5)
    conv = keras.layers.Conv2D(7, kernel, strides=strides, padding=padding)
    conv.build((None, 11, 11, 5))
    conv.set_weights([dense_kernel, bias])
    x = np.random.default_rng(1).normal(size=(2, 11, 11, 5)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        keras.ops.convert_to_numpy(conv(x)),
        atol=1e-4,
    )
    assert layer.compute_output_shape((2, 11, 11, 5)) == conv.compute_output_shape((2, 11, 11, 5))


def test_factors_round_trip():
    factors = random_factors()
    layer = CPConv2D.from_factors(*factors)
    for given, read in zip(factors, layer.factors()):
        np.testing.assert_array_equal(given, read)
    assert (layer.filters, layer.kernel_size, layer.rank, layer.use_bias) == (7, (3, 3), 4, False)


def test_parameter_count():
    layer = CPConv2D(64, 3, rank=8)
    layer.build((None, 16, 16, 32))
    assert layer.count_params() == 8 * (32 + 3 + 3 + 64) + 64


@pytest.mark.parametrize("rank", [0, -2, 1.5])
def test_invalid_rank(rank):
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1"):
        CPConv2D(8, 3, rank=rank)


def test_from_factors_rejects_mismatched_ranks():
    factors = random_factors()
    factors[2] = factors[2][:, :3]
    with pytest.raises(ValueError, match="same number of columns"):
        CPConv2D.from_factors(*factors)
    with pytest.raises(ValueError, match="`rank` follows from the factors"):
        CPConv2D.from_factors(*random_factors(), rank=4)
