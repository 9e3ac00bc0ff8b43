"""Small reference models for examples, tests and benchmarks."""

from tfcompress.models.mobilenet_v2 import small_mobilenet_v2
from tfcompress.models.plain_cnn import plain_cnn

__all__ = ["plain_cnn", "small_mobilenet_v2"]
