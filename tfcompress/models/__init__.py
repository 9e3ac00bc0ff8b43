"""Small reference models built from tfcompress layers."""

from tfcompress.models.mobilenet_v2 import small_mobilenet_v2

__all__ = ["small_mobilenet_v2"]
