"""Keras's activation layers: element-wise, 0 MACs by convention."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule

L = keras.layers

register_layer(
    (L.Activation, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Softmax),
    macs=layer_costs.no_macs,
)
register_layer(L.Activation, channels=channel_rules.activation)
register_layer(
    (L.ReLU, L.LeakyReLU, L.ELU), channels=channel_rules.elementwise
)


def _is_plain_relu(layer):
    # TFLite fuses RELU and RELU6 into the op before them, nothing else.
    return (
        layer.negative_slope == 0
        and layer.threshold == 0
        and layer.max_value in (None, 6)
    )


def _is_relu_activation(layer):
    return getattr(layer.activation, "__name__", "") in ("relu", "relu6")


register_layer(L.ReLU, quantize=QuantizeRule.relu(applies=_is_plain_relu))
register_layer(
    L.Activation, quantize=QuantizeRule.relu(applies=_is_relu_activation)
)
