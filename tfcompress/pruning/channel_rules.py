"""Channel rules: what a layer does to the channels that flow through it.

A channel rule is `fn(trace, node, layer, in_maps) -> out_maps` (see
`tfcompress.pruning.channel_trace`). This module holds the rules of
Keras's layers, which `tfcompress.keras_layers` registers, and two
factories for layers of your own: `producer(...)` for a layer whose output
channels are the last axis of a kernel (as `Dense` and `Conv2D`), and
`barrier(reason)` for one pruning must not see through.

Example, a custom `Dense`-like layer:

```python
tfcompress.graph.register_layer(
    MyDense,
    channels=channel_rules.producer(
        kernel="kernel", bias="bias", size_argument="units"
    ),
)
```
"""

import math
import numbers

import keras

from tfcompress.graph import functional_graph
from tfcompress.pruning.channel_trace import CHANNEL_MIXING_ACTIVATIONS
from tfcompress.pruning.channel_trace import ChannelMap
from tfcompress.pruning.channel_trace import UntraceableLayer
from tfcompress.pruning.channel_trace import activation_name
from tfcompress.pruning.channel_trace import repeat


def producer(
    kernel="kernel",
    bias="bias",
    size_argument="units",
    kernel_input_axis=-2,
    kernel_output_axis=-1,
):
    """The channel rule of a layer whose kernel makes its output channels.

    The layer's output channel `c` is computed from `kernel[..., c]` (along
    `kernel_output_axis`) and `bias[c]`; its input channels are read along
    `kernel_input_axis`; the config argument `size_argument` sets the
    number of output channels. Pruning slices the kernel on both axes and
    the bias, and rebuilds the layer with the smaller size.

    Args:
        kernel: Attribute name of the kernel. Defaults to `"kernel"`.
        bias: Attribute name of the bias, or `None`. Defaults to `"bias"`
            (a missing attribute or `None` value means no bias).
        size_argument: Config key of the number of output channels, e.g.
            `"units"` or `"filters"`. Defaults to `"units"`.
        kernel_input_axis: Axis of the kernel's input channels. Defaults
            to `-2`.
        kernel_output_axis: Axis of its output channels. Defaults to `-1`.

    Returns:
        A channel rule for `tfcompress.graph.register_layer`.
    """

    def rule(trace, node, layer, in_maps):
        in_map = trace.single(in_maps)
        trace.check_channels_last(layer)
        weights = getattr(layer, kernel)
        bias_variable = getattr(layer, bias, None) if bias else None
        size = int(weights.shape[kernel_output_axis])
        unit = trace.new_unit(
            layer,
            layer.name,
            size,
            [(weights, kernel_output_axis)],
            bias_variable,
        )
        trace.slice(layer, weights, kernel_input_axis, in_map)
        trace.slice(layer, weights, kernel_output_axis, unit.map)
        trace.slice(layer, bias_variable, 0, unit.map)
        trace.resize(layer, lambda plan: {size_argument: plan.count(unit)})
        return [unit.map]

    return rule


def barrier(reason):
    """The channel rule of a layer pruning must not see through.

    The channels that reach the layer are left alone, and the report
    gives `reason`.
    """

    def rule(trace, node, layer, in_maps):
        raise UntraceableLayer(reason)

    return rule


# Dense: output units from the kernel's columns.
dense = producer(size_argument="units")
_convolution_filters = producer(size_argument="filters")


def convolution(trace, node, layer, in_maps):
    """`Conv1D`/`Conv2D`/`Conv3D`: filters from the kernel's last axis."""
    if layer.groups != 1:
        return grouped_convolution(trace, node, layer, in_maps)
    return _convolution_filters(trace, node, layer, in_maps)


