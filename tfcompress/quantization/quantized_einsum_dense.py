"""`keras.layers.EinsumDense` with a kernel rounded per output channel.

EinsumDense is the projection of attention layers (`"abc,cde->abde"`: the
queries of each head) and of many transformer blocks. TFLite runs it as a
FULLY_CONNECTED op when the equation is a matrix product: each axis of
the input is either contracted with the kernel or carried to the output,
each axis of the kernel is either contracted or an output axis. Its int8
weights then have one scale per output channel, the output axes of the
kernel flattened (`d * e` channels for `"abc,cde->abde"`).
"""

import keras

from tfcompress.quantization.fake_quant import round_per_channel
from tfcompress.quantization.kernel_quantization import KernelQuantization
from tfcompress.quantization.quantized_layers import leading_shape


def einsum_axes(equation, input_rank):
    """The roles of the axes of an EinsumDense equation.

    Args:
        equation: An EinsumDense equation, e.g. `"abc,cde->abde"` (an
            ellipsis is expanded to fresh letters).
        input_rank: The rank of the input.

    Returns:
        `(inputs, kernel, outputs)`: the axis letters of each, the ellipsis
        expanded.
    """
    inputs, rest = equation.replace(" ", "").split(",")
    kernel, outputs = rest.split("->")
    if "..." in inputs:
        used = set(inputs + kernel + outputs)
        fresh = [c for c in "zyxwvutsrqponmlkjihgfedcba" if c not in used]
        count = input_rank - (len(inputs) - 3)
        letters = "".join(fresh[:count][::-1])
        inputs = inputs.replace("...", letters)
        outputs = outputs.replace("...", letters)
    return inputs, kernel, outputs


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedEinsumDense(KernelQuantization, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` computing with an int8-rounded kernel.

    The kernel is rounded symmetrically, narrow range, one scale per
    output channel: per element of the kernel's output axes (those it
    shares with the output), as TFLite stores a FULLY_CONNECTED's weights.
    When the equation is a matrix product, the layer computes it as one:
    the input's contracted axes flattened against the kernel reshaped to
    `(inputs, outputs)`, the bias and activation added before the reshape
    to the output's axes, so that the converter makes one
    FULLY_CONNECTED with the bias fused (and an int8 output, its scale
    the one of the rounding after the layer). Other equations (a kernel
    axis shared with the input and the output, as in per-head kernels)
    compute the einsum with the rounded kernel as it is.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.EinsumDense` arguments.

    Example:

    ```python
    layer = QuantizedEinsumDense("abc,cde->abde", output_shape=(None, 4, 8),
                                 bias_axes="de")
    y = layer(np.ones((2, 5, 16), "float32"))  # (2, 5, 4, 8)
    ```
    """

    _round = staticmethod(round_per_channel)

    def call(self, inputs, training=None):
        axes = einsum_axes(self.equation, len(inputs.shape))
        plan = _matmul_plan(*axes, self.bias_axes)
        if plan is None:
            return self._einsum(inputs, axes, training)
        return self._matmul(inputs, axes, plan, training)

    def _einsum(self, inputs, axes, training):
        in_axes, kernel_axes, out_axes = axes
        channel_axes = [a for a in kernel_axes if a in out_axes]
        kernel = _rounded_per_channel(
            self.kernel, kernel_axes, channel_axes, self._round_kernel(training)
        )
        outputs = keras.ops.einsum(self.equation, inputs, kernel)
        if self.bias is not None:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _round_kernel(self, training):
        return lambda matrix: self._rounded(matrix, training)

    def _matmul(self, inputs, axes, plan, training):
        in_axes, kernel_axes, out_axes = axes
        free, contracted, channels = plan
        ops = keras.ops
        # The input as (free..., contracted...), flattened to 2-D rows.
        order = [in_axes.index(a) for a in free + contracted]
        x = inputs
        if order != sorted(order):
            x = ops.transpose(x, order)
        sizes = dict(zip(in_axes, inputs.shape))
        contracted_size = 1
        for axis in contracted:
            contracted_size *= sizes[axis]
        rows = ops.reshape(x, (-1, contracted_size))
        # The kernel as a (contracted, channels) matrix: its columns are
        # TFLite's output channels.
        kernel_order = [kernel_axes.index(a) for a in contracted + channels]
        kernel = self.kernel
        if kernel_order != sorted(kernel_order):
            kernel = ops.transpose(kernel, kernel_order)
        channel_shape = [self.kernel.shape[kernel_axes.index(a)] for a in channels]
        matrix = ops.reshape(kernel, (contracted_size, -1))
        outputs = ops.matmul(rows, self._rounded(matrix, training))
        if self.bias is not None:
            bias = ops.broadcast_to(self.bias, channel_shape)
            outputs = ops.add(outputs, ops.reshape(bias, (-1,)))
        if self.activation is not None:
            outputs = self.activation(outputs)
        # Back to (free..., channels...), then to the output's order.
        free_shape = leading_shape(x, len(free))
        outputs = ops.reshape(outputs, free_shape + channel_shape)
        produced = free + channels
        order = [produced.index(a) for a in out_axes]
        if order != sorted(order):
            outputs = ops.transpose(outputs, order)
        return outputs


def _matmul_plan(in_axes, kernel_axes, out_axes, bias_axes):
    """`(free, contracted, channels)` axes if the einsum is a matmul.

    `None` when it is not: a kernel axis carried from the input to the
    output, an axis summed over in one operand only, or a bias on axes
    other than the kernel's output axes, trailing.
    """
    free = [a for a in in_axes if a in out_axes and a not in kernel_axes]
    contracted = [a for a in in_axes if a in kernel_axes and a not in out_axes]
    channels = [a for a in out_axes if a in kernel_axes and a not in in_axes]
    if sorted(free + contracted) != sorted(in_axes):
        return None
    if sorted(contracted + channels) != sorted(kernel_axes):
        return None
    if sorted(free + channels) != sorted(out_axes):
        return None
    if bias_axes and not set(bias_axes) <= set(channels):
        return None
    # Keras aligns the bias with the trailing output axes: it broadcasts
    # over the channels only if they are the trailing ones, in order.
    if bias_axes and out_axes[len(out_axes) - len(channels):] != "".join(
        channels
    ):
        return None
    return free, contracted, channels


def _rounded_per_channel(kernel, kernel_axes, channel_axes, round_matrix):
    """`kernel` rounded with one scale per element of `channel_axes`."""
    ops = keras.ops
    if not channel_axes:
        channel_axes = [kernel_axes[-1]]
    other = [a for a in kernel_axes if a not in channel_axes]
    order = [kernel_axes.index(a) for a in other + channel_axes]
    moved = ops.transpose(kernel, order)
    matrix = ops.reshape(moved, (-1, _size(kernel, kernel_axes, channel_axes)))
    rounded = ops.reshape(round_matrix(matrix), moved.shape)
    inverse = [order.index(i) for i in range(len(order))]
    return ops.transpose(rounded, inverse)


def _size(kernel, kernel_axes, axes):
    size = 1
    for axis in axes:
        size *= kernel.shape[kernel_axes.index(axis)]
    return size
