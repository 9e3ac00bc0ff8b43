"""Mixed precision: chosen layers left in float32 inside an int8 file.

`to_tflite(..., quantization="int8", keep_float=[...])` checks the layer
names with `check_keep_float`, then, once the converter has calibrated the
model, turns them into the output tensor names of their ops
(`keep_float_nodes`), which the quantizer leaves in float32 with quantize /
dequantize ops around them (see `tfcompress.quantization.calibration`).
"""

from tfcompress.litert.inspection import inspect_tflite_content
from tfcompress.quantization.layer_ops import model_layer_names
from tfcompress.quantization.layer_ops import op_layers


def check_keep_float(keep_float, model, quantization, input_type, output_type):
    """Checks `to_tflite`'s `keep_float` argument against the export.

    Args:
        keep_float: The argument: `None`, or a non-empty list or tuple of
            layer names.
        model: The model to export.
        quantization: The export's quantization mode.
        input_type: The file's input type (`"float32"`, ...).
        output_type: The file's output type.

    Returns:
        The layer names as a tuple without repeats, `()` for `None`.

    Raises:
        ValueError: If `keep_float` is not a list of names, the mode is not
            `"int8"`, the input or output type is not float32, or a name is
            not a layer of `model`; the message lists the layers.

    Example:

    ```python
    check_keep_float(["head"], model, "int8", "float32", "float32")
    # ('head',)
    ```
    """
    if keep_float is None:
        return ()
    if isinstance(keep_float, str) or not (
        isinstance(keep_float, (list, tuple))
        and keep_float
        and all(isinstance(name, str) for name in keep_float)
    ):
        raise ValueError(
            "Expected `keep_float` to be a non-empty list of layer names. "
            f"Received: keep_float={keep_float!r}"
        )
    if quantization != "int8":
        reason = (
            "The converter's int16x8 quantizer cannot leave chosen ops in "
            "float32 (and its MLIR quantizer, which can, writes int16 files "
            "that LiteRT rejects). "
            if quantization == "int16x8"
            else ""
        )
        raise ValueError(
            "`keep_float` leaves layers in float32 inside an integer model, "
            f"so it needs quantization='int8'. {reason}Received: "
            f"keep_float={keep_float!r} with quantization={quantization!r}"
        )
    if input_type != "float32" or output_type != "float32":
        raise ValueError(
            "With `keep_float`, the file's input and output stay float32. "
            f"Received: input_type={input_type!r}, "
            f"output_type={output_type!r}"
        )
    known = model_layer_names(model)
    unknown = [name for name in keep_float if name not in known]
    if unknown:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"`keep_float` names layers that are not in model {name!r}: "
            f"{', '.join(repr(n) for n in unknown)}. Layers: "
            f"{', '.join(known)}. Received: keep_float={keep_float!r}"
        )
    return tuple(dict.fromkeys(keep_float))


def keep_float_nodes(model, calibrated, keep_float):
    """Returns the output tensor names of the ops of the `keep_float` layers.

    Args:
        model: The model the file was converted from.
        calibrated: The converter's calibrated float file (bytes).
        keep_float: Layer names, as `check_keep_float` returns them.

    Returns:
        A list of tensor names: the quantizer's `denylisted_nodes`.

    Raises:
        ValueError: If a layer has no op of its own in the file (the
            converter folded it into another op, or removed it); the
            message lists the layers that have ops.

    Example:

    ```python
    nodes = keep_float_nodes(model, calibrated, ("head",))
    # ['sequential_1/head_1/MatMul;sequential_1/head_1/BiasAdd']
    ```
    """
    inspection = inspect_tflite_content(calibrated, "<calibrated model>")
    owners = op_layers(model, inspection)
    nodes = []
    for name in keep_float:
        ops = [
            op
            for op, layers in zip(inspection.ops, owners)
            if name in layers and op.subgraph == 0
        ]
        if not ops:
            with_ops = sorted({layer for layers in owners for layer in layers})
            raise ValueError(
                f"Layer {name!r} in `keep_float` has no op of its own in the "
                "converted file: the converter folded it into a neighbouring "
                "op (a BatchNormalization into the convolution before it) or "
                "removed it (Dropout, Flatten of a flat tensor). Name the "
                "layer it was folded into instead. Layers with ops: "
                f"{', '.join(with_ops)}. Received: keep_float={keep_float!r}"
            )
        nodes.extend(op.outputs[0].name for op in ops if op.outputs)
    return nodes
