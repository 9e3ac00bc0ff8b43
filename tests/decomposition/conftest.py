import keras
import pytest


def build_cnn():
    """A small CNN for the digits (8, 8, 1): three convs and two Dense.

    `conv2` is strided with "same" padding and `conv3` has "valid" padding,
    so the decompositions see both.
    """
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2"),
            keras.layers.Conv2D(32, 3, padding="valid", activation="relu", name="conv3"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(64, activation="relu", name="dense"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="cnn",
    )


def compile_for_digits(model, learning_rate=3e-3):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


@pytest.fixture(scope="session")
def trained_cnn(digits):
    """`build_cnn()` trained for 5 epochs on digits. Tests must not change it."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    model = build_cnn()
    compile_for_digits(model)
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=0)
    return model
