"""Conv2D, DepthwiseConv2D and Dense with fake-quantized kernels.

Each is its Keras parent plus one argument, `weight_bits`, and one state
variable, `quantize_enabled`: the forward pass uses the kernel rounded to
per-channel symmetric int8 (narrow range), TFLite's scheme for weights.
`quantize_model` builds them from the original layers' configs and
weights; they are ordinary Keras layers that save and load with
`safe_mode=True`.

The `call` methods restate the parents' few lines (matmul or convolution,
bias, activation) with the quantized kernel: the parents read the kernel
through a `kernel` property that saving also uses, so it cannot be
overridden to return the rounded kernel.
"""

import keras

from tfcompress.quantization.fake_quant import round_per_channel
from tfcompress.quantization.kernel_quantization import KernelQuantization
from tfcompress.quantization.rounded_kernels import RoundedKernels


def has_quantized_kernel(layer):
    """Whether `layer` rounds its kernel (a twin, or `RoundedKernels`)."""
    return isinstance(layer, (KernelQuantization, RoundedKernels))


def quantized_kernel_layers(layers):
    """The layers of `layers` that round their kernels."""
    return [layer for layer in layers if has_quantized_kernel(layer)]


# The mixin's old private name, for the twins of this module.
_KernelQuantization = KernelQuantization


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedConv2D(_KernelQuantization, keras.layers.Conv2D):
    """`keras.layers.Conv2D` computing with an int8-rounded kernel.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.Conv2D` arguments.
    """

    def call(self, inputs, training=None):
        outputs = self.convolution_op(
            inputs, self._rounded(self.kernel, training)
        )
        if self.use_bias:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedDepthwiseConv2D(
    _KernelQuantization, keras.layers.DepthwiseConv2D
):
    """`keras.layers.DepthwiseConv2D` computing with an int8-rounded kernel.

    One scale per output channel (`in_channels * depth_multiplier`), as
    TFLite's DEPTHWISE_CONV_2D stores it.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.DepthwiseConv2D` arguments.
    """

    def call(self, inputs, training=None):
        kh, kw, channels, multiplier = self.kernel.shape
        # Output channels are (channels, multiplier) flattened: the last
        # axis of TFLite's (1, kh, kw, channels * multiplier) kernel.
        flat = keras.ops.reshape(self.kernel, (kh, kw, 1, -1))
        kernel = keras.ops.reshape(
            self._rounded(flat, training), (kh, kw, channels, multiplier)
        )
        outputs = keras.ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedDense(_KernelQuantization, keras.layers.Dense):
    """`keras.layers.Dense` computing with an int8-rounded kernel.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.Dense` arguments.
    """

    _round = staticmethod(round_per_channel)

    def call(self, inputs, training=None):
        kernel = self._rounded(self.kernel, training)
        if len(inputs.shape) <= 2:
            return self._dense(inputs, kernel)
        # On (batch, ..., features) inputs the matmul runs on the rows
        # flattened to 2-D, with the bias and activation before the reshape
        # back: the converter then makes one FULLY_CONNECTED with the bias
        # and ReLU fused into it, whose int8 output scale comes through the
        # reshape from the rounding after the layer. Keras's own 3-D matmul
        # adds the bias after its reshape back, which leaves the matmul's
        # output without a range, so the converter keeps it float.
        rows = keras.ops.reshape(inputs, (-1, inputs.shape[-1]))
        outputs = self._dense(rows, kernel)
        return keras.ops.reshape(
            outputs, leading_shape(inputs) + [self.units]
        )

    def _dense(self, inputs, kernel):
        outputs = keras.ops.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


def leading_shape(inputs, count=None):
    """The sizes of the first `count` axes of `inputs`, for a reshape.

    `count` defaults to all but the last axis. Static sizes where known; a
    first size that is not becomes -1, any other unknown size is read at
    run time.
    """
    count = len(inputs.shape) - 1 if count is None else count
    sizes = list(inputs.shape[:count])
    unknown = [size is None for size in sizes]
    if not any(unknown[1:]):
        first = [-1 if size is None else size for size in sizes[:1]]
        return first + sizes[1:]
    shape = keras.ops.shape(inputs)
    return [
        shape[axis] if size is None else size
        for axis, size in enumerate(sizes)
    ]


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedConv1D(_KernelQuantization, keras.layers.Conv1D):
    """`keras.layers.Conv1D` computing with an int8-rounded kernel.

    TFLite has no 1-D convolution: the converter runs a CONV_2D on the
    input with a height axis of 1. This layer computes that CONV_2D itself,
    bias and activation included, and drops the height axis at the end:
    with the bias added in 3-D (as Keras's Conv1D does) the converter
    could not fuse it, nor a following batch norm, into the CONV_2D.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.Conv1D` arguments.
    """

    # Plain ops: the kernel is reshaped to 4-D before the CONV_2D, which
    # the converter's per-channel fake-quant handling does not follow.
    _round = staticmethod(round_per_channel)

    def call(self, inputs, training=None):
        padding = self.padding
        if padding == "causal":
            inputs = keras.ops.pad(inputs, self._compute_causal_padding())
            padding = "valid"
        kernel = keras.ops.expand_dims(self._rounded(self.kernel, training), 0)
        outputs = keras.ops.conv(
            keras.ops.expand_dims(inputs, 1),
            kernel,
            strides=(1, self.strides[0]),
            padding=padding,
            dilation_rate=(1, self.dilation_rate[0]),
        )
        return keras.ops.squeeze(_bias_and_activation(self, outputs), 1)


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedDepthwiseConv1D(
    _KernelQuantization, keras.layers.DepthwiseConv1D
):
    """`keras.layers.DepthwiseConv1D` computing with an int8-rounded kernel.

    Computed as TFLite's DEPTHWISE_CONV_2D over a height axis of 1 (see
    `QuantizedConv1D`), one scale per output channel.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.DepthwiseConv1D` arguments.
    """

    _round = staticmethod(round_per_channel)

    def call(self, inputs, training=None):
        width, channels, multiplier = self.kernel.shape
        flat = keras.ops.reshape(self.kernel, (1, width, 1, -1))
        kernel = keras.ops.reshape(
            self._rounded(flat, training), (1, width, channels, multiplier)
        )
        outputs = keras.ops.depthwise_conv(
            keras.ops.expand_dims(inputs, 1),
            kernel,
            strides=(1, self.strides[0]),
            padding=self.padding,
            dilation_rate=(1, self.dilation_rate[0]),
        )
        return keras.ops.squeeze(_bias_and_activation(self, outputs), 1)


def _bias_and_activation(layer, outputs):
    if layer.use_bias:
        outputs = keras.ops.add(outputs, layer.bias)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedConv2DTranspose(_KernelQuantization, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` computing with an int8-rounded kernel.

    The kernel is `(height, width, out, in)`: one scale per output channel
    (axis -2), as TFLite's TRANSPOSE_CONV stores it.

    Args:
        weight_bits: Bit width simulated for the kernel, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.Conv2DTranspose` arguments.
    """

    # Plain ops: the converter transposes this kernel to (out, h, w, in).
    @staticmethod
    def _round(kernel, num_bits):
        moved = keras.ops.moveaxis(kernel, -2, -1)
        return keras.ops.moveaxis(round_per_channel(moved, num_bits), -1, -2)

    def call(self, inputs, training=None):
        outputs = keras.ops.conv_transpose(
            inputs,
            self._rounded(self.kernel, training),
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return _bias_and_activation(self, outputs)
