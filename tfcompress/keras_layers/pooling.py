"""Keras's pooling layers."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

L = keras.layers

# Pooling moves along the spatial axes, never across channels.
register_layer(
    (
        L.MaxPooling1D,
        L.MaxPooling2D,
        L.MaxPooling3D,
        L.GlobalMaxPooling1D,
        L.GlobalMaxPooling2D,
        L.GlobalMaxPooling3D,
    ),
    macs=layer_costs.max_pooling_macs,
    channels=channel_rules.spatial,
)
register_layer(
    (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D),
    macs=layer_costs.average_pooling_macs,
    channels=channel_rules.spatial,
)
register_layer(
    (
        L.GlobalAveragePooling1D,
        L.GlobalAveragePooling2D,
        L.GlobalAveragePooling3D,
    ),
    macs=layer_costs.global_average_pooling_macs,
    channels=channel_rules.spatial,
)
# TFLite's int8 max pooling keeps its input's scale; so does average
# pooling (the converter requires it), rounding each mean to the input's
# levels. Global average pooling is a MEAN, which requantizes (no rule: its
# output gets a scale of its own).
register_layer(
    (
        L.MaxPooling1D,
        L.MaxPooling2D,
        L.MaxPooling3D,
        L.GlobalMaxPooling1D,
        L.GlobalMaxPooling2D,
    ),
    quantize=QuantizeRule.keeps_input_scale(),
)
register_layer(
    (
        L.AdaptiveAveragePooling1D,
        L.AdaptiveAveragePooling2D,
        L.AdaptiveAveragePooling3D,
    ),
    macs=layer_costs.adaptive_average_pooling_macs,
)
register_layer(
    (
        L.AdaptiveMaxPooling1D,
        L.AdaptiveMaxPooling2D,
        L.AdaptiveMaxPooling3D,
    ),
    macs=layer_costs.max_pooling_macs,
)
register_layer(
    (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D),
    quantize=QuantizeRule.input_scale(),
)
