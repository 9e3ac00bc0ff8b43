"""Shared models and exported files for the tests of `tfcompress.export`,
`tfcompress.litert` and `tfcompress.quantization`.

Every conversion costs about half a second, so the files the tests share are
made once per session (per test directory: each directory's `conftest.py`
imports the fixtures it uses).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.export import to_tflite

INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def make_conv_model():
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))


def make_dense_model():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )


def make_hard_model():
    """fc1 -> hard -> head, where `hard` has int8-hostile weights.

    fc1's first unit is dead (always 0), and every weight `hard` reads from
    it is 50: the float model ignores them, but they set the per-channel
    int8 scale of `hard` to 50 / 127, which rounds its real weights (about
    0.3) to 0 or one step.
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(24, activation="relu", name="fc1"),
            keras.layers.Dense(32, activation="relu", name="hard"),
            keras.layers.Dense(4, name="head"),
        ]
    )
    kernel, bias = model.get_layer("fc1").get_weights()
    kernel[:, 0], bias[0] = 0.0, -1.0
    model.get_layer("fc1").set_weights([kernel, bias])
    kernel, bias = model.get_layer("hard").get_weights()
    kernel[0, :] = 50.0
    model.get_layer("hard").set_weights([kernel, bias])
    return model


@pytest.fixture(scope="session")
def brightness_data():
    """A learnable task: the class is the image's brightness level."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, NUM_CLASSES, 1200)
    noise = 0.1 * rng.standard_normal((1200,) + INPUT_SHAPE)
    x = (y[:, None, None, None] / NUM_CLASSES + noise).astype("float32")
    return x[:1000], y[:1000], x[1000:], y[1000:]


@pytest.fixture(scope="session")
def conv_model(brightness_data):
    """A small conv classifier, trained to about 90% test accuracy."""
    x_train, y_train, _, _ = brightness_data
    keras.utils.set_random_seed(0)
    model = make_conv_model()
    model.compile(
        keras.optimizers.Adam(0.02),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=10, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export_dir")


@pytest.fixture(scope="session")
def conv_float(conv_model, export_dir):
    return to_tflite(conv_model, export_dir / "conv_float.tflite")


@pytest.fixture(scope="session")
def conv_int8(conv_model, brightness_data, export_dir):
    return to_tflite(
        conv_model,
        export_dir / "conv_int8.tflite",
        quantization="int8",
        data=brightness_data[0][:200],
    )


@pytest.fixture(scope="session")
def conv_int8_io_path(conv_model, brightness_data, export_dir):
    """Full int8 file whose input and output tensors are int8 too."""
    x_train = brightness_data[0]

    def representative_dataset():
        for i in range(100):
            yield [x_train[i : i + 1]]

    path = str(export_dir / "conv_int8_io.tflite")
    conv_model.export(
        path,
        format="litert",
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_dataset,
        inference_input_type=tf.int8,
        inference_output_type=tf.int8,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    )
    return path


@pytest.fixture(scope="session")
def fixed_batch_path(export_dir):
    """Float file of a Dense model with a fixed batch size of 2."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    path = str(export_dir / "fixed_batch.tflite")
    model.export(
        path,
        format="litert",
        verbose=False,
        input_signature=[tf.TensorSpec((2, 6), tf.float32)],
    )
    return model, path
