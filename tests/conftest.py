import os

# Quiet TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from tfcompress.datasets import load_digits  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as (x_train, y_train, x_test, y_test).

    Images are (8, 8, 1) floats in [0, 1]; real data that ships inside
    scikit-learn, so tests never download anything.
    """
    (x_train, y_train), (x_test, y_test) = load_digits()
    return x_train, y_train, x_test, y_test


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
