import numpy as np
import pytest

from tfcompress.datasets import load_digits


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
