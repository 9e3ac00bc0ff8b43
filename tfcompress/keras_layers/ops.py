"""`keras.ops` calls recorded in functional graphs (`x + y`, `ops.relu`).

Keras does not export the operation classes these calls record, so they
are found by name (`tfcompress.graph.keras_internals.op_class`); a name
this Keras lacks is skipped.
"""

from tfcompress.analysis import attention_costs
from tfcompress.analysis import layer_costs
from tfcompress.graph.keras_internals import op_class
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import SIGMOID_RANGE
from tfcompress.quantization.quantize_rules import SOFTMAX_RANGE
from tfcompress.quantization.quantize_rules import TANH_RANGE
from tfcompress.quantization.quantize_rules import QuantizeRule


def _classes(names, modules=("numpy", "nn", "core")):
    """The op classes called `names`, looked up in Keras's ops modules."""
    found = []
    for name in names:
        for module in modules:
            cls = op_class(module, name)
            if cls is not None and cls not in found:
                found.append(cls)
    return tuple(found)


# Element-wise ops: 0 MACs, and their inputs share channels.
_ELEMENTWISE = _classes(
    (
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "TrueDivide",
        "Maximum",
        "Minimum",
        "Negative",
        "Abs",
        "Square",
        "Sqrt",
        "Exp",
        "Relu",
        "Relu6",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Gelu",
        "Silu",
        "HardSilu",
        "HardSigmoid",
        "Sigmoid",
        "Tanh",
        "Softplus",
        "Softsign",
    )
)
register_layer(
    _ELEMENTWISE, macs=layer_costs.no_macs, channels=channel_rules.elementwise_op
)
# Other element-wise ops and data movement: 0 MACs, channels not traced.
register_layer(
    _classes(
        (
            "Absolute",
            "Clip",
            "Reshape",
            "Transpose",
            "Concatenate",
            "ExpandDims",
            "Squeeze",
            "GetItem",
            "Split",
            "Stack",
            "Tile",
            "Repeat",
            "Pad",
            "Moveaxis",
            "Swapaxes",
            "Flip",
            "Ravel",
            "Celu",
            "Softmax",
            "LogSoftmax",
            "HardTanh",
            "DepthToSpace",
            "SpaceToDepth",
            "Cast",
            "Slice",
            "Unstack",
            "StopGradient",
            "ConvertToTensor",
        )
    ),
    macs=layer_costs.no_macs,
)
register_layer(
    _classes(
        (
            "Erf",
            "Rsqrt",
            "Power",
            "Reciprocal",
            "Log",
            "Where",
            "Max",
            "Min",
            "Amax",
            "Amin",
            "Argmax",
            "Argmin",
            "Equal",
            "NotEqual",
            "Greater",
            "GreaterEqual",
            "Less",
            "LessEqual",
            "LogicalAnd",
            "LogicalOr",
            "LogicalNot",
            "OnesLike",
            "ZerosLike",
            "BroadcastTo",
            "Take",
            "TakeAlongAxis",
            "Roll",
            "OneHot",
        )
    ),
    macs=layer_costs.no_macs,
)
register_layer(_classes(("Matmul", "Dot")), macs=layer_costs.matmul_macs)
register_layer(_classes(("Einsum",)), macs=layer_costs.einsum_macs)
register_layer(_classes(("Mean", "Sum")), macs=layer_costs.reduction_macs)
register_layer(
    _classes(("LayerNorm",)), macs=layer_costs.layer_normalization_macs
)
register_layer(
    _classes(("RMSNorm", "Normalize")), macs=layer_costs.rms_normalization_macs
)
register_layer(
    _classes(("DotProductAttention",)),
    macs=attention_costs.dot_product_attention_op_macs,
)

# Quantization: ops TFLite runs on int8 data with the input's scale, the
# ReLUs it fuses, and the add that fuses a ReLU after it.
register_layer(
    _classes(
        ("Reshape", "Transpose", "Split", "Squeeze", "ExpandDims", "GetItem")
    ),
    quantize=QuantizeRule.keeps_input_scale(),
)
register_layer(_classes(("Relu", "Relu6")), quantize=QuantizeRule.relu())
register_layer(_classes(("Add",), ("numpy",)), quantize=QuantizeRule.add())

# Transformer ops: the attention einsums / matmuls are int8 BATCH_MATMULs
# with an output scale of their own; softmax's int8 output range is fixed;
# repeats (grouped-query attention) move int8 data.
register_layer(_classes(("Einsum", "Matmul")), quantize=QuantizeRule.own_scale())
register_layer(
    _classes(("Softmax",)),
    quantize=QuantizeRule.fixed_range(*SOFTMAX_RANGE),
)
register_layer(
    _classes(("Repeat", "Tile")), quantize=QuantizeRule.keeps_input_scale()
)
# TFLite's int8 LOGISTIC and TANH kernels have fixed output ranges (the
# gates of a written-out LSTM, see `LSTMInOps`; swish's sigmoid).
register_layer(
    _classes(("Sigmoid",)), quantize=QuantizeRule.fixed_range(*SIGMOID_RANGE)
)
register_layer(
    _classes(("Tanh",)), quantize=QuantizeRule.fixed_range(*TANH_RANGE)
)
register_layer(
    _classes(("Concatenate",)), quantize=QuantizeRule.concatenation()
)
