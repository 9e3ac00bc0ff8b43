"""Keras's preprocessing layers that can sit inside a model."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer

# Element-wise, and foldable into the input quantization: 0 MACs.
register_layer(
    (keras.layers.Rescaling, keras.layers.Normalization),
    macs=layer_costs.no_macs,
)
