import keras
import numpy as np
import pytest

from tfcompress.layers import PartialConv2D


def test_convolves_first_quarter_and_passes_the_rest():
    layer = PartialConv2D(n_div=4)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(y[..., 4:], x[..., 4:])
    expected = keras.ops.convert_to_numpy(layer.conv(x[..., :4]))
    np.testing.assert_allclose(y[..., :4], expected, atol=1e-6)
    assert layer.count_params() == 3 * 3 * 4 * 4


def test_n_div_one_is_a_full_convolution():
    layer = PartialConv2D(n_div=1)
    x = np.ones((1, 4, 4, 3), "float32")
    assert layer.conv_channels is None
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(layer.conv(x))
    )
    assert layer.conv_channels == 3


def test_n_div_larger_than_channels():
    with pytest.raises(ValueError, match=r"at most the number of input channels \(4\).*n_div=8"):
        PartialConv2D(n_div=8).build((None, 8, 8, 4))


def test_invalid_n_div():
    with pytest.raises(ValueError, match="`n_div` must be an integer >= 1"):
        PartialConv2D(n_div=0)
