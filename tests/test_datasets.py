import pathlib

import numpy as np
import pytest

from tfcompress.datasets import fashion_mnist
from tfcompress.datasets import load_digits
from tfcompress.datasets import load_fashion_mnist

# The repository's data sit beside the checkout (`../shared/data`); the
# library has no default folder, so the tests pass it explicitly.
FASHION_MNIST_DIR = (
    pathlib.Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "fashion-mnist"
)
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason=f"Fashion-MNIST files are not in {FASHION_MNIST_DIR}",
)


def test_load_digits_split_is_stratified_and_scaled():
    (x_train, y_train), (x_test, y_test) = load_digits(test_fraction=0.25)
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.float32
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    test_counts = np.bincount(y_test, minlength=10)
    all_counts = test_counts + np.bincount(y_train, minlength=10)
    # Stratified: every class holds out a quarter of its images, +- 1.
    assert np.all(np.abs(test_counts - 0.25 * all_counts) <= 1)


def test_load_digits_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)


@needs_fashion_mnist
def test_load_fashion_mnist_reads_the_official_files():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(FASHION_MNIST_DIR)
    assert x_train.shape == (60000, 28, 28, 1)
    assert x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_train.max() == 1.0
    # The official split is balanced: 6,000 and 1,000 images per class.
    assert np.all(np.bincount(y_train) == 6000)
    assert np.all(np.bincount(y_test) == 1000)


@needs_fashion_mnist
def test_load_fashion_mnist_limits():
    (x_train, y_train), (x_test, _) = load_fashion_mnist(
        FASHION_MNIST_DIR, train_limit=100, test_limit=10
    )
    assert x_train.shape == (100, 28, 28, 1) and len(y_train) == 100
    assert x_test.shape == (10, 28, 28, 1)


@needs_fashion_mnist
def test_load_fashion_mnist_reads_the_folder_named_by_the_environment(
    monkeypatch,
):
    monkeypatch.setenv(fashion_mnist.ENV_VARIABLE, str(FASHION_MNIST_DIR))
    (x_train, _), (x_test, y_test) = load_fashion_mnist(
        train_limit=100, test_limit=10
    )
    (_, _), (x_expected, y_expected) = load_fashion_mnist(
        FASHION_MNIST_DIR, test_limit=10
    )
    assert x_train.shape == (100, 28, 28, 1)
    np.testing.assert_array_equal(x_test, x_expected)
    np.testing.assert_array_equal(y_test, y_expected)


def test_load_fashion_mnist_has_no_default_folder(monkeypatch):
    # An installed package must not look for a checkout's data: without
    # `data_dir` or the environment variable, the error says what to pass.
    monkeypatch.delenv(fashion_mnist.ENV_VARIABLE, raising=False)
    assert not hasattr(fashion_mnist, "DEFAULT_DATA_DIR")
    with pytest.raises(ValueError, match="`data_dir` is required") as error:
        load_fashion_mnist()
    assert fashion_mnist.ENV_VARIABLE in str(error.value)
    assert "train-images-idx3-ubyte.gz" in str(error.value)


def test_load_fashion_mnist_missing_folder_says_what_to_pass(
    tmp_path, monkeypatch
):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError, match="does not exist") as error:
        load_fashion_mnist(data_dir=missing)
    assert "pass `data_dir`" in str(error.value)
    assert f"Received: data_dir='{missing}'" in str(error.value)
    monkeypatch.setenv(fashion_mnist.ENV_VARIABLE, str(missing))
    with pytest.raises(FileNotFoundError, match="does not exist") as error:
        load_fashion_mnist()
    assert f"Received: {fashion_mnist.ENV_VARIABLE}='{missing}'" in str(
        error.value
    )


def test_load_fashion_mnist_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_fashion_mnist(data_dir=tmp_path)


def test_load_fashion_mnist_rejects_a_wrong_file(tmp_path):
    for name in fashion_mnist.FILES.values():
        (tmp_path / name.removesuffix(".gz")).write_bytes(b"\0\0\0\0" * 8)
    with pytest.raises(ValueError, match="magic number"):
        load_fashion_mnist(data_dir=tmp_path)
