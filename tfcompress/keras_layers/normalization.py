"""Keras's normalization layers."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

register_layer(
    keras.layers.BatchNormalization,
    # Folded into the preceding convolution or dense layer at export.
    macs=layer_costs.batch_normalization_macs,
    channels=channel_rules.batch_normalization,
    quantize=QuantizeRule.batch_norm(),
)
