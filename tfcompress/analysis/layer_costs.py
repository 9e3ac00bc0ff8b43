"""Per-layer cost rules: multiply-accumulates and int8 weight bytes.

`layer_cost(layer, input_shapes, output_shape)` answers "how many
multiply-accumulates (MACs) did this call of this layer do". The shapes are
those of a real call (see `tfcompress.analysis.profiler`), so strides,
dilation, padding and causal padding are already reflected in
`output_shape` and the rules never recompute them.

The rules count the whole call, batch axis included. `profile` calls the
model on a batch of one example, so the count is per example; counting the
batch axis too keeps it right when a layer folds other axes into the batch
axis of its sublayers' calls (as `TimeDistributed` or a custom reshape may).

Conventions:

- A MAC is one multiply-accumulate of a dense, convolution, pooling or
  matrix-multiply layer.
- Biases, activations, merges (`Add`, `Concatenate`, ...) and every other
  element-wise op are counted as 0 MACs; so are pure data movement (reshape,
  padding, cropping, nearest up-sampling, channel shuffle), lookups
  (`Embedding`) and regularisation layers, which are identities at inference.
- Average pooling counts one accumulate per window element and output
  value, `prod(output_shape) * prod(pool_size)`; global average pooling
  accumulates each input value once, `prod(input_shape)`. The final
  division is element-wise, so not counted. Max pooling is comparisons,
  0 MACs.
- `BatchNormalization` is 0 MACs: at export it is folded into the preceding
  convolution or dense layer.
- A layer without a rule gets `macs=None` (unknown). The rules never guess.

The rules are the `macs` aspect of the layer registry
(`tfcompress.graph.register_layer`), looked up along the layer's class
hierarchy (most specific class first), so a subclass of `Dense` or `Conv2D`
is counted like its parent. This module holds the counting functions;
`tfcompress.keras_layers` registers them for Keras's layers.
"""

import dataclasses
import math

import keras

from tfcompress.graph import registry

NO_MACS = "no MACs"
UNKNOWN_MACS = "MACs unknown"
FOLDED_BATCH_NORM = "folded into the preceding conv/dense at export (0 MACs)"


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """The cost of one call of a layer.

    Args:
        macs: Multiply-accumulates of the call (per example for a batch of
            one), or `None` when no rule covers the layer (unknown, never
            guessed).
        note: Short explanation for the report, e.g. `"no MACs"` or
            `"MACs unknown"`. Empty when the count needs no comment.
    """

    macs: int | None
    note: str = ""


def layer_cost(layer, input_shapes, output_shape):
    """Multiply-accumulates of one call of `layer`.

    With a batch of one example, as `profile` calls the model, this is the
    count per example.

    Args:
        layer: A `keras.layers.Layer`, or a `keras.Operation` from a
            functional graph (e.g. the node that `x + y` creates).
        input_shapes: List of the shapes (tuples of ints, batch first) of
            the tensors the call received positionally, in order. A merge
            layer called on a list of tensors gets one shape per tensor.
        output_shape: Shape (tuple of ints, batch first) of the call's first
            output.

    Returns:
        A `LayerCost`. `macs` is `None` when no rule covers the layer.

    Example:

    >>> layer = keras.layers.Dense(4)
    >>> layer_cost(layer, [(1, 3)], (1, 4))
    LayerCost(macs=12, note='')
    """
    rule = registry.rule_for(layer, "macs")
    if rule is None:
        return LayerCost(None, UNKNOWN_MACS)
    cost = rule(layer, [tuple(s) for s in input_shapes], tuple(output_shape))
    if isinstance(cost, LayerCost):
        return cost
    if cost is None:
        return LayerCost(None, UNKNOWN_MACS)
    return LayerCost(int(cost))


def has_rule(layer):
    """Whether a MAC rule covers `layer` (its class or one of its bases).

    Args:
        layer: A `keras.layers.Layer` or `keras.Operation`.

    Returns:
        `True` when `layer_cost` knows how to count the layer. The profiler
        treats such a layer as a leaf and does not descend into it.
    """
    return registry.rule_for(layer, "macs") is not None


def int8_weight_bytes(layer, variable):
    """Bytes `variable` of `layer` takes in an int8 (TFLite) model.

    Kernels, embeddings and other weights are stored as int8 (1 byte per
    element), biases as int32 (4 bytes per element, as TFLite does), and
    `BatchNormalization` weights take 0 bytes since they are folded into the
    preceding layer at export. Weights other than kernels and biases (e.g.
    a `PReLU` slope) are counted at 1 byte: an approximation.

    Args:
        layer: The layer that owns `variable`.
        variable: A `keras.Variable`.

    Returns:
        An integer number of bytes.
    """
    size = math.prod(variable.shape)
    if isinstance(layer, keras.layers.BatchNormalization):
        return 0
    if variable.name == "bias":
        return 4 * size
    return size


# Rules. Each takes (layer, input_shapes, output_shape) -> LayerCost.


