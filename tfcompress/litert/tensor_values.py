"""Values in and out of a LiteRT tensor: float arrays <-> quantized ones."""

import numpy as np

# Tensor types whose values are quantized (scale, zero point) integers.
QUANTIZED_DTYPES = (np.int8, np.uint8, np.int16)


def tensor_scale(detail):
    """Returns a tensor's `(scale, zero_point)`; scale 0.0: not quantized.

    Args:
        detail: One of the interpreter's tensor details (a dict).

    Returns:
        `(scale, zero_point)`, a float and an int.

    Example:

    ```python
    detail = interpreter.get_input_details()[0]
    scale, zero_point = tensor_scale(detail)
    ```
    """
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zero_points = params.get("zero_points")
    if scales is not None and len(scales) == 1:
        return float(scales[0]), int(zero_points[0])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


def to_input_type(x, detail):
    """Casts `x` to an input tensor's dtype, quantizing for an integer one.

    Float values are quantized with the tensor's own scale and zero point
    and clipped to the type's range (not wrapped around).

    Args:
        x: An array.
        detail: The input tensor's details (a dict from the interpreter).

    Returns:
        An array of the tensor's dtype.

    Example:

    ```python
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], to_input_type(x, detail))
    ```
    """
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = tensor_scale(detail)
    if dtype.type in QUANTIZED_DTYPES and scale != 0.0:
        info = np.iinfo(dtype)
        q = np.round(x.astype(np.float32) / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def to_float(y, detail):
    """Dequantizes a quantized output tensor; casts any other to float32.

    Args:
        y: The tensor's values, as the interpreter returns them.
        detail: The output tensor's details (a dict from the interpreter).

    Returns:
        A float32 array.

    Example:

    ```python
    detail = interpreter.get_output_details()[0]
    y = to_float(interpreter.get_tensor(detail["index"]), detail)
    ```
    """
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = tensor_scale(detail)
    if dtype.type in QUANTIZED_DTYPES and scale != 0.0:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y.astype(np.float32)
