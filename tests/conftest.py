import os

# Quiet TensorFlow's C++ logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One BLAS thread per test process: `make test` runs two workers on two
# cores, and OpenBLAS's threads spin while they wait; oversubscribed, a
# small SVD ran 80x slower (a tiny DenseNet's Tucker-2 decomposition on a
# busy 2-core machine: 119 s with OpenBLAS's default threads, 5 s with one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Deterministic ops: a test's figures are the same on every run. Keras then
# also runs `fit` / `predict` without XLA (its `jit_compile="auto"` is off
# under op determinism), and XLA's compilation of each new model takes
# longer than the few steps a test runs (a tiny DenseNet's 3 training
# epochs: 47 s with XLA, 10 s without).
tf.config.experimental.enable_op_determinism()

try:  # Also when a plugin imported numpy before this file set the variable.
    import threadpoolctl  # noqa: E402

    threadpoolctl.threadpool_limits(1, user_api="blas")
except ImportError:  # scikit-learn's dependency; the clustering extra.
    pass

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


# tryfirst: pytest-xdist's worker reads the groups in its own
# `pytest_collection_modifyitems`, which ran before this one (the marks
# came too late, and both workers trained the layer tests' models).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Keeps each test module on one worker under `make test`.

    `make test` runs two pytest-xdist workers with `--dist loadgroup`; a
    module whose tests were spread over both built its module-scoped
    fixtures (trained models, exported files) twice. Tests without an
    `xdist_group` (the zoo tier groups by model) get their module's.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(module))
    # The longest groups first (the workers take groups in this order):
    # collected last, the zoo models and the demo left one worker running
    # them alone at the end. A stable sort keeps each module's order.
    items.sort(key=lambda item: _LONG_FIRST.get(item.nodeid.split("::", 1)[0], 1))


# Modules whose groups take a minute or more each (`--durations`).
_LONG_FIRST = {"tests/test_demo.py": 0, "tests/zoo/test_model_zoo.py": 0}
