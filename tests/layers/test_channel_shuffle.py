import keras
import numpy as np
import pytest

from tfcompress.layers import ChannelShuffle


def test_interleaves_groups():
    x = np.arange(12, dtype="float32").reshape(1, 1, 1, 12)
    y = keras.ops.convert_to_numpy(ChannelShuffle(3)(x)).ravel()
    # Group g, index i moves to position i * groups + g.
    np.testing.assert_array_equal(
        y, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    )


def test_shuffle_by_complementary_groups_is_identity():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 12)).astype("float32")
    y = ChannelShuffle(4)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ChannelShuffle(3)(y)), x)


def test_groups_must_divide_channels():
    layer = ChannelShuffle(5)
    with pytest.raises(ValueError, match=r"must divide the number of input channels \(12\)"):
        layer(np.zeros((1, 2, 2, 12), "float32"))


def test_invalid_groups():
    with pytest.raises(ValueError, match="`groups` must be an integer >= 1"):
        ChannelShuffle(0)
