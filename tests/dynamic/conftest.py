import keras
import pytest

from tfcompress.dynamic import attach_exits
from tfcompress.dynamic import train_exits

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def flat_dense_head(num_classes, feature_shape):
    return [keras.layers.Flatten(), keras.layers.Dense(num_classes)]


def tiny_cnn():
    conv = keras.layers.Conv2D
    inputs = keras.Input((8, 8, 1))
    x = conv(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = conv(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = conv(32, 3, strides=2, padding="same", activation="relu",
             name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


@pytest.fixture(scope="package")
def trained(digits):
    """A tiny CNN trained on digits, its copy with two exits (heads
    trained, 3 epochs), and the model's test logits before the exits were
    trained. Tiny, so that its 7 conversions to LiteRT stay quick; the
    benchmark runs the MobileNetV2-style model."""
    x_train, y_train, x_test, _ = digits
    keras.utils.set_random_seed(0)
    model = tiny_cnn()
    model.compile(keras.optimizers.Adam(1e-2), LOSS)
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    before = model.predict(x_test, verbose=0)
    # Flattened features: on 8x8 digits, pooled ones say little.
    with_exits, _ = attach_exits(model, at=["conv2", "conv1"],
                                 head=flat_dense_head)
    with_exits, report = train_exits(
        with_exits, x_train, y_train, mode="heads", epochs=3,
        optimizer=keras.optimizers.Adam(1e-2),
    )
    return model, with_exits, report, before
