"""MobileNetV2's inverted residual block with a linear bottleneck."""

import math
import numbers

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.sublayers import build_in_sequence
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.pruning.channel_trace import UntraceableLayer
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class InvertedResidual(WeightedLayer):
    """Expand 1x1, depthwise kxk, linear 1x1 projection, residual add.

    The MobileNetV2 block (Sandler et al. 2018): a 1x1 convolution expands
    the C input channels by `expansion`, a depthwise convolution filters
    them (with `strides`), and a 1x1 projection without activation (the
    linear bottleneck) maps them to `filters`. When `strides == 1` and
    `filters == C`, the input is added to the output. Every convolution is
    followed by batch normalization, which TFLite folds away. With
    `expansion=1` the expansion convolution is skipped, as in the first
    MobileNetV2 block.

    Args:
        filters: Positive integer, number of output channels.
        expansion: Positive number, expansion factor t: the block works on
            `round(C * t)` channels inside. Defaults to `6`.
        strides: Integer or tuple of 2 integers, strides of the depthwise
            convolution. Defaults to `1`.
        kernel_size: Integer or tuple of 2 integers, depthwise kernel size.
            Defaults to `3`.
        activation: Activation after the expansion and depthwise
            convolutions (never after the projection). Defaults to
            `"relu6"`.
        momentum: Momentum of the batch normalization moving averages.
            Defaults to `0.99`.
        epsilon: Batch normalization epsilon. Defaults to `1e-3`.
        kernel_initializer: Initializer of every kernel. Defaults to
            `"glorot_uniform"`.
        kernel_regularizer: Optional regularizer applied to every kernel.
        activity_regularizer: Optional regularizer applied to the output.
        kernel_constraint: Optional constraint applied to every kernel.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`.

    Example:

    >>> block = InvertedResidual(16, expansion=4)
    >>> tuple(block(keras.ops.zeros((1, 8, 8, 16))).shape)  # residual add is used
    (1, 8, 8, 16)
    >>> block.uses_residual
    True
    """

    # No bias arguments: every convolution feeds a batch normalization,
    # whose offset makes a bias redundant.
    weight_arguments = (
        "activation",
        "kernel_initializer",
        "kernel_regularizer",
        "activity_regularizer",
        "kernel_constraint",
    )

    def __init__(
        self,
        filters,
        expansion=6,
        strides=1,
        kernel_size=3,
        activation="relu6",
        momentum=0.99,
        epsilon=1e-3,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            **kwargs,
        )
        self.filters = argument_validation.positive_int("filters", filters)
        if (
            isinstance(expansion, bool)
            or not isinstance(expansion, numbers.Real)
            or not expansion > 0
        ):
            raise ValueError(
                "`expansion` must be a positive number (MobileNetV2 uses 6). "
                f"Received: expansion={expansion!r}"
            )
        self.expansion = expansion
        self.strides = argument_validation.int_pair("strides", strides)
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.momentum = momentum
        self.epsilon = epsilon
        self.expand = None
        self.expand_bn = None
        self.uses_residual = None

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )

    def build(self, input_shape):
        channels = argument_validation.channels_last(
            "InvertedResidual", input_shape
        )
        hidden = int(round(channels * self.expansion))
        if hidden < 1:
            raise ValueError(
                f"`expansion`={self.expansion} leaves no hidden channel for "
                f"{channels} input channels; use expansion >= "
                f"{1 / channels:g}. Received: expansion={self.expansion!r}"
            )
        # Sublayers that depend on the input channel count are made here.
        layers = []
        if self.expansion != 1:
            self.expand = keras.layers.Conv2D(
                hidden,
                1,
                use_bias=False,
                **self.kernel_arguments(),
                name="expand",
            )
            self.expand_bn = self._batch_norm("expand_bn")
            layers += [self.expand, self.expand_bn]
        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding="same",
            use_bias=False,
            **self.kernel_arguments(prefix="depthwise"),
            name="depthwise",
        )
        self.depthwise_bn = self._batch_norm("depthwise_bn")
        self.project = keras.layers.Conv2D(
            self.filters,
            1,
            use_bias=False,
            **self.kernel_arguments(),
            name="project",
        )
        self.project_bn = self._batch_norm("project_bn")
        layers += [
            self.depthwise,
            self.depthwise_bn,
            self.project,
            self.project_bn,
        ]
        build_in_sequence(layers, input_shape)
        self.uses_residual = self.strides == (1, 1) and channels == self.filters

    def call(self, inputs, training=None):
        x = inputs
        if self.expand is not None:
            x = self.expand(x)
            x = self.activation(self.expand_bn(x, training=training))
        x = self.depthwise(x)
        x = self.activation(self.depthwise_bn(x, training=training))
        x = self.project_bn(self.project(x), training=training)
        if self.uses_residual:
            x = keras.ops.add(inputs, x)
        return x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, stride in zip((1, 2), self.strides):
            if shape[axis] is not None:
                shape[axis] = -(-shape[axis] // stride)  # "same" padding
        shape[-1] = self.filters
        return tuple(shape)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "expansion": self.expansion,
            "strides": self.strides,
            "kernel_size": self.kernel_size,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }
        return {**base_config, **config}


