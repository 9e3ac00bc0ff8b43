"""`quantize_model(per_channel_weights=False)`: one int8 scale per kernel,
in the Keras model and in the file the converter writes from it."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.litert import kernels
from tfcompress.litert import tflite_weights
from tfcompress.quantization import quantize_model


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.SeparableConv2D(8, 3, padding="same")(x)
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)
    x = keras.layers.Reshape((64, 16))(x)
    x = keras.layers.Conv1D(8, 3, activation="relu")(x)
    x = keras.layers.Dense(6)(x)  # token projection: 3-D input
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def test_every_kernel_gets_one_scale_in_the_file(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((64, 8, 8, 3)).astype("float32")
    qat_model, report = quantize_model(
        _model(), data=x, per_channel_weights=False
    )
    assert "one scale per kernel" in report.table()
    exported = tfcompress.to_tflite(
        qat_model, tmp_path / "m.tflite", quantization="int8", verbose=False
    )
    assert exported.precision.is_integer, exported.precision.table()
    weights = kernels(tflite_weights(exported.path))
    ops = sorted(w.kernel_of for w in weights)
    assert ops == [
        "CONV_2D", "CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED", "FULLY_CONNECTED", "TRANSPOSE_CONV",
    ]
    assert [w.quantization.num_scales for w in weights] == [1] * len(ops)
    parity = tfcompress.export.verify(qat_model, exported, x)
    assert parity.relative_error < 0.02, str(parity)
    # The per-channel file of the same model has a scale per channel.
    per_channel, _ = quantize_model(_model(), data=x)
    default = tfcompress.to_tflite(
        per_channel, tmp_path / "c.tflite", quantization="int8", verbose=False
    )
    scales = [
        w.quantization.num_scales for w in kernels(tflite_weights(default.path))
    ]
    assert max(scales) > 1


def test_the_choice_saves_with_the_model(tmp_path):
    qat_model, _ = quantize_model(_model(), per_channel_weights=False)
    path = tmp_path / "m.keras"
    qat_model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    flags = {
        layer.per_channel_weights
        for layer in loaded.layers
        if hasattr(layer, "per_channel_weights")
    }
    assert flags == {False}


def test_a_bad_value_raises():
    with pytest.raises(ValueError, match="per_channel_weights"):
        quantize_model(_model(), per_channel_weights="no")
