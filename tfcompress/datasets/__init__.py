"""Datasets for examples, tests and benchmarks; nothing is downloaded."""

from tfcompress.datasets.digits import load_digits
from tfcompress.datasets.fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from tfcompress.datasets.fashion_mnist import load_fashion_mnist

__all__ = ["FASHION_MNIST_CLASSES", "load_digits", "load_fashion_mnist"]
