"""Attention layers computed in the ops TFLite quantizes, for inlining.

`keras.layers.MultiHeadAttention` and `GroupedQueryAttention` compute
their scores with one fused `ops.dot_product_attention` call when they can
(no dropout, no scores returned, 4-D projections): one node of the graph,
whose intermediate tensors (the scores, the softmax) no rounding can
reach, so the converter leaves them float. The classes here are the same
layers (same config, same weights) that always take Keras's explicit path:
the scaling of the queries, the `Q K^T` einsum, the softmax (a `Softmax`
layer, with the mask), the dropout and the `scores V` einsum, each its own
op. `quantize_model` inlines them in place of the originals (the quantize
rule `QuantizeRule.inline(twin=...)`), so that each of those ops is a node
of the flat graph with its own rounding, and the projections are
`EinsumDense` layers it replaces by `QuantizedEinsumDense`. TFLite then
runs the attention as FULLY_CONNECTED, BATCH_MATMUL, SOFTMAX, all int8.
"""

import keras


@keras.saving.register_keras_serializable(package="tfcompress")
class MultiHeadAttentionInOps(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` that never fuses its attention.

    It computes what `MultiHeadAttention` computes, always through the
    explicit einsum / softmax / einsum path (never flash attention), so
    that each op shows when the layer's `call()` is inlined.

    Masks (causal, padding, `attention_mask`) reach the softmax as a
    select: Keras puts -1e9 in masked scores, the int8 file the smallest
    value of the scores' int8 range, so a masked position keeps a small
    probability in the file (about `exp(min - max)` of the scores' range)
    that it does not have in Keras.

    Args:
        **kwargs: `keras.layers.MultiHeadAttention` arguments.

    Example:

    ```python
    layer = MultiHeadAttentionInOps(num_heads=2, key_dim=4)
    x = np.ones((1, 3, 8), "float32")
    y = layer(x, x)  # (1, 3, 8)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._flash_attention = False

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        # Asking for the scores is what selects Keras's explicit path.
        outputs, scores = super()._compute_attention(
            query,
            key,
            value,
            attention_mask,
            training,
            True,
            use_causal_mask=use_causal_mask,
        )
        return outputs, scores if return_attention_scores else None


@keras.saving.register_keras_serializable(package="tfcompress")
class GroupedQueryAttentionInOps(keras.layers.GroupQueryAttention):
    """`keras.layers.GroupQueryAttention` that never fuses its attention.

    See `MultiHeadAttentionInOps`.

    Args:
        **kwargs: `keras.layers.GroupQueryAttention` arguments.

    Example:

    ```python
    layer = GroupedQueryAttentionInOps(
        head_dim=4, num_query_heads=4, num_key_value_heads=2
    )
    x = np.ones((1, 3, 8), "float32")
    y = layer(x, x)  # (1, 3, 8)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._flash_attention = False

    def _compute_attention(self, *args, **kwargs):
        # Keras reads whether the scores are wanted from this attribute;
        # wanting them is what selects its explicit path.
        wanted = self._return_attention_scores
        self._return_attention_scores = True
        try:
            outputs, scores = super()._compute_attention(*args, **kwargs)
        finally:
            self._return_attention_scores = wanted
        return outputs, scores if wanted else None
