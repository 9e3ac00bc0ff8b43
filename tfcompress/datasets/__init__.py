"""Datasets for examples, tests and benchmarks; nothing is downloaded."""

from tfcompress.datasets.digits import load_digits

__all__ = ["load_digits"]
