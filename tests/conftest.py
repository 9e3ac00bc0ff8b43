import os

# Quiet TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as (x_train, y_train, x_test, y_test).

    Images are (8, 8, 1) floats in [0, 1]; real data that ships inside
    scikit-learn, so tests never download anything.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    y = data.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
