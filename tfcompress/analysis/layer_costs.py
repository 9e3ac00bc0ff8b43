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
- Biases, activations, merges (`Add`, `Multiply`, `Concatenate`, ...) and
  every other element-wise op are counted as 0 MACs; so are pure data
  movement (reshape, padding, cropping, nearest up-sampling and resizing,
  channel shuffle), lookups (`Embedding`, `StringLookup`, `Hashing`, ...),
  regularisation layers and random augmentation layers, which are
  identities at inference.
- Average pooling counts one accumulate per window element and output
  value, `prod(output_shape) * prod(pool_size)`; global average pooling
  accumulates each input value once, `prod(input_shape)`; adaptive average
  pooling accumulates the window of each output bin (bin `i` of `n` over a
  length `L` spans `floor(i * L / n)` to `ceil((i + 1) * L / n)`). The final
  division is element-wise, so not counted. Max pooling is comparisons,
  0 MACs. Reductions (`keras.ops.mean`, `keras.ops.sum`) accumulate each
  input value once.
- `BatchNormalization` is 0 MACs: at export it is folded into the preceding
  convolution or dense layer.
- Normalizations whose statistics come from the input at run time, which
  therefore cannot fold into a neighbouring layer, count per element of
  their input one MAC for each statistic (the mean: an accumulate; the
  variance, mean square or sum of squares: a multiply-accumulate) and one
  MAC to apply it, subtraction, scale and shift included. So
  `LayerNormalization` and `GroupNormalization` count 3 MACs per element
  (mean, variance, apply), `RMSNormalization` and `UnitNormalization` 2
  (mean square or sum of squares, apply). The square root and reciprocal
  of each statistic are element-wise, not counted.
- Matrix products between activations (`keras.ops.matmul`, `Dot`,
  `keras.ops.einsum`) count one MAC per combination of the indices of the
  product: `prod(output_shape) * contracted size`. An einsum that sums
  over no index (an element-wise or outer product) is element-wise, 0 MACs;
  one with more than two operands is unknown (its cost depends on the
  contraction order).
- Attention (`tfcompress.analysis.attention_costs`) counts its projections
  as dense layers, the query-key scores `heads * Tq * Tk * key_dim` and the
  softmax-weighted sum of the values `heads * Tq * Tk * value_dim`; the
  scaling, masking and softmax are element-wise, 0.
- Recurrent layers (`tfcompress.analysis.recurrent_costs`) count, at each
  timestep, the products of the input and of the previous state with the
  gate kernels, `gates * (input_dim + units) * units`; the gate
  activations and state updates are element-wise, 0.
- Bilinear and other interpolating resizes are unknown for now (no
  convention chosen), like a layer without a rule.
- A layer that computes in its own `call()` around its sublayers
  (attention, `Bidirectional`, recurrent layers, `SpectralNormalization`)
  has a rule and is a leaf of the profile. Only layers that merely route
  data to their sublayers (`TimeDistributed`, `Pipeline`, nested models)
  are counted through them. `tests/analysis/test_keras_layer_coverage.py`
  checks this for every layer `keras.layers` exports.
- A layer without a rule gets `macs=None` (unknown). The rules never guess.
  Layers that could only be guessed (`Lambda`, an FFT, a wrapped foreign
  model) have a rule that says so: they are leaves of the profile,
  reported as unknown with the reason in their note.

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
            the tensors among the call's arguments, in the order of the
            layer's `call` signature, tensors passed by keyword included
            (`mha(query=x, value=y)` gives the shapes of `x` then `y`). A
            merge layer called on a list of tensors gets one shape per
            tensor.
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


