"""MAC rules for attention layers.

Conventions (see also `tfcompress.analysis.layer_costs`): attention counts

- its projections (query, key, value, gate if any, output) as the dense
  layers they are: positions times the kernel's size;
- the query-key scores, `heads * Tq * Tk * key_dim` per example;
- the softmax-weighted sum of the values, `heads * Tq * Tk * value_dim`;

where `Tq` and `Tk` are the numbers of query and key positions the
attention runs over (the product of the `attention_axes` dimensions for a
`MultiHeadAttention` with several). Scaling the query, masking and the
softmax are element-wise, 0 MACs; so is the gate's product. The count is
the same whichever kernel the backend runs (fused `dot_product_attention`
or two einsums).

The rules read the query's and value's shapes from the call (a key, when
given, has the value's positions; its feature size is read from the key
projection's kernel).
"""

import math

import keras

from tfcompress.analysis.layer_costs import UNKNOWN_MACS
from tfcompress.analysis.layer_costs import LayerCost
from tfcompress.graph import layer_tree

# Names Keras gives the projections of `MultiHeadAttention` and
# `GroupQueryAttention`, and the input each one reads.
_QUERY_SIDE = ("query", "gate", "attention_output")
_VALUE_SIDE = ("key", "value")


def multi_head_attention_macs(layer, input_shapes, output_shape):
    """MACs of one call of a `keras.layers.MultiHeadAttention`.

    Args:
        layer: A built `MultiHeadAttention`.
        input_shapes: Shapes of the call's tensors: query, value, then the
            key and masks if given.
        output_shape: Shape of the attention output.

    Returns:
        A `LayerCost`; unknown when the call or the layer's projections
        are not those of a `MultiHeadAttention`.

    Example:

    >>> mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> _ = mha(np.zeros((1, 3, 8)), np.zeros((1, 5, 8)))
    >>> multi_head_attention_macs(mha, [(1, 3, 8), (1, 5, 8)], (1, 3, 8))
    LayerCost(macs=1264, note='')
    """
    if len(input_shapes) < 2:
        return LayerCost(None, UNKNOWN_MACS)
    query_shape, value_shape = input_shapes[0], input_shapes[1]
    rank = len(query_shape) + 1  # Projected: (..., heads, key_dim).
    axes = layer.attention_axes
    if axes is None:
        axes = range(1, rank - 2)
    axes = [axis if axis >= 0 else rank - 1 + axis for axis in axes]
    key_positions = math.prod(value_shape[axis] for axis in axes)
    return _attention_cost(
        layer,
        query_shape,
        value_shape,
        heads=layer.num_heads,
        key_dim=layer.key_dim,
        value_dim=layer.value_dim,
        key_positions=key_positions,
    )


def grouped_query_attention_macs(layer, input_shapes, output_shape):
    # Keys and values have fewer heads, repeated to the query heads before
    # the scores: the scores and weighted sum run on every query head.
    if len(input_shapes) < 2:
        return LayerCost(None, UNKNOWN_MACS)
    query_shape, value_shape = input_shapes[0], input_shapes[1]
    return _attention_cost(
        layer,
        query_shape,
        value_shape,
        heads=layer.num_query_heads,
        key_dim=layer.head_dim,
        value_dim=layer.head_dim,
        key_positions=math.prod(value_shape[1:-1]),
    )


def _attention_cost(
    layer, query_shape, value_shape, heads, key_dim, value_dim, key_positions
):
    projections = {
        sublayer.name: math.prod(sublayer.kernel.shape)
        for sublayer in layer_tree.sublayers(layer)
        if isinstance(sublayer, keras.layers.EinsumDense)
    }
    if not {"query", "key", "value", "attention_output"} <= set(projections):
        return LayerCost(
            None, f"{UNKNOWN_MACS} (projections not found: {projections})"
        )
    query_positions = math.prod(query_shape[:-1])
    value_positions = math.prod(value_shape[:-1])
    projection_macs = sum(
        query_positions * size
        for name, size in projections.items()
        if name in _QUERY_SIDE
    ) + sum(
        value_positions * size
        for name, size in projections.items()
        if name in _VALUE_SIDE
    )
    scores = query_positions * heads * key_positions * key_dim
    weighted_sum = query_positions * heads * key_positions * value_dim
    return LayerCost(projection_macs + scores + weighted_sum)


def dot_product_attention_macs(layer, input_shapes, output_shape):
    """MACs of one call of `keras.layers.Attention` or `AdditiveAttention`.

    The inputs are `[query, value]` or `[query, value, key]` of shapes
    `(batch, Tq, dim)` and `(batch, Tv, dim)`; there are no projections.
    The scores count `Tq * Tv * dim` (a dot product, or the sum over `dim`
    of `tanh(q + k)` for additive or `score_mode="concat"` attention: one
    accumulate per term), the weighted sum `Tq * Tv * value_dim`.

    Args:
        layer: An `Attention` or `AdditiveAttention` layer.
        input_shapes: Shapes of the call's tensors: query, value, then the
            key and masks if given.
        output_shape: Shape of the attention output.

    Returns:
        A `LayerCost`.

    Example:

    >>> attention = keras.layers.Attention()
    >>> shapes = [(1, 3, 8), (1, 5, 8)]
    >>> dot_product_attention_macs(attention, shapes, (1, 3, 8))
    LayerCost(macs=240, note='')
    """
    if len(input_shapes) < 2:
        return LayerCost(None, UNKNOWN_MACS)
    query_shape, value_shape = input_shapes[0], input_shapes[1]
    key_positions = value_shape[-2]
    return LayerCost(
        math.prod(query_shape[:-1])
        * key_positions
        * (query_shape[-1] + value_shape[-1])
    )


def dot_product_attention_op_macs(layer, input_shapes, output_shape):
    # `keras.ops.dot_product_attention(query, key, value)`: shapes
    # (B, T, [heads,] dim) and (B, S, [kv_heads,] dim); every query head
    # scores every key position.
    if len(input_shapes) < 3:
        return LayerCost(None, UNKNOWN_MACS)
    query_shape, key_shape, value_shape = input_shapes[:3]
    return LayerCost(
        math.prod(query_shape[:-1])
        * key_shape[1]
        * (query_shape[-1] + value_shape[-1])
    )
