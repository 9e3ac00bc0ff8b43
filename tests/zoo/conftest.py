"""Tiny zoo models, briefly trained, and the data of their tasks.

Agreement between a quantized file and its Keras model only means
something when the model's logits have margins, so each model is trained
for a few seconds first: image models on scikit-learn's digits, upsampled
to their input; the keyword spotter on tones in noise; the text classifier
on sequences whose class is a marker token (there is no bundled audio or
text data).
"""

import keras
import numpy as np
import pytest

from tfcompress.models import zoo
from tfcompress.models import zoo_input_shape
from tfcompress.models import zoo_model

NUM_CLASSES = 10
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def images(x, shape):
    """Digits (8x8x1 in [0, 1]) resized to `shape`, in [0, 255]."""
    x = keras.ops.image.resize(x, shape[:2], interpolation="nearest")
    x = keras.ops.convert_to_numpy(x)
    return (np.repeat(x, shape[2], axis=-1) * 255.0).astype("float32")


def tones(count, seed):
    rng = np.random.default_rng(seed)
    frames, features = zoo.KWS_INPUT_SHAPE
    y = rng.integers(0, NUM_CLASSES, count)
    steps = np.arange(frames)[None, :, None]
    bands = (1 + np.arange(features))[None, None, :]
    pitch = (0.1 + 0.08 * y)[:, None, None]
    x = np.sin(pitch * steps * bands / 3)
    x = x + 0.3 * rng.normal(size=(count, frames, features))
    return x.astype("float32"), y


def marker_tokens(count, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(
        NUM_CLASSES + 1, zoo.TEXT_VOCABULARY, (count, zoo.TEXT_TIMESTEPS)
    )
    y = rng.integers(0, NUM_CLASSES, count)
    for row in range(count):
        x[row, rng.choice(zoo.TEXT_TIMESTEPS, 3, replace=False)] = y[row] + 1
    return x.astype("int32"), y


def task(name, digits):
    """`(x_train, y_train, x_check)`: 512+ held-out inputs to compare on."""
    if name == "kws_conv1d":
        x, y = tones(1024, 0)
        return x[:512], y[:512], x[512:]
    if name == "lstm_text":
        x, y = marker_tokens(1024, 0)
        return x[:512], y[:512], x[512:]
    x_train, y_train, x_test, _ = digits
    shape = zoo_input_shape(name)
    x_check = np.concatenate([x_test, x_train])[:512]
    return images(x_train[:512], shape), y_train[:512], images(x_check, shape)


@pytest.fixture(scope="module")
def trained_zoo(digits):
    """`{name: (model, x_train, y_train, x_check)}`, built on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            keras.utils.set_random_seed(0)
            x_train, y_train, x_check = task(name, digits)
            model = zoo_model(name, "tiny", NUM_CLASSES)
            model.compile(
                keras.optimizers.Adam(3e-3), LOSS, metrics=["accuracy"]
            )
            model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
            cache[name] = (model, x_train, y_train, x_check)
        return cache[name]

    return get
