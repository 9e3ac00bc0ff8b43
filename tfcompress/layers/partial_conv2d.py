"""FasterNet's partial convolution."""

import keras

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class PartialConv2D(WeightedLayer):
    """Convolves the first `C // n_div` channels and passes the rest through.

    The PConv of FasterNet (Chen et al. 2023): a kxk convolution (stride 1,
    "same" padding, no bias) is applied to only the first `C_p = C // n_div`
    channels; the remaining `C - C_p` channels are concatenated back
    unchanged. With `n_div=4` it costs 1/16 of the MACs of a full kxk
    convolution and touches a quarter of the memory, which is what makes it
    fast on real hardware. In FasterNet it is followed by pointwise
    convolutions that mix all channels.

    Args:
        n_div: Positive integer, the fraction `1 / n_div` of channels that
            is convolved. Defaults to `4`.
        kernel_size: Integer or tuple of 2 integers. Defaults to `3`.
        use_bias: Whether the convolution has a bias. Defaults to `False`,
            as in FasterNet.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        kernel_regularizer: Optional regularizer for the kernel.
        bias_initializer: Initializer of the bias, when `use_bias=True`.
            Defaults to `"zeros"`.
        bias_regularizer: Optional regularizer for the bias.
        activity_regularizer: Optional regularizer for the output (all
            channels, convolved and passed through).
        kernel_constraint: Optional constraint on the kernel.
        bias_constraint: Optional constraint on the bias.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`, with
        `channels >= n_div`.

    Output shape:
        Same as the input.

    Example:

    >>> layer = PartialConv2D(n_div=4)
    >>> tuple(layer(keras.ops.zeros((1, 8, 8, 32))).shape)
    (1, 8, 8, 32)
    >>> tuple(layer.conv.kernel.shape)  # only 32 / 4 = 8 channels are convolved
    (3, 3, 8, 8)
    """

    # No activation: the channels passed through stay as they are.
    weight_arguments = (
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
    )

    def __init__(
        self,
        n_div=4,
        kernel_size=3,
        use_bias=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        bias_initializer="zeros",
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
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
        self.n_div = argument_validation.positive_int("n_div", n_div)
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.conv = None
        self.conv_channels = None

    def build(self, input_shape):
        channels = argument_validation.channels_last(
            "PartialConv2D", input_shape
        )
        if channels < self.n_div:
            raise ValueError(
                f"`n_div` must be at most the number of input channels "
                f"({channels}), or no channel is convolved. "
                f"Received: n_div={self.n_div}"
            )
        self.conv_channels = channels // self.n_div
        self.conv = keras.layers.Conv2D(
            self.conv_channels,
            self.kernel_size,
            padding="same",
            **self.kernel_arguments(),
            **self.bias_arguments(),
            name="conv",
        )
        self.conv.build((*input_shape[:-1], self.conv_channels))

    def call(self, inputs):
        if self.conv_channels == inputs.shape[-1]:
            return self.conv(inputs)
        convolved, passed = keras.ops.split(
            inputs, [self.conv_channels], axis=-1
        )
        return keras.ops.concatenate([self.conv(convolved), passed], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "n_div": self.n_div,
            "kernel_size": self.kernel_size,
        }
        return {**base_config, **config}


register_layer(
    PartialConv2D,
    channels=channel_rules.barrier(
        "it convolves only its first C // n_div channels, so which channels "
        "it convolves depends on their number"
    ),
    quantize=QuantizeRule.inline(),
)