def einsum_indices(equation, operand_shapes):
    """The sizes of the indices of an einsum, and which it sums over.

    Dimensions under an ellipsis are indices too, aligned from the right and
    broadcast as NumPy does; so is a dimension of size 1 against a larger
    one.

    Args:
        equation: An einsum equation, e.g. `"bqd,bkd->bqk"`, with or
            without `->` (implicit mode: the output has the indices that
            appear once, as NumPy decides).
        operand_shapes: One shape (tuple of ints) per operand.

    Returns:
        `(sizes, summed)`: `{index: size}` for every index, and the set of
        indices summed over (absent from the output); or `None` when the
        shapes do not fit the equation.

    Example:

    >>> einsum_indices("bqd,bkd->bqk", [(1, 4, 8), (1, 6, 8)])
    ({'b': 1, 'q': 4, 'd': 8, 'k': 6}, {'d'})
    """
    inputs, arrow, output = equation.replace(" ", "").partition("->")
    specs = inputs.split(",")
    if len(specs) != len(operand_shapes):
        return None
    sizes = {}
    counts = {}
    ellipsis_rank = 0
    for spec, shape in zip(specs, operand_shapes):
        before, dots, after = spec.partition("...")
        named = before + after
        rank = len(shape) - len(named)
        if (named and not named.isalpha()) or rank < 0 or (rank and not dots):
            return None
        ellipsis_rank = max(ellipsis_rank, rank)
        # Ellipsis dimensions are named "0", "1", ... from the right, so
        # that they line up across operands of different ranks.
        indices = [*before, *(str(i) for i in reversed(range(rank))), *after]
        for index, size in zip(indices, shape):
            counts[index] = counts.get(index, 0) + 1
            known = sizes.get(index, size)
            if known != size and 1 not in (known, size):
                return None
            sizes[index] = max(known, size)
    ellipsis = {str(i) for i in range(ellipsis_rank)}
    if arrow:
        kept = set(output.replace("...", "")) | (
            ellipsis if "..." in output else set()
        )
    else:
        kept = {index for index, n in counts.items() if n == 1} | ellipsis
    return sizes, set(sizes) - kept


def einsum_dense_macs(layer, input_shapes, output_shape):
    # Contraction of the input with the kernel: each combination of the
    # distinct indices of the equation (batch index and ellipsis included)
    # is one multiply-accumulate, as for a (depthwise) convolution, even
    # when no index is summed over.
    equation = getattr(layer, "equation", "")
    kernel = getattr(layer, "kernel", None)
    if "->" not in equation or kernel is None:
        return LayerCost(None, UNKNOWN_MACS)
    indices = einsum_indices(
        equation, [input_shapes[0], tuple(kernel.shape)]
    )
    if indices is None:
        return LayerCost(None, UNKNOWN_MACS)
    sizes, _ = indices
    return LayerCost(math.prod(sizes.values()))


def einsum_macs(layer, input_shapes, output_shape):
    # A `keras.ops.einsum` node: `layer.subscripts` over its operands.
    indices = einsum_indices(layer.subscripts, input_shapes)
    if indices is None or len(input_shapes) > 2:
        return LayerCost(
            None, f"{UNKNOWN_MACS} (einsum {layer.subscripts!r})"
        )
    sizes, summed = indices
    if not summed:
        # A transpose, or an element-wise or outer product.
        return LayerCost(0, NO_MACS)
    return LayerCost(math.prod(sizes.values()))


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


