"""Export of a quantization-aware model: its fake-quant ops are the ranges."""

import tensorflow as tf

from tfcompress.export.export_arguments import model_name
from tfcompress.quantization import simulated_bits
from tfcompress.quantization import with_bit_widths


def quantization_aware_conversion(
    model,
    quantization,
    data,
    calibration,
    keep_float,
    input_type,
    output_type,
    select_tf_ops,
):
    """Returns the model to convert and the converter settings for a
    `quantize_model` model.

    The converter's QAT path: optimizations on, no sample data; it reads
    each fake-quant op's range as the tensor's int8 scale. A model
    simulating fewer than 8 bits goes through its 8-bit twin (TFLite's
    kernels are int8).

    Args:
        model: A quantization-aware model (`is_quantization_aware`).
        quantization: The requested mode; must be `"int8"`.
        data: `to_tflite`'s `data`; must be `None`.
        calibration: The checked calibration; must be `"minmax"` or `None`.
        keep_float: The checked `keep_float`; must be empty.
        input_type: The file's input type, `"float32"` or `"int8"`.
        output_type: The file's output type, `"float32"` or `"int8"`.
        select_tf_ops: Whether to allow TensorFlow (Flex) ops.

    Returns:
        `(model, settings)`: the model to convert (itself, or its 8-bit
        twin) and the converter attributes.

    Raises:
        ValueError: If an argument does not apply to a quantization-aware
            model (another mode, calibration data, a calibration method,
            `keep_float`).

    Example:

    ```python
    qat_model, _ = quantize_model(model)
    model8, settings = quantization_aware_conversion(
        qat_model, "int8", None, "minmax", (), "float32", "float32", False
    )
    ```
    """
    name = model_name(model)
    if quantization != "int8":
        raise ValueError(
            f"The model {name!r} is quantization-aware (made by "
            "tfcompress.quantization.quantize_model); it exports with "
            "quantization='int8', its ranges taken from its fake-quant ops. "
            "For a float file, export the float model it was made from. "
            f"Received: quantization={quantization!r}"
        )
    if data is not None:
        raise ValueError(
            f"The model {name!r} is quantization-aware: its int8 ranges were "
            "learned in training and are read from its fake-quant ops, so "
            "`data` would be ignored. Drop it. Received: data of type "
            f"{type(data).__name__}"
        )
    if calibration not in (None, "minmax") or keep_float:
        raise ValueError(
            f"The model {name!r} is quantization-aware: `calibration` and "
            "`keep_float` apply to post-training quantization of a float "
            f"model. Received: calibration={calibration!r}, "
            f"keep_float={list(keep_float)!r}"
        )
    weight_bits, activation_bits = simulated_bits(model)
    if weight_bits | activation_bits != {8}:
        model = with_bit_widths(model, weight_bits=8, activation_bits=8)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    settings = {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "target_spec": {"supported_ops": ops},
    }
    if input_type != "float32":
        settings["inference_input_type"] = tf.as_dtype(input_type)
    if output_type != "float32":
        settings["inference_output_type"] = tf.as_dtype(output_type)
    return model, settings
