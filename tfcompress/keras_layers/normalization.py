"""Keras's normalization layers."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.quantized_normalization import (
    QuantizedLayerNormalization,
)

register_layer(
    keras.layers.BatchNormalization,
    # Folded into the preceding convolution or dense layer at export.
    macs=layer_costs.batch_normalization_macs,
    channels=channel_rules.batch_normalization,
    quantize=QuantizeRule.batch_norm(),
)
# Statistics computed from the input at run time: these cannot fold into
# a neighbouring layer (see `layer_costs` for the per-element counts).
register_layer(
    (keras.layers.LayerNormalization, keras.layers.GroupNormalization),
    macs=layer_costs.layer_normalization_macs,
)
register_layer(
    (keras.layers.RMSNormalization, keras.layers.UnitNormalization),
    macs=layer_costs.rms_normalization_macs,
)
# Prunable through, approximately: see `channel_rules.layer_normalization`.
register_layer(
    keras.layers.LayerNormalization,
    channels=channel_rules.layer_normalization,
)
# Renormalizes its layer's kernel in training only; at inference it is its
# layer.
register_layer(
    keras.layers.SpectralNormalization, macs=layer_costs.wrapped_layer_macs
)

# Quantization: TFLite lowers layer normalization to MEAN, SUB, MUL, MEAN,
# ADD, RSQRT, MUL, MUL, ADD, all int8; the twin rounds each of them.
register_layer(
    keras.layers.LayerNormalization,
    quantize=QuantizeRule.lowered(QuantizedLayerNormalization),
)
