"""ShuffleNet's grouped convolution followed by a channel shuffle."""

import keras

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.channel_shuffle import ChannelShuffle
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class ShuffleConv2D(WeightedLayer):
    """Grouped convolution (1x1 by default), then channel shuffle.

    The pointwise group convolution of ShuffleNet (Zhang et al. 2018): the C
    input channels are split into `groups` groups and each group is
    convolved to `filters // groups` outputs, which divides parameters and
    MACs by `groups` compared with a dense 1x1 convolution. A
    `ChannelShuffle` then interleaves the groups so that the next grouped
    convolution sees every group. TFLite runs the grouped convolution as one
    `CONV_2D`.

    Args:
        filters: Positive integer, number of output channels. Must be
            divisible by `groups`.
        groups: Positive integer, number of groups. Must divide both the
            input channels and `filters`.
        kernel_size: Integer or tuple of 2 integers. Defaults to `1`.
        strides: Integer or tuple of 2 integers. Defaults to `1`.
        padding: `"valid"` or `"same"`. Defaults to `"same"`.
        activation: Activation applied before the shuffle. Defaults to
            `None`.
        use_bias: Whether the convolution has a bias. Defaults to `True`.
        shuffle: Whether to shuffle channels after the convolution; `False`
            gives a plain grouped convolution, as in the last convolution
            of a ShuffleNet unit. Defaults to `True`.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer for the kernel.
        bias_regularizer: Optional regularizer for the bias.
        activity_regularizer: Optional regularizer for the output.
        kernel_constraint: Optional constraint on the kernel.
        bias_constraint: Optional constraint on the bias.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`.

    Example:

    >>> layer = ShuffleConv2D(32, groups=4)
    >>> tuple(layer(keras.ops.zeros((1, 8, 8, 16))).shape)
    (1, 8, 8, 32)
    >>> tuple(layer.conv.kernel.shape)  # 4 groups: each sees 16 / 4 channels
    (1, 1, 4, 32)
    """

    def __init__(
        self,
        filters,
        groups,
        kernel_size=1,
        strides=1,
        padding="same",
        activation=None,
        use_bias=True,
        shuffle=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.filters = argument_validation.positive_int("filters", filters)
        self.groups = argument_validation.positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                f"`groups` must divide `filters` ({self.filters}). "
                f"Received: groups={self.groups}"
            )
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.strides = argument_validation.int_pair("strides", strides)
        self.padding = argument_validation.padding_mode(padding)
        self.shuffle = shuffle
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            groups=self.groups,
            activation=self.activation,
            **self.kernel_arguments(),
            **self.bias_arguments(),
            name="conv",
        )
        self.channel_shuffle = (
            ChannelShuffle(self.groups, name="channel_shuffle")
            if shuffle
            else None
        )

    def build(self, input_shape):
        channels = argument_validation.channels_last(
            "ShuffleConv2D", input_shape
        )
        if channels % self.groups:
            raise ValueError(
                f"`groups` must divide the number of input channels "
                f"({channels}). Received: groups={self.groups}"
            )
        self.conv.build(input_shape)
        if self.channel_shuffle is not None:
            self.channel_shuffle.build(
                self.conv.compute_output_shape(input_shape)
            )

    def call(self, inputs):
        x = self.conv(inputs)
        if self.channel_shuffle is not None:
            x = self.channel_shuffle(x)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "groups": self.groups,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "shuffle": self.shuffle,
        }
        return {**base_config, **config}


register_layer(
    ShuffleConv2D,
    channels=channel_rules.barrier(
        "grouped convolution and channel shuffle: its channels are tied by "
        "group and reordered"
    ),
    quantize=QuantizeRule.inline(),
)
