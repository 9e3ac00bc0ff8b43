"""Fake quantization as the TFLite converter reads it.

Both functions lower to `tf.quantization.fake_quant_with_min_max_vars*`
(through `keras.quantizers.fake_quant_with_min_max_vars`), the ops the
converter turns into int8 tensors with the same scales: the ranges learned
in training are the ranges in the `.tflite` file.
"""

import keras

MIN_BITS = 2
MAX_BITS = 8


def check_bits(name, value):
    """Returns `value` if it is an integer bit width in [2, 8], else raises."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_BITS <= value <= MAX_BITS
    ):
        raise ValueError(
            f"`{name}` must be an integer from {MIN_BITS} to {MAX_BITS} "
            "(bits simulated in training; the exported file is int8). "
            f"Received: {name}={value!r}"
        )
    return value


def fake_quant_per_channel(kernel, num_bits=8):
    """Symmetric, narrow-range, per-output-channel fake quantization.

    TFLite's int8 scheme for weights: zero point 0, integer range
    `[-(2^(b-1) - 1), 2^(b-1) - 1]`, one scale per output channel (the last
    axis), set by the channel's largest magnitude. The range is the kernel's
    own ("last value"), so it needs no state and, because it scales with the
    channel, folding a batch norm's per-channel factor into the kernel
    afterwards (as the converter does) gives exactly the same integers.

    Args:
        kernel: Float tensor, output channels on the last axis.
        num_bits: Bit width, 2 to 8. Defaults to `8`.

    Returns:
        The kernel, rounded to its quantization grid, same shape.
    """
    reduce_axes = tuple(range(len(kernel.shape) - 1))
    bound = keras.ops.max(keras.ops.abs(kernel), axis=reduce_axes)
    # The range follows the kernel but is not trained through: gradients
    # reach the kernel straight through the rounding, as in Jacob et al.
    bound = keras.ops.stop_gradient(keras.ops.maximum(bound, 1e-8))
    return keras.quantizers.fake_quant_with_min_max_vars(
        kernel,
        -bound,
        bound,
        num_bits=num_bits,
        narrow_range=True,
        axis=-1,
    )


def round_per_channel(kernel, num_bits=8):
    """`fake_quant_per_channel`'s arithmetic in plain ops, no fake-quant op.

    For kernels the converter transposes before use (a Dense kernel becomes
    FULLY_CONNECTED's `(out, in)` weights): its MLIR quantizer rejects a
    transpose of a per-channel fake-quant tensor ("mismatched quantized
    axes"). Without the op it quantizes the constant kernel itself, per
    channel, symmetric, narrow range: the same integers.
    """
    reduce_axes = tuple(range(len(kernel.shape) - 1))
    levels = float(2 ** (num_bits - 1) - 1)
    bound = keras.ops.max(keras.ops.abs(kernel), axis=reduce_axes)
    scale = keras.ops.stop_gradient(keras.ops.maximum(bound, 1e-8) / levels)
    rounded = keras.ops.round(kernel / scale) * scale
    # Straight-through estimator: rounding in the forward pass, identity
    # gradient (the range is the kernel's own, so nothing is clipped).
    return kernel + keras.ops.stop_gradient(rounded - kernel)


def fake_quant_symmetric(kernel, num_bits=8):
    """Symmetric, narrow-range fake quantization with one scale per tensor.

    The per-tensor alternative to `fake_quant_per_channel` (TFLite's int8
    kernels take either): one grid for the whole kernel, so a kernel that
    holds a few shared values (weight clustering) holds as few integers in
    the file. A fake-quant op with a scalar range, which the converter
    reads for conv, depthwise and fully connected kernels alike.

    Args:
        kernel: Float tensor.
        num_bits: Bit width, 2 to 8. Defaults to `8`.

    Returns:
        The kernel, rounded to its quantization grid, same shape.
    """
    bound = keras.ops.max(keras.ops.abs(kernel))
    bound = keras.ops.stop_gradient(keras.ops.maximum(bound, 1e-8))
    return keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=num_bits, narrow_range=True
    )


def fake_quant_per_tensor(x, range_min, range_max, num_bits=8):
    """Asymmetric per-tensor fake quantization on `[range_min, range_max]`.

    The range is widened to include 0 (the converter nudges it so that 0 is
    exactly representable, as TFLite needs for zero padding and ReLU).
    """
    range_min = keras.ops.minimum(range_min, 0.0)
    range_max = keras.ops.maximum(range_max, range_min + 1e-6)
    return keras.quantizers.fake_quant_with_min_max_vars(
        x, range_min, range_max, num_bits=num_bits, narrow_range=False
    )


def fake_quant_constant(weight, num_bits=8):
    """Per-tensor fake quantization of a constant on its own range.

    TFLite's scheme for a constant operand of an element-wise op (the
    table of a GATHER, the scale of a MUL, the shift of an ADD): one
    asymmetric scale for the whole tensor, its range the tensor's own
    minimum and maximum (widened to include 0). The range follows the
    weight ("last value") and is not trained through; the op is a
    fake-quant op, so the converter stores exactly these integers.

    Args:
        weight: Float tensor.
        num_bits: Bit width, 2 to 8. Defaults to `8`.

    Returns:
        The weight, rounded to its quantization grid, same shape.
    """
    low = keras.ops.stop_gradient(keras.ops.min(weight))
    high = keras.ops.stop_gradient(keras.ops.max(weight))
    return fake_quant_per_tensor(weight, low, high, num_bits)