def separable_convolution(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    trace.check_channels_last(layer)
    # Position c * depth_multiplier + k of the depthwise output comes
    # from input channel c.
    depthwise_map = repeat(in_map, layer.depth_multiplier)
    unit = trace.new_unit(
        layer,
        layer.name,
        layer.filters,
        [(layer.pointwise_kernel, -1)],
        layer.bias,
    )
    trace.slice(layer, layer.depthwise_kernel, -2, in_map)
    trace.slice(layer, layer.pointwise_kernel, -2, depthwise_map)
    trace.slice(layer, layer.pointwise_kernel, -1, unit.map)
    trace.slice(layer, layer.bias, 0, unit.map)
    trace.resize(layer, lambda plan: {"filters": plan.count(unit)})
    return [unit.map]


def depthwise_convolution(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    trace.check_channels_last(layer)
    out_map = repeat(in_map, layer.depth_multiplier)
    trace.slice(layer, layer.kernel, -2, in_map)
    trace.slice(layer, layer.bias, 0, out_map)
    return [out_map]


def batch_normalization(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    rank = len(node.input_tensors[0].shape)
    if layer.axis not in (-1, rank - 1):
        raise UntraceableLayer(f"normalizes axis {layer.axis}, not channels")
    trace.slice_batch_norm(layer, layer, in_map)
    producer = functional_graph.producer(node.input_tensors[0])
    unit = in_map.unit if in_map is not None else None
    if unit is not None and unit.layer is producer and layer.scale:
        unit.batch_norm = unit.batch_norm or layer
    return [in_map]


def flatten(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    trace.check_channels_last(layer)
    shape = node.input_tensors[0].shape
    if in_map is None or any(dim is None for dim in shape[1:]):
        raise UntraceableLayer("input with unknown dimensions")
    # Channels-last flattening: position s * C + c holds channel c.
    return [in_map.tile(math.prod(shape[1:-1]))]


def merge(trace, node, layer, in_maps):
    trace.tie(in_maps, layer)
    return [in_maps[0]]


def concatenate(trace, node, layer, in_maps):
    rank = len(node.outputs[0].shape)
    if layer.axis % rank != rank - 1:
        # Joined along another axis: every input fills the same channels.
        trace.tie(in_maps, layer)
        return [in_maps[0]]
    if any(m is None for m in in_maps):
        raise UntraceableLayer("an input has an unknown number of channels")
    return [ChannelMap.concatenate(in_maps)]


def activation(trace, node, layer, in_maps):
    name = activation_name(layer.activation)
    if name in CHANNEL_MIXING_ACTIVATIONS:
        raise UntraceableLayer(f"{name} mixes channels")
    return elementwise(trace, node, layer, in_maps)


def elementwise(trace, node, layer, in_maps):
    return [trace.single(in_maps)]


def spatial(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    trace.check_channels_last(layer)
    return [in_map]


def elementwise_op(trace, node, operation, in_maps):
    """A `keras.ops` call that acts element by element (e.g. `x + y`).

    Its tensor inputs (broadcast against constants) share their channels.
    """
    arguments = keras.tree.flatten(
        (node.arguments.args, node.arguments.kwargs)
    )
    constants_only = all(
        isinstance(a, (keras.KerasTensor, numbers.Number))
        for a in arguments
    )
    if not constants_only or not in_maps:
        raise UntraceableLayer(
            f"operation {type(operation).__name__} is not traced with "
            "these arguments"
        )
    if len(in_maps) > 1:
        trace.tie(in_maps, operation)
    return [in_maps[0]]


def grouped_convolution(trace, node, layer, in_maps):
    """A `Conv1D`/`Conv2D` with `groups > 1`.

    When every group reads one input channel (`groups` equals the input
    channels, ConvNeXt's depthwise 7x7), the layer is a depthwise
    convolution: output channel `c * m + k` reads input channel `c` only,
    so channels flow through it and `groups` shrinks with them. Otherwise
    its filters are pruned as a unit that keeps the same number in every
    group, and its input channels are left alone (a group's inputs are
    tied to its filters).
    """
    in_map = trace.single(in_maps)
    trace.check_channels_last(layer)
    groups = layer.groups
    per_group_in = int(layer.kernel.shape[-2])
    if per_group_in == 1 and in_map is not None:
        multiplier = layer.filters // groups
        out_map = repeat(in_map, multiplier)
        trace.slice(layer, layer.kernel, -1, out_map)
        trace.slice(layer, layer.bias, 0, out_map)

        def resize(plan):
            kept = plan.count_map(in_map, groups)
            return {"groups": kept, "filters": kept * multiplier}

        trace.resize(layer, resize)
        return [out_map]
    trace.freeze(
        in_map,
        f"feeds grouped {type(layer).__name__} '{layer.name}' "
        f"(groups={groups}): its input channels are tied by group",
    )
    unit = trace.new_unit(
        layer, layer.name, layer.filters, [(layer.kernel, -1)], layer.bias
    )
    unit.groups = groups
    trace.slice(layer, layer.kernel, -1, unit.map)
    trace.slice(layer, layer.bias, 0, unit.map)
    trace.resize(layer, lambda plan: {"filters": plan.count(unit)})
    return [unit.map]


def reshape(trace, node, layer, in_maps):
    """`Reshape` that keeps the last axis (SE's `(C,) -> (1, 1, C)`).

    In row-major order, position `p` of a last axis of the same size `C`
    holds flat index `i` with `i % C == p` before and after: channels stay
    where they were whatever the other axes become.
    """
    in_map = trace.single(in_maps)
    in_shape = node.input_tensors[0].shape
    out_shape = node.outputs[0].shape
    if (
        in_map is None
        or in_shape[-1] is None
        or out_shape[-1] != in_shape[-1]
        or len(layer.target_shape) == 0
        or layer.target_shape[-1] != in_shape[-1]
    ):
        raise UntraceableLayer("it changes the last axis")

    def resize(plan):
        target = list(layer.target_shape)
        target[-1] = plan.count_map(in_map, target[-1])
        return {"target_shape": tuple(target)}

    trace.resize(layer, resize)
    return [in_map]


def per_channel_scale(weight="gamma", size_argument="projection_dim"):
    """The rule of a layer multiplying channel `c` by `weight[c]`.

    E.g. ConvNeXt's `LayerScale`: channels flow through, the scale is
    sliced, and `size_argument` follows the kept channels.
    """

    def rule(trace, node, layer, in_maps):
        in_map = trace.single(in_maps)
        if in_map is None:
            raise UntraceableLayer("input with an unknown number of channels")
        trace.slice(layer, getattr(layer, weight), 0, in_map)
        trace.resize(
            layer,
            lambda plan: {
                size_argument: plan.count_map(in_map, len(in_map))
            },
        )
        return [in_map]

    return rule


def layer_normalization(trace, node, layer, in_maps):
    """`LayerNormalization` over the last axis.

    Not exact, unlike the other rules: the mean and variance are then
    taken over the kept channels only, so the kept channels' outputs change
    too (as in Torch-Pruning; fine-tuning absorbs it). Normalizing over
    other axes mixes positions that pruning cannot follow.
    """
    in_map = trace.single(in_maps)
    rank = len(node.input_tensors[0].shape)
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [
        layer.axis
    ]
    if [axis % rank for axis in axes] != [rank - 1]:
        raise UntraceableLayer(f"normalizes axes {layer.axis}, not channels")
    trace.slice(layer, layer.gamma, 0, in_map)
    trace.slice(layer, layer.beta, 0, in_map)
    return [in_map]


def added_weight(weight):
    """The rule of a layer adding `weight` (last axis: channels) to its input.

    E.g. a learned position embedding `x + position`: channels flow through
    and the weight's last axis is sliced with them.
    """

    def rule(trace, node, layer, in_maps):
        in_map = trace.single(in_maps)
        if in_map is None:
            raise UntraceableLayer("input with an unknown number of channels")
        trace.slice(layer, getattr(layer, weight), -1, in_map)
        return [in_map]

    return rule


def multi_head_attention(trace, node, layer, in_maps):
    """`MultiHeadAttention`: whole heads, and its output channels.

    Two channel sets are made: the heads (a head is its query, key and
    value projections and its rows of the output projection; removing one
    drops exactly its term of the output sum, and the `1 / sqrt(key_dim)`
    scale stays) and the output channels (the output projection's
    columns, `output_shape`). The query, key and value inputs' channels are
    the projections' input rows.
    """
    if layer.quantization_mode is not None:
        raise UntraceableLayer("quantized layer")
    if getattr(layer, "_use_gate", False):
        raise UntraceableLayer("gated attention")
    arguments = node.arguments
    tensors = keras.tree.flatten((arguments.args, arguments.kwargs))
    if arguments.kwargs or len(tensors) not in (2, 3) or len(in_maps) != len(
        tensors
    ):
        raise UntraceableLayer(
            "called with masks or keyword arguments; only "
            "mha(query, value[, key]) is traced"
        )
    if len(node.input_tensors[0].shape) != 3 or any(m is None for m in in_maps):
        raise UntraceableLayer("inputs that are not (batch, sequence, features)")
    query_map, value_map = in_maps[0], in_maps[1]
    key_map = in_maps[2] if len(in_maps) == 3 else value_map
    query, key, value = layer.query_dense, layer.key_dense, layer.value_dense
    output = layer.output_dense
    heads = trace.new_unit(
        layer,
        f"{layer.name}/heads",
        layer.num_heads,
        [(query.kernel, 1), (key.kernel, 1), (value.kernel, 1)],
    )
    for dense, channel_map in (
        (query, query_map),
        (key, key_map),
        (value, value_map),
    ):
        trace.slice(layer, dense.kernel, 0, channel_map)
        trace.slice(layer, dense.kernel, 1, heads.map)
        trace.slice(layer, getattr(dense, "bias", None), 0, heads.map)
    trace.slice(layer, output.kernel, 0, heads.map)
    size = int(output.kernel.shape[-1])
    outputs = trace.new_unit(
        layer,
        layer.name,
        size,
        [(output.kernel, -1)],
        getattr(output, "bias", None),
    )
    trace.slice(layer, output.kernel, -1, outputs.map)
    trace.slice(layer, getattr(output, "bias", None), 0, outputs.map)
    # `output_shape=None` would follow the query's (pruned) channels: the
    # output's own count is set instead.
    trace.resize(
        layer,
        lambda plan: {
            "num_heads": plan.count(heads),
            "output_shape": plan.count(outputs),
        },
    )
    return [outputs.map]
