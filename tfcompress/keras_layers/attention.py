"""Keras's attention layers: projections, scores and weighted sums."""

import keras

from tfcompress.analysis import attention_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.quantized_attention import (
    GroupedQueryAttentionInOps,
)
from tfcompress.quantization.quantized_attention import (
    MultiHeadAttentionInOps,
)

L = keras.layers

# Leaves: the scores and the weighted sum happen in their own `call()`,
# outside any sublayer, so counting their projections alone would miss
# them.
register_layer(
    L.MultiHeadAttention, macs=attention_costs.multi_head_attention_macs
)
register_layer(
    L.GroupQueryAttention, macs=attention_costs.grouped_query_attention_macs
)
# `AdditiveAttention` is a subclass of `Attention`.
register_layer(L.Attention, macs=attention_costs.dot_product_attention_macs)

# Quantization: inlined, through twins that never fuse the attention into
# one op, so that the projections (EinsumDense), the two einsums (int8
# BATCH_MATMUL) and the softmax (int8 SOFTMAX) are nodes of their own.
register_layer(
    L.MultiHeadAttention,
    quantize=QuantizeRule.inline(twin=MultiHeadAttentionInOps),
)
register_layer(
    L.GroupQueryAttention,
    quantize=QuantizeRule.inline(twin=GroupedQueryAttentionInOps),
)

# Structured pruning: whole heads and the output channels (see
# `channel_rules.multi_head_attention`).
register_layer(
    L.MultiHeadAttention, channels=channel_rules.multi_head_attention
)
