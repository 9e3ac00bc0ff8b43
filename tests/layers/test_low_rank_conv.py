import keras
import numpy as np
import pytest

from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.layers import LowRankConv1D
from tfcompress.layers import LowRankConv2D


@pytest.mark.parametrize(
    "layer_class, conv_class, kernel_size, input_shape",
    [
        (LowRankConv2D, keras.layers.Conv2D, (3, 3), (9, 9, 5)),
        (LowRankConv1D, keras.layers.Conv1D, (3,), (17, 5)),
    ],
)
def test_equals_a_convolution_with_the_product_kernel(
    layer_class, conv_class, kernel_size, input_shape, tmp_path
):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(*kernel_size, 5, 3)).astype("float32")
    v = rng.normal(size=(3, 7)).astype("float32")
    bias = rng.normal(size=7).astype("float32")
    layer = layer_class.from_factors(
        u, v, bias=bias, strides=2, padding="same", name="low_rank"
    )
    conv = conv_class(7, kernel_size, strides=2, padding="same")
    conv.build((None, *input_shape))
    conv.set_weights([layer.full_kernel(), bias])
    x = rng.random((4, *input_shape), "float32")
    expected = keras.ops.convert_to_numpy(conv(x))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-4
    )
    assert layer.full_kernel().shape == (*kernel_size, 5, 7)

    # .keras round trip and float32 LiteRT parity.
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("low_rank")) is layer_class
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    exported = to_tflite(model, tmp_path / "m.tflite", verbose=False)
    np.testing.assert_allclose(
        LiteRTModel(exported).predict(x), expected, rtol=1e-4, atol=1e-4
    )


def test_invalid_arguments_are_explained():
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1"):
        LowRankConv2D(8, 3, rank=0)
    with pytest.raises(ValueError, match=r"`kernel_size` must be an integer or a tuple of 1"):
        LowRankConv1D(8, (3, 3), rank=2)
    with pytest.raises(ValueError, match=r"`pointwise_factor` \(rank, T\)"):
        LowRankConv2D.from_factors(np.zeros((3, 3, 4, 2)), np.zeros((3, 5)))
