"""Keras's activation layers: element-wise, 0 MACs by convention."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.activation_in_ops import IN_OPS
from tfcompress.quantization.activation_in_ops import ActivationInOps
from tfcompress.quantization.quantize_rules import SIGMOID_RANGE
from tfcompress.quantization.quantize_rules import SOFTMAX_RANGE
from tfcompress.quantization.quantize_rules import TANH_RANGE
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


def _activation_rule(layer):
    name = getattr(layer.activation, "__name__", "")
    if name in ("relu", "relu6"):
        return QuantizeRule.relu()
    if name == "linear":
        return QuantizeRule.keeps_input_scale()
    if name == "softmax":
        return QuantizeRule.fixed_range(*SOFTMAX_RANGE)
    # TFLite's int8 LOGISTIC and TANH have fixed output ranges.
    if name == "sigmoid":
        return QuantizeRule.fixed_range(*SIGMOID_RANGE)
    if name == "tanh":
        return QuantizeRule.fixed_range(*TANH_RANGE)
    if name in IN_OPS:  # Several int8 ops: swish is LOGISTIC, MUL.
        return QuantizeRule.inline(twin=ActivationInOps)
    return QuantizeRule.own_scale()  # GELU, hard swish (HARD_SWISH), ...


def _softmax_rule(layer):
    axis = layer.axis
    if isinstance(axis, (list, tuple)) and len(axis) > 1:
        return QuantizeRule.keep_float(
            "no int8 kernel in TFLite for a softmax over several axes (it "
            "is computed as exp(x - logsumexp(x)))"
        )
    return QuantizeRule.fixed_range(*SOFTMAX_RANGE)


register_layer(L.ReLU, quantize=QuantizeRule.relu(applies=_is_plain_relu))
register_layer(L.Activation, quantize=QuantizeRule.per_layer(_activation_rule))
register_layer(L.Softmax, quantize=QuantizeRule.per_layer(_softmax_rule))
