"""Keras's regularization layers: identities at inference."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

L = keras.layers

register_layer(
    (
        L.Dropout,  # Includes SpatialDropout1D/2D/3D.
        L.GaussianNoise,
        L.GaussianDropout,
        L.AlphaDropout,
        L.ActivityRegularization,
    ),
    macs=layer_costs.no_macs,
    channels=channel_rules.elementwise,
)
register_layer(
    (L.Dropout, L.GaussianNoise), quantize=QuantizeRule.keeps_input_scale()
)