def _positions_and_channels(layer, shape):
    """`shape` (batch first) as (batch * spatial positions, channels)."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return math.prod(shape[2:]) * shape[0], shape[1]
    return math.prod(shape[:-1]), shape[-1]


def dense_macs(layer, input_shapes, output_shape):
    # A Dense layer on a rank-3+ input applies to every position.
    in_features = input_shapes[0][-1]
    positions = math.prod(output_shape[:-1])
    return LayerCost(positions * in_features * layer.units)


def einsum_dense_macs(layer, input_shapes, output_shape):
    # Contraction of the input with the kernel: each combination of the
    # distinct indices of the equation (batch index and ellipsis included)
    # is one multiply-accumulate.
    equation = getattr(layer, "equation", "")
    kernel = getattr(layer, "kernel", None)
    if "->" not in equation or "," not in equation or kernel is None:
        return LayerCost(None, UNKNOWN_MACS)
    operands, _ = equation.split("->")
    input_spec, kernel_spec = operands.split(",")
    input_shape = input_shapes[0]
    ellipsis_size = 1
    if "..." in input_spec:
        named = input_spec.replace("...", "")
        ellipsis_rank = len(input_shape) - len(named)
        start = input_spec.index("...")
        ellipsis_size = math.prod(input_shape[start : start + ellipsis_rank])
        input_shape = (
            input_shape[:start] + input_shape[start + ellipsis_rank :]
        )
        input_spec = named
    if "..." in kernel_spec or len(input_spec) != len(input_shape):
        return LayerCost(None, UNKNOWN_MACS)
    sizes = {}
    for letters, shape in (
        (input_spec, input_shape),
        (kernel_spec, tuple(kernel.shape)),
    ):
        if len(letters) != len(shape):
            return LayerCost(None, UNKNOWN_MACS)
        for letter, size in zip(letters, shape):
            if sizes.setdefault(letter, size) != size:
                return LayerCost(None, UNKNOWN_MACS)
    return LayerCost(math.prod(sizes.values()) * ellipsis_size)


def convolution_macs(layer, input_shapes, output_shape):
    _, in_channels = _positions_and_channels(layer, input_shapes[0])
    out_positions, _ = _positions_and_channels(layer, output_shape)
    groups = getattr(layer, "groups", 1) or 1
    return LayerCost(
        out_positions
        * math.prod(layer.kernel_size)
        * (in_channels // groups)
        * layer.filters
    )


def convolution_transpose_macs(layer, input_shapes, output_shape):
    # Each input position scatters a kernel_size window to every filter.
    in_positions, in_channels = _positions_and_channels(
        layer, input_shapes[0]
    )
    return LayerCost(
        in_positions
        * math.prod(layer.kernel_size)
        * in_channels
        * layer.filters
    )


def _depthwise_macs(layer, input_shapes, output_shape):
    _, in_channels = _positions_and_channels(layer, input_shapes[0])
    out_positions, _ = _positions_and_channels(layer, output_shape)
    return (
        out_positions
        * math.prod(layer.kernel_size)
        * in_channels
        * layer.depth_multiplier
    )


def depthwise_convolution_macs(layer, input_shapes, output_shape):
    return LayerCost(_depthwise_macs(layer, input_shapes, output_shape))


def separable_convolution_macs(layer, input_shapes, output_shape):
    _, in_channels = _positions_and_channels(layer, input_shapes[0])
    out_positions, _ = _positions_and_channels(layer, output_shape)
    depthwise = _depthwise_macs(layer, input_shapes, output_shape)
    pointwise = (
        out_positions
        * in_channels
        * layer.depth_multiplier
        * layer.filters
    )
    return LayerCost(depthwise + pointwise)


def batch_normalization_macs(layer, input_shapes, output_shape):
    return LayerCost(0, FOLDED_BATCH_NORM)


def average_pooling_macs(layer, input_shapes, output_shape):
    # One accumulate per window element and output value.
    return LayerCost(math.prod(output_shape) * math.prod(layer.pool_size))


def global_average_pooling_macs(layer, input_shapes, output_shape):
    # Each input value is accumulated once.
    return LayerCost(math.prod(input_shapes[0]))


def max_pooling_macs(layer, input_shapes, output_shape):
    return LayerCost(0, "max: comparisons, no MACs")


def up_sampling_macs(layer, input_shapes, output_shape):
    if getattr(layer, "interpolation", "nearest") == "nearest":
        return LayerCost(0, NO_MACS)
    return LayerCost(None, f"{UNKNOWN_MACS} ({layer.interpolation})")


def no_macs(layer, input_shapes, output_shape):
    return LayerCost(0, NO_MACS)


def matmul_macs(layer, input_shapes, output_shape):
    # (..., M, K) @ (..., K, N): K multiply-accumulates per output value.
    # Also right for 1-D operands (vector products).
    if len(input_shapes) < 2 or not input_shapes[0]:
        return LayerCost(None, UNKNOWN_MACS)
    return LayerCost(math.prod(output_shape) * input_shapes[0][-1])
