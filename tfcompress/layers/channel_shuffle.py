"""ShuffleNet's channel shuffle."""

import keras

from tfcompress import argument_validation
from tfcompress.analysis.layer_costs import LayerCost
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class ChannelShuffle(keras.layers.Layer):
    """Interleaves the channels of `groups` groups (ShuffleNet).

    After a grouped convolution each output group only sees its own input
    group. Channel shuffle (Zhang et al. 2018) reorders the C channels so
    that channel `g * (C // groups) + i` moves to position `i * groups + g`,
    letting the next grouped convolution mix information across groups. It
    has no weights and no MACs: in TFLite it is a reshape, a transpose and a
    reshape.

    Args:
        groups: Positive integer, number of channel groups. Must divide the
            number of input channels.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        Any channels-last tensor `(batch_size, ..., channels)`.

    Output shape:
        Same as the input.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(6, dtype="float32"), (1, 6))
    >>> keras.ops.convert_to_numpy(ChannelShuffle(2)(x))
    array([[0., 3., 1., 4., 2., 5.]], dtype=float32)
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = argument_validation.positive_int("groups", groups)

    def build(self, input_shape):
        channels = argument_validation.channels_last(
            "ChannelShuffle", input_shape, min_rank=2
        )
        if channels % self.groups:
            raise ValueError(
                f"`groups` must divide the number of input channels "
                f"({channels}). Received: groups={self.groups}"
            )

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        channels = inputs.shape[-1]
        # One 3-D transpose whatever the input rank: TFLite's TRANSPOSE is
        # cheapest on low ranks.
        x = keras.ops.reshape(
            inputs, (-1, self.groups, channels // self.groups)
        )
        x = keras.ops.transpose(x, (0, 2, 1))
        return keras.ops.reshape(x, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


register_layer(
    ChannelShuffle,
    macs=lambda layer, input_shapes, output_shape: LayerCost(
        0, "channel shuffle: data movement, no MACs"
    ),
    channels=channel_rules.barrier("it reorders channels by group"),
    quantize=QuantizeRule.keeps_input_scale(),
)
