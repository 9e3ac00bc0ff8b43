import keras
import numpy as np
import pytest

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mlp(units, name, classes=10):
    """A small classifier on (8, 8, 1) digits, producing logits."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu", name="hidden"),
            keras.layers.Dense(classes, name="logits"),
        ],
        name=name,
    )


@pytest.fixture(scope="session")
def teacher_weights(digits):
    """Weights of an MLP teacher trained on digits (about 96% accurate)."""
    x, y, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    teacher = mlp(64, "teacher")
    teacher.compile(keras.optimizers.Adam(1e-2), LOSS)
    teacher.fit(x, y, epochs=15, batch_size=64, verbose=0)
    accuracy = np.mean(
        np.argmax(teacher.predict(x_test, verbose=0), axis=-1) == y_test
    )
    assert accuracy > 0.9, accuracy
    return teacher.get_weights()


@pytest.fixture
def teacher(teacher_weights):
    model = mlp(64, "teacher")
    model.set_weights(teacher_weights)
    return model
