"""After an export, read the file back: does it compute what was asked?"""

import dataclasses

from tfcompress.export.converter import INTEGER_MODES
from tfcompress.litert.inspection import inspect_tflite
from tfcompress.litert.precision import tflite_precision
from tfcompress.quantization.layer_ops import op_layers

# Ops listed by name in a message; more are counted.
_LISTED = 5


def read_precision(written_path, path, model, quantization, keep_float):
    """Returns the `Precision` of a freshly written file.

    Args:
        written_path: Where the file is now (a temporary sibling of
            `path` until it is accepted).
        path: The path the file is written for, which the report names.
        model: The model that was converted, to name the ops' layers.
        quantization: The requested mode.
        keep_float: The layers the user asked to keep in float32.

    Returns:
        A `Precision` report.

    Example:

    ```python
    precision = read_precision("m.tflite", "m.tflite", model, "int8", ())
    ```
    """
    inspection = inspect_tflite(written_path)
    try:
        layers = op_layers(model, inspection)
    except RuntimeError:
        layers = None  # Tensor names the layer map cannot read.
    precision = tflite_precision(
        inspection,
        quantization=quantization,
        layers=layers,
        keep_float=keep_float,
    )
    return dataclasses.replace(precision, path=path)


def float_ops_message(precision):
    """Says which weighted ops of an integer export compute in float.

    Args:
        precision: The file's `Precision`, with float ops nobody asked for
            (`unrequested_float_ops`).

    Returns:
        A sentence naming the mode, the counts and the ops.

    Example:

    ```python
    float_ops_message(export.precision)
    # "quantization='int8' was requested, but 1 of 2 weighted ops ..."
    ```
    """
    rows = precision.unrequested_float_ops
    names = ", ".join(
        f"{row.op} {row.name!r} ({row.compute}, {row.weight_dtype} weights)"
        for row in rows[:_LISTED]
    )
    if len(rows) > _LISTED:
        names += f" and {len(rows) - _LISTED} more"
    return (
        f"quantization={precision.quantization!r} was requested, but "
        f"{len(rows)} of {precision.num_weighted_ops} weighted ops of "
        f"{precision.path!r} compute in float: {names}. The converter "
        "leaves in float what it cannot quantize (an op without an "
        "integer kernel, a tensor without a quantization range), without "
        "saying so; such ops run at float speed and size"
    )


def refuse_float_ops(precision, strict):
    """Raises for an integer export with float ops, under `strict=True`.

    Args:
        precision: The file's `Precision`.
        strict: `to_tflite`'s `strict`.

    Raises:
        ValueError: If `strict` is `True`, the mode is `"int8"` or
            `"int16x8"`, and a weighted op nobody asked to keep float
            computes in float.

    Example:

    ```python
    refuse_float_ops(precision, strict=True)
    ```
    """
    if (
        strict
        and precision.quantization in INTEGER_MODES
        and precision.unrequested_float_ops
    ):
        raise ValueError(
            f"{float_ops_message(precision)}. With strict=True no file is "
            "written: replace the layers named above with ones the "
            "converter quantizes, or pass strict=False to write the file "
            "anyway (with a warning). Received: strict=True"
        )
