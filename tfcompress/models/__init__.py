"""Small reference models for examples, tests and benchmarks."""

from tfcompress.models.mobilenet_v2 import small_mobilenet_v2
from tfcompress.models.plain_cnn import plain_cnn
from tfcompress.models.vit import PositionEmbedding
from tfcompress.models.vit import small_vit
from tfcompress.models.zoo import ZOO_MODELS
from tfcompress.models.zoo import zoo_input_shape
from tfcompress.models.zoo import zoo_model

__all__ = [
    "PositionEmbedding",
    "ZOO_MODELS",
    "plain_cnn",
    "small_mobilenet_v2",
    "small_vit",
    "zoo_input_shape",
    "zoo_model",
]
