"""Keras's reshaping layers: data movement, no MACs."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

L = keras.layers

register_layer(
    (L.Reshape, L.Permute, L.RepeatVector), macs=layer_costs.no_macs
)
# A reshape that keeps the last axis (squeeze-and-excitation's (C,) ->
# (1, 1, C), a ViT's patches to tokens) keeps channels where they were.
register_layer(L.Reshape, channels=channel_rules.reshape)
register_layer(
    L.Flatten,
    macs=layer_costs.no_macs,
    channels=channel_rules.flatten,
)
register_layer(
    (
        L.ZeroPadding1D,
        L.ZeroPadding2D,
        L.ZeroPadding3D,
        L.Cropping1D,
        L.Cropping2D,
        L.Cropping3D,
    ),
    macs=layer_costs.no_macs,
    channels=channel_rules.spatial,
)
register_layer(
    (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D),
    macs=layer_costs.resizing_macs,
    channels=channel_rules.spatial,
)
# Their int8 output keeps the input's scale in TFLite.
register_layer(
    (
        L.Reshape,
        L.Flatten,
        L.Permute,
        L.ZeroPadding1D,
        L.ZeroPadding2D,
        L.Cropping1D,
        L.Cropping2D,
        L.UpSampling2D,
    ),
    quantize=QuantizeRule.keeps_input_scale(),
)
