import numpy as np
import pytest

from tfcompress.datasets import load_digits
from tfcompress.datasets import load_fashion_mnist


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


def test_load_fashion_mnist_reads_the_official_files():
    from tfcompress.datasets import fashion_mnist

    if not fashion_mnist.DEFAULT_DATA_DIR.is_dir():
        pytest.skip("Fashion-MNIST files are not beside this checkout")
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28, 1)
    assert x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and x_train.max() == 1.0
    # The official split is balanced: 6,000 and 1,000 images per class.
    assert np.all(np.bincount(y_train) == 6000)
    assert np.all(np.bincount(y_test) == 1000)


def test_load_fashion_mnist_limits(tmp_path):
    from tfcompress.datasets import fashion_mnist

    if not fashion_mnist.DEFAULT_DATA_DIR.is_dir():
        pytest.skip("Fashion-MNIST files are not beside this checkout")
    (x_train, y_train), (x_test, _) = load_fashion_mnist(train_limit=100, test_limit=10)
    assert x_train.shape == (100, 28, 28, 1) and len(y_train) == 100
    assert x_test.shape == (10, 28, 28, 1)


def test_load_fashion_mnist_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_fashion_mnist(data_dir=tmp_path)


def test_load_fashion_mnist_rejects_a_wrong_file(tmp_path):
    from tfcompress.datasets import fashion_mnist

    for name in fashion_mnist.FILES.values():
        (tmp_path / name.removesuffix(".gz")).write_bytes(b"\0\0\0\0" * 8)
    with pytest.raises(ValueError, match="magic number"):
        load_fashion_mnist(data_dir=tmp_path)
