"""Drop-in efficient Keras 3 layers.

Each layer is a Keras `Layer` built from standard Keras sublayers (so the
profiler, pruning and quantization see ordinary `Conv2D`, `DepthwiseConv2D`,
`Dense` and `BatchNormalization` inside), registered for `.keras` saving
under the `tfcompress` package, and converts to TFLite builtin ops. The
layers with weights take Keras's weight arguments (`activation`,
`use_bias`, `kernel_initializer`, ...) through `WeightedLayer`.
"""

from tfcompress.layers.channel_shuffle import ChannelShuffle
from tfcompress.layers.cp_conv2d import CPConv2D
from tfcompress.layers.depthwise_separable_conv2d import (
    DepthwiseSeparableConv2D,
)
from tfcompress.layers.inverted_residual import InvertedResidual
from tfcompress.layers.low_rank_conv import LowRankConv1D
from tfcompress.layers.low_rank_conv import LowRankConv2D
from tfcompress.layers.low_rank_conv import LowRankSeparableConv2D
from tfcompress.layers.low_rank_dense import LowRankDense
from tfcompress.layers.partial_conv2d import PartialConv2D
from tfcompress.layers.shuffle_conv2d import ShuffleConv2D
from tfcompress.layers.tucker2_conv2d import Tucker2Conv2D
from tfcompress.layers.weighted_layer import WeightedLayer

__all__ = [
    "ChannelShuffle",
    "CPConv2D",
    "DepthwiseSeparableConv2D",
    "InvertedResidual",
    "LowRankConv1D",
    "LowRankConv2D",
    "LowRankDense",
    "LowRankSeparableConv2D",
    "PartialConv2D",
    "ShuffleConv2D",
    "Tucker2Conv2D",
    "WeightedLayer",
]
