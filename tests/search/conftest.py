"""Fixtures of the search tests."""

import keras
import pytest

from tfcompress.models import small_mobilenet_v2

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def trained(digits):
    """A MobileNetV2-style model (6 channel groups), briefly trained."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = small_mobilenet_v2((8, 8, 1), num_classes=10)
    model.compile(keras.optimizers.Adam(3e-3), LOSS)
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    return model, (x_train[:256], y_train[:256]), (x_test, y_test)
