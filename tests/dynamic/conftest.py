import keras
import pytest

import tfcompress
from tfcompress.dynamic import attach_exits
from tfcompress.dynamic import train_exits

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="package")
def trained(digits):
    """A small MobileNetV2-style model trained on digits, its copy with two
    exits (heads trained, 3 epochs), and the model's validation logits
    before the exits were trained."""
    x_train, y_train, x_test, _ = digits
    keras.utils.set_random_seed(0)
    model = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10, width=8)
    model.compile(keras.optimizers.Adam(3e-3), LOSS)
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    before = model.predict(x_test, verbose=0)
    with_exits, _ = attach_exits(model, at=["block2", "separable"])
    with_exits, report = train_exits(
        with_exits, x_train, y_train, mode="heads", epochs=3,
        optimizer=keras.optimizers.Adam(1e-2),
    )
    return model, with_exits, report, before
