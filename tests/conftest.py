import os

# Quiet TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Deterministic ops: a test's figures are the same on every run. Keras then
# also runs `fit` / `predict` without XLA (its `jit_compile="auto"` is off
# under op determinism), and XLA's compilation of each new model takes
# longer than the few steps a test runs (a tiny DenseNet's 3 training
# epochs: 47 s with XLA, 10 s without).
tf.config.experimental.enable_op_determinism()

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