# Channel rule (structured pruning): the hidden channels ("<block>/expand")
# and the output channels ("<block>/project") are pruned apart; a residual
# add ties the output channels to the input's.
def _channel_rule(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    channels = node.input_tensors[0].shape[-1]
    if layer.uses_residual and (
        in_map is None
        or not np.array_equal(in_map.indices, np.arange(channels))
        or any(trace.sets[s].size != channels for s in set(in_map.sets))
    ):
        raise UntraceableLayer(
            "its residual add meets input channels not aligned one to one"
        )
    hidden = None
    hidden_map = in_map
    if layer.expand is not None:
        hidden = trace.new_unit(
            layer,
            f"{layer.name}/expand",
            layer.expand.filters,
            [(layer.expand.kernel, -1)],
            batch_norm=layer.expand_bn,
        )
        hidden_map = hidden.map
        trace.slice(layer, layer.expand.kernel, -2, in_map)
        trace.slice(layer, layer.expand.kernel, -1, hidden_map)
        trace.slice_batch_norm(layer, layer.expand_bn, hidden_map)
    trace.slice(layer, layer.depthwise.kernel, -2, hidden_map)
    trace.slice_batch_norm(layer, layer.depthwise_bn, hidden_map)
    trace.slice(layer, layer.project.kernel, -2, hidden_map)
    out = trace.new_unit(
        layer,
        f"{layer.name}/project",
        layer.filters,
        [(layer.project.kernel, -1)],
        batch_norm=layer.project_bn,
    )
    trace.slice(layer, layer.project.kernel, -1, out.map)
    trace.slice_batch_norm(layer, layer.project_bn, out.map)
    if layer.uses_residual:
        trace.tie([in_map, out.map], layer)
    in_sets = []
    if in_map is not None:
        in_sets = [trace.sets[s] for s in np.unique(in_map.sets)]

    def resize(plan):
        config = {"filters": plan.count(out)}
        if hidden is not None:
            kept_in = plan.count_map(in_map, channels)
            kept_hidden = plan.count(hidden)
            original = (hidden.channel_set.size, channels)
            if (kept_hidden, kept_in) != original:
                # The block makes round(C * expansion) hidden channels.
                expansion = kept_hidden / kept_in
                if expansion == 1:
                    # An expansion of 1 drops the expansion convolution;
                    # the next float above 1 keeps it, with C channels.
                    expansion = math.nextafter(1.0, 2.0)
                if int(round(kept_in * expansion)) != kept_hidden:
                    raise RuntimeError(
                        f"Internal error: expansion {expansion!r} does "
                        f"not give {kept_hidden} hidden channels from "
                        f"{kept_in} in '{layer.name}'."
                    )
                config["expansion"] = expansion
        return config

    trace.resize(layer, resize)
    if layer.strides == (1, 1) and not layer.uses_residual:

        def keeps_residual_off(plan):
            if plan.count(out) == plan.count_map(in_map, channels):
                return (
                    "keeping as many output as input channels would "
                    f"turn on the residual add of '{layer.name}'",
                    [out.channel_set, *in_sets],
                )
            return None

        trace.constraints.append(keeps_residual_off)
    return [out.map]


register_layer(
    InvertedResidual,
    channels=_channel_rule,
    quantize=QuantizeRule.inline(),
)
