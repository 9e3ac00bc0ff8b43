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

The rules are looked up along the layer's class hierarchy (most specific
class first), so a subclass of `Dense` or `Conv2D` is counted like its
parent; an exact-class registry would silently miss such subclasses.
"""

import dataclasses
import math

import keras

from tfcompress.layers.channel_shuffle import ChannelShuffle

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
    rule = _find_rule(layer)
    if rule is None:
        return LayerCost(None, UNKNOWN_MACS)
    return rule(layer, [tuple(s) for s in input_shapes], tuple(output_shape))


def has_rule(layer):
    """Whether a MAC rule covers `layer` (its class or one of its bases).

    Args:
        layer: A `keras.layers.Layer` or `keras.Operation`.

    Returns:
        `True` when `layer_cost` knows how to count the layer. The profiler
        treats such a layer as a leaf and does not descend into it.
    """
    return _find_rule(layer) is not None


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


def _dense(layer, input_shapes, output_shape):
    # A Dense layer on a rank-3+ input applies to every position.
    in_features = input_shapes[0][-1]
    positions = math.prod(output_shape[:-1])
    return LayerCost(positions * in_features * layer.units)


def _einsum_dense(layer, input_shapes, output_shape):
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


def _conv(layer, input_shapes, output_shape):
    _, in_channels = _positions_and_channels(layer, input_shapes[0])
    out_positions, _ = _positions_and_channels(layer, output_shape)
    groups = getattr(layer, "groups", 1) or 1
    return LayerCost(
        out_positions
        * math.prod(layer.kernel_size)
        * (in_channels // groups)
        * layer.filters
    )


def _conv_transpose(layer, input_shapes, output_shape):
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


def _depthwise_conv(layer, input_shapes, output_shape):
    return LayerCost(_depthwise_macs(layer, input_shapes, output_shape))


def _separable_conv(layer, input_shapes, output_shape):
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


def _batch_norm(layer, input_shapes, output_shape):
    return LayerCost(0, FOLDED_BATCH_NORM)


def _average_pooling(layer, input_shapes, output_shape):
    # One accumulate per window element and output value.
    return LayerCost(math.prod(output_shape) * math.prod(layer.pool_size))


def _global_average_pooling(layer, input_shapes, output_shape):
    # Each input value is accumulated once.
    return LayerCost(math.prod(input_shapes[0]))


def _max_pooling(layer, input_shapes, output_shape):
    return LayerCost(0, "max: comparisons, no MACs")


def _up_sampling(layer, input_shapes, output_shape):
    if getattr(layer, "interpolation", "nearest") == "nearest":
        return LayerCost(0, NO_MACS)
    return LayerCost(None, f"{UNKNOWN_MACS} ({layer.interpolation})")


def _no_macs(layer, input_shapes, output_shape):
    return LayerCost(0, NO_MACS)


def _channel_shuffle(layer, input_shapes, output_shape):
    return LayerCost(0, "channel shuffle: data movement, no MACs")


def _matmul(layer, input_shapes, output_shape):
    # (..., M, K) @ (..., K, N): K multiply-accumulates per output value.
    # Also right for 1-D operands (vector products).
    if len(input_shapes) < 2 or not input_shapes[0]:
        return LayerCost(None, UNKNOWN_MACS)
    return LayerCost(math.prod(output_shape) * input_shapes[0][-1])


_ZERO_MAC_LAYERS = (
    # Inputs, reshaping and data movement.
    "InputLayer",
    "Identity",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Masking",
    # Lookup.
    "Embedding",
    # Identities at inference.
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
    # Element-wise: 0 MACs by convention.
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "Softmax",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    # Foldable into the input quantization.
    "Rescaling",
    "Normalization",
)

_MAX_POOLING_LAYERS = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
)

# Operations that functional models record for `keras.ops` calls on
# symbolic tensors (e.g. `x + 3.0`). Their classes are not exported by
# Keras, so they are looked up by name in `keras.src.ops.*` (private
# modules; a name missing in some Keras version is skipped). Operations not
# listed here are reported with unknown MACs.
_ZERO_MAC_OPS = {
    "numpy": (
        # Element-wise arithmetic.
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "TrueDivide",
        "Negative",
        "Abs",
        "Absolute",
        "Square",
        "Sqrt",
        "Exp",
        "Tanh",
        "Maximum",
        "Minimum",
        "Clip",
        # Data movement.
        "Reshape",
        "Transpose",
        "Concatenate",
        "ExpandDims",
        "Squeeze",
        "GetItem",
        "Split",
        "Stack",
        "Tile",
        "Repeat",
        "Pad",
        "Moveaxis",
        "Swapaxes",
        "Flip",
        "Ravel",
    ),
    "nn": (
        "Relu",
        "Relu6",
        "Sigmoid",
        "HardSigmoid",
        "Silu",
        "HardSilu",
        "Gelu",
        "Elu",
        "Selu",
        "Celu",
        "LeakyRelu",
        "Softmax",
        "LogSoftmax",
        "Softplus",
        "Softsign",
        "HardTanh",
        "DepthToSpace",
        "SpaceToDepth",
    ),
    "core": (
        "Cast",
        "Slice",
        "Unstack",
        "StopGradient",
        "ConvertToTensor",
    ),
}


def _build_rules():
    rules = {
        keras.layers.Dense: _dense,
        keras.layers.EinsumDense: _einsum_dense,
        keras.layers.Conv1D: _conv,
        keras.layers.Conv2D: _conv,
        keras.layers.Conv3D: _conv,
        keras.layers.Conv1DTranspose: _conv_transpose,
        keras.layers.Conv2DTranspose: _conv_transpose,
        keras.layers.Conv3DTranspose: _conv_transpose,
        keras.layers.DepthwiseConv1D: _depthwise_conv,
        keras.layers.DepthwiseConv2D: _depthwise_conv,
        keras.layers.SeparableConv1D: _separable_conv,
        keras.layers.SeparableConv2D: _separable_conv,
        keras.layers.BatchNormalization: _batch_norm,
        keras.layers.AveragePooling1D: _average_pooling,
        keras.layers.AveragePooling2D: _average_pooling,
        keras.layers.AveragePooling3D: _average_pooling,
        keras.layers.GlobalAveragePooling1D: _global_average_pooling,
        keras.layers.GlobalAveragePooling2D: _global_average_pooling,
        keras.layers.GlobalAveragePooling3D: _global_average_pooling,
        keras.layers.UpSampling1D: _up_sampling,
        keras.layers.UpSampling2D: _up_sampling,
        keras.layers.UpSampling3D: _up_sampling,
        ChannelShuffle: _channel_shuffle,
    }
    for name in _MAX_POOLING_LAYERS:
        rules[getattr(keras.layers, name)] = _max_pooling
    for name in _ZERO_MAC_LAYERS:
        layer_class = getattr(keras.layers, name, None)
        if layer_class is not None:
            rules[layer_class] = _no_macs

    from keras.src.ops import core as ops_core
    from keras.src.ops import nn as ops_nn
    from keras.src.ops import numpy as ops_numpy

    modules = {"numpy": ops_numpy, "nn": ops_nn, "core": ops_core}
    for module_name, names in _ZERO_MAC_OPS.items():
        for name in names:
            op_class = getattr(modules[module_name], name, None)
            if op_class is not None:
                rules[op_class] = _no_macs
    if hasattr(ops_numpy, "Matmul"):
        rules[ops_numpy.Matmul] = _matmul
    return rules


_RULES = _build_rules()


def _find_rule(layer):
    # Most specific class first: walking the MRO finds a rule registered for
    # the layer's own class before one registered for a base class.
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule
    return None
