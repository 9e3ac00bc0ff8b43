import keras
import numpy as np
import pytest

from tfcompress.layers import ShuffleConv2D


def test_grouped_convolution_then_shuffle():
    layer = ShuffleConv2D(8, groups=2, use_bias=False)
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 6)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    kernel = keras.ops.convert_to_numpy(layer.conv.kernel)  # (1, 1, 3, 8)
    # Group g maps input channels [3g, 3g + 3) to outputs [4g, 4g + 4).
    groups = [x[..., 3 * g : 3 * g + 3] @ kernel[0, 0, :, 4 * g : 4 * g + 4] for g in range(2)]
    unshuffled = np.concatenate(groups, axis=-1)
    order = [0, 4, 1, 5, 2, 6, 3, 7]
    np.testing.assert_allclose(y, unshuffled[..., order], atol=1e-5)


def test_parameters_divided_by_groups():
    layer = ShuffleConv2D(32, groups=4)
    layer.build((None, 8, 8, 16))
    assert layer.count_params() == 16 * 32 // 4 + 32


def test_shuffle_false_is_plain_grouped_conv():
    layer = ShuffleConv2D(8, groups=2, shuffle=False)
    assert layer.channel_shuffle is None
    x = np.ones((1, 4, 4, 4), "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        keras.ops.convert_to_numpy(layer.conv(x)),
    )


def test_groups_must_divide_filters_and_channels():
    with pytest.raises(ValueError, match=r"`groups` must divide `filters` \(10\)"):
        ShuffleConv2D(10, groups=4)
    layer = ShuffleConv2D(12, groups=4)
    with pytest.raises(ValueError, match=r"number of input channels \(6\).*groups=4"):
        layer.build((None, 8, 8, 6))
