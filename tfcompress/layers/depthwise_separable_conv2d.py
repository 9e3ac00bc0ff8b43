"""MobileNet's depthwise-separable convolution block."""

import keras

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.sublayers import build_in_sequence
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.pruning.channel_trace import repeat
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class DepthwiseSeparableConv2D(WeightedLayer):
    """Depthwise kxk conv + BN + activation, then 1x1 conv + BN + activation.

    The MobileNet v1 block (Howard et al. 2017). A standard kxk convolution
    from C to F channels costs `H * W * k * k * C * F` MACs; this block costs
    `H * W * C * (k * k + F)`, about `k * k` times fewer for large F. Both
    convolutions are followed by batch normalization, which TFLite folds into
    the convolution, so the exported model has two convolutions and nothing
    else. Use `keras.layers.SeparableConv2D` for the variant without batch
    normalization.

    Args:
        filters: Positive integer, number of output channels.
        kernel_size: Integer or tuple of 2 integers, size of the depthwise
            kernel. Defaults to `3`.
        strides: Integer or tuple of 2 integers, strides of the depthwise
            convolution. Defaults to `1`.
        padding: `"valid"` or `"same"`, padding of the depthwise convolution.
            Defaults to `"same"`.
        depth_multiplier: Positive integer, depthwise output channels per
            input channel. Defaults to `1`.
        activation: Activation after each batch normalization. Defaults to
            `"relu6"`, which TFLite fuses into the convolution.
        momentum: Momentum of the batch normalization moving averages.
            Defaults to `0.99`.
        epsilon: Batch normalization epsilon. Defaults to `1e-3`.
        depthwise_initializer: Initializer of the depthwise kernel. Defaults
            to `"glorot_uniform"`.
        pointwise_initializer: Initializer of the pointwise kernel. Defaults
            to `"glorot_uniform"`.
        kernel_regularizer: Optional regularizer applied to both kernels.
        activity_regularizer: Optional regularizer applied to the output.
        kernel_constraint: Optional constraint applied to both kernels.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`.

    Example:

    >>> layer = DepthwiseSeparableConv2D(32, strides=2)
    >>> tuple(layer(keras.ops.zeros((1, 16, 16, 8))).shape)
    (1, 8, 8, 32)
    """

    # No bias arguments: both convolutions feed a batch normalization,
    # whose offset makes a bias redundant. No `kernel_initializer`: each
    # kernel has its own (`depthwise_initializer`, `pointwise_initializer`).
    weight_arguments = (
        "activation",
        "kernel_regularizer",
        "activity_regularizer",
        "kernel_constraint",
    )

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        padding="same",
        depth_multiplier=1,
        activation="relu6",
        momentum=0.99,
        epsilon=1e-3,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        kernel_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            kernel_regularizer=kernel_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            **kwargs,
        )
        self.filters = argument_validation.positive_int("filters", filters)
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.strides = argument_validation.int_pair("strides", strides)
        self.padding = argument_validation.padding_mode(padding)
        self.depth_multiplier = argument_validation.positive_int(
            "depth_multiplier", depth_multiplier
        )
        self.momentum = momentum
        self.epsilon = epsilon
        self.depthwise_initializer = keras.initializers.get(
            depthwise_initializer
        )
        self.pointwise_initializer = keras.initializers.get(
            pointwise_initializer
        )

        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            depth_multiplier=self.depth_multiplier,
            use_bias=False,
            depthwise_initializer=self.depthwise_initializer,
            **self.kernel_arguments(prefix="depthwise"),
            name="depthwise",
        )
        self.depthwise_bn = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, name="depthwise_bn"
        )
        self.pointwise = keras.layers.Conv2D(
            self.filters,
            1,
            use_bias=False,
            kernel_initializer=self.pointwise_initializer,
            **self.kernel_arguments(),
            name="pointwise",
        )
        self.pointwise_bn = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, name="pointwise_bn"
        )

    def build(self, input_shape):
        argument_validation.channels_last(
            "DepthwiseSeparableConv2D", input_shape
        )
        build_in_sequence(
            (
                self.depthwise,
                self.depthwise_bn,
                self.pointwise,
                self.pointwise_bn,
            ),
            input_shape,
        )

    def call(self, inputs, training=None):
        x = self.depthwise(inputs)
        x = self.activation(self.depthwise_bn(x, training=training))
        x = self.pointwise(x)
        return self.activation(self.pointwise_bn(x, training=training))

    def compute_output_shape(self, input_shape):
        shape = self.depthwise.compute_output_shape(input_shape)
        return (*shape[:-1], self.filters)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "depth_multiplier": self.depth_multiplier,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "depthwise_initializer": keras.initializers.serialize(
                self.depthwise_initializer
            ),
            "pointwise_initializer": keras.initializers.serialize(
                self.pointwise_initializer
            ),
        }
        return {**base_config, **config}


# Channel rule (structured pruning): the pointwise filters are the output
# channels; the depthwise part follows its input's channels.
def _channel_rule(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    depthwise_map = repeat(in_map, layer.depth_multiplier)
    unit = trace.new_unit(
        layer,
        layer.name,
        layer.filters,
        [(layer.pointwise.kernel, -1)],
        batch_norm=layer.pointwise_bn,
    )
    trace.slice(layer, layer.depthwise.kernel, -2, in_map)
    trace.slice_batch_norm(layer, layer.depthwise_bn, depthwise_map)
    trace.slice(layer, layer.pointwise.kernel, -2, depthwise_map)
    trace.slice(layer, layer.pointwise.kernel, -1, unit.map)
    trace.slice_batch_norm(layer, layer.pointwise_bn, unit.map)
    trace.resize(layer, lambda plan: {"filters": plan.count(unit)})
    return [unit.map]


register_layer(
    DepthwiseSeparableConv2D,
    channels=_channel_rule,
    quantize=QuantizeRule.inline(),
)
