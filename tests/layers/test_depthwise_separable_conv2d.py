import keras
import numpy as np
import pytest

from tfcompress.layers import DepthwiseSeparableConv2D


def test_matches_depthwise_then_pointwise_convolution():
    layer = DepthwiseSeparableConv2D(6, kernel_size=3, strides=2)
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    # Fresh batch norm in inference: x / sqrt(1 + epsilon).
    bn = 1.0 / np.sqrt(1.0 + 1e-3)
    h = keras.ops.depthwise_conv(
        x, layer.depthwise.kernel, strides=2, padding="same"
    )
    h = np.clip(keras.ops.convert_to_numpy(h) * bn, 0, 6).astype("float32")
    h = keras.ops.convert_to_numpy(keras.ops.conv(h, layer.pointwise.kernel))
    np.testing.assert_allclose(y, np.clip(h * bn, 0, 6), atol=1e-5)
    assert y.shape == (2, 5, 5, 6)


def test_parameter_count():
    layer = DepthwiseSeparableConv2D(32, kernel_size=3, depth_multiplier=2)
    layer.build((None, 16, 16, 8))
    depthwise = 3 * 3 * 8 * 2
    pointwise = 8 * 2 * 32
    batch_norms = 4 * (8 * 2) + 4 * 32
    assert layer.count_params() == depthwise + pointwise + batch_norms


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters"),
        ({"filters": 8, "kernel_size": 0}, "kernel_size"),
        ({"filters": 8, "padding": "full"}, "padding"),
        ({"filters": 8, "depth_multiplier": -1}, "depth_multiplier"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"`{message}` must .*Received"):
        DepthwiseSeparableConv2D(**kwargs)


def test_channels_first_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="channels-last"):
        DepthwiseSeparableConv2D(8).build((None, 8, 8))
