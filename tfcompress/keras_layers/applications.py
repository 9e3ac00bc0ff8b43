"""Layers of `keras.applications` models that Keras does not export.

They are found by name (`tfcompress.graph.keras_internals
.application_layer_class`); a name this Keras lacks is skipped.
"""

from tfcompress.analysis import layer_costs
from tfcompress.graph.keras_internals import application_layer_class
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

# ConvNeXt's `x * gamma` (a per-channel scale) and Inception-ResNet's
# `x + scale * residual`: element-wise, 0 MACs.
_ELEMENTWISE = [
    application_layer_class("convnext", "LayerScale"),
    application_layer_class("inception_resnet_v2", "CustomScaleLayer"),
]
register_layer(
    tuple(cls for cls in _ELEMENTWISE if cls is not None),
    macs=layer_costs.no_macs,
)

# Quantization: ConvNeXt's LayerScale follows a Dense; the converter folds
# the per-channel scale into its kernel, as it folds a batch norm (and
# per-channel rounding gives the same integers with or without it).
_LAYER_SCALE = application_layer_class("convnext", "LayerScale")
if _LAYER_SCALE is not None:
    register_layer(_LAYER_SCALE, quantize=QuantizeRule.folds_into_kernel())
    # A per-channel scale: channels flow through, `gamma` is sliced.
    register_layer(
        _LAYER_SCALE,
        channels=channel_rules.per_channel_scale("gamma", "projection_dim"),
    )
