"""Keras's merging layers: element-wise merges and concatenation."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

L = keras.layers

# Element-wise merges make their inputs share channels.
register_layer(
    (L.Add, L.Subtract, L.Multiply, L.Maximum, L.Minimum, L.Average),
    macs=layer_costs.no_macs,
    channels=channel_rules.merge,
)
register_layer(L.Add, quantize=QuantizeRule.add())
register_layer(
    L.Concatenate,
    macs=layer_costs.no_macs,
    channels=channel_rules.concatenate,
)
# A batched matrix product of its two inputs.
register_layer(L.Dot, macs=layer_costs.dot_macs)
# TFLite requires one scale for a concatenation's inputs and output.
register_layer(L.Concatenate, quantize=QuantizeRule.concatenation())