def adaptive_average_pooling_macs(layer, input_shapes, output_shape):
    # One accumulate per window element of each output bin; bins of
    # different sizes (`floor(i * L / n)` to `ceil((i + 1) * L / n)`).
    input_shape = input_shapes[0]
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        outer = input_shape[:2]
        lengths, bins = input_shape[2:], output_shape[2:]
    else:
        outer = (input_shape[0], input_shape[-1])
        lengths, bins = input_shape[1:-1], output_shape[1:-1]
    windows = 1
    for length, n in zip(lengths, bins):
        windows *= sum(
            -(-(i + 1) * length // n) - i * length // n for i in range(n)
        )
    return LayerCost(math.prod(outer) * windows)


def resizing_macs(layer, input_shapes, output_shape):
    # Nearest-neighbour resizing is data movement; no convention is chosen
    # for interpolating ones (bilinear, bicubic, ...).
    interpolation = getattr(layer, "interpolation", "nearest")
    if interpolation == "nearest":
        return LayerCost(0, NO_MACS)
    return LayerCost(None, f"{UNKNOWN_MACS} ({interpolation})")


def center_crop_macs(layer, input_shapes, output_shape):
    # A crop is data movement; `CenterCrop` resizes an image smaller than
    # its target, an interpolation like `resizing_macs`'.
    if layer.data_format == "channels_first":
        sizes = zip(output_shape[2:], input_shapes[0][2:])
    else:
        sizes = zip(output_shape[1:-1], input_shapes[0][1:-1])
    if all(out <= size for out, size in sizes):
        return LayerCost(0, NO_MACS)
    return LayerCost(None, f"{UNKNOWN_MACS} (resizes to crop: bilinear)")


def identity_at_inference(layer, input_shapes, output_shape):
    # A random augmentation: `profile` calls with `training=False`, where
    # these layers return their input.
    if input_shapes and tuple(input_shapes[0]) == tuple(output_shape):
        return LayerCost(0, "identity at inference (no MACs)")
    return LayerCost(None, f"{UNKNOWN_MACS} (changes shape at inference)")


def no_macs(layer, input_shapes, output_shape):
    return LayerCost(0, NO_MACS)


def matmul_macs(layer, input_shapes, output_shape):
    # (..., M, K) @ (..., K, N): K multiply-accumulates per output value.
    # Also right for 1-D operands (vector products).
    if len(input_shapes) < 2 or not input_shapes[0]:
        return LayerCost(None, UNKNOWN_MACS)
    return LayerCost(math.prod(output_shape) * input_shapes[0][-1])


def dot_macs(layer, input_shapes, output_shape):
    # `Dot`: a batched matrix product over `axes`; with `normalize`, each
    # input is L2-normalized first (2 MACs per element, see the module
    # docstring).
    if len(input_shapes) != 2:
        return LayerCost(None, UNKNOWN_MACS)
    axes = layer.axes if isinstance(layer.axes, int) else layer.axes[0]
    first = input_shapes[0]
    macs = math.prod(output_shape) * first[axes % len(first)]
    if layer.normalize:
        macs += 2 * (math.prod(first) + math.prod(input_shapes[1]))
    return LayerCost(macs)


def reduction_macs(layer, input_shapes, output_shape):
    # `keras.ops.mean` / `sum`: each input value accumulated once.
    return LayerCost(math.prod(input_shapes[0]))


def layer_normalization_macs(layer, input_shapes, output_shape):
    # Mean (accumulate), variance (multiply-accumulate), then subtract,
    # scale and shift (one multiply-add): 3 per element.
    return LayerCost(3 * math.prod(input_shapes[0]))


def rms_normalization_macs(layer, input_shapes, output_shape):
    # Mean square or sum of squares (multiply-accumulate), then scale (one
    # multiply): 2 per element.
    return LayerCost(2 * math.prod(input_shapes[0]))


def reversible_embedding_macs(layer, input_shapes, output_shape):
    # Forward: a lookup, which adds the embedding axis. `reverse=True`:
    # a product with the transposed table, which keeps the rank.
    if len(output_shape) != len(input_shapes[0]):
        return LayerCost(0, NO_MACS)
    return LayerCost(math.prod(output_shape) * input_shapes[0][-1])


def wrapped_layer_macs(layer, input_shapes, output_shape):
    # A wrapper whose inference call is its wrapped layer's
    # (`SpectralNormalization` renormalizes its kernel in training only).
    return layer_cost(layer.layer, input_shapes, output_shape)


def unknown(reason):
    """A MAC rule that reports a layer's MACs as unknown, and why.

    For layers whose work no rule can count without guessing (a `Lambda`,
    an FFT, a wrapped foreign model): registered with this rule, they are
    leaves of the profile (their sublayers, if any, are not counted
    instead) and listed in `unknown_macs` with `reason` in their note.

    Args:
        reason: Short explanation for the report, e.g. `"Lambda"`.

    Returns:
        A rule for `tfcompress.graph.register_layer(..., macs=...)`.

    Example:

    >>> rule = unknown("Lambda: an arbitrary function")
    >>> rule(keras.layers.Lambda(lambda x: x), [(1, 4)], (1, 4))
    LayerCost(macs=None, note='MACs unknown (Lambda: an arbitrary function)')
    """

    def unknown_macs(layer, input_shapes, output_shape):
        return LayerCost(None, f"{UNKNOWN_MACS} ({reason})")

    return unknown_macs
