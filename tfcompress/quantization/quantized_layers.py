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

from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_per_channel
from tfcompress.quantization.fake_quant import round_per_channel
from tfcompress.quantization.rounded_kernels import RoundedKernels


def has_quantized_kernel(layer):
    """Whether `layer` rounds its kernel (a layer below, `RoundedKernels`)."""
    return isinstance(layer, (_KernelQuantization, RoundedKernels))


def quantized_kernel_layers(layers):
    """The layers of `layers` that round their kernels."""
    return [layer for layer in layers if has_quantized_kernel(layer)]


class _KernelQuantization:
    """Mixin: a `weight_bits` argument and the kernel rounding.

    Listed before the Keras layer in the bases, so its `__init__`, `build`
    and `get_config` wrap the layer's own.
    """

    def __init__(self, *args, weight_bits=8, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_bits = check_bits("weight_bits", weight_bits)

    def build(self, input_shape):
        super().build(input_shape)
        self.quantize_enabled = self.add_weight(
            name="quantize_enabled",
            shape=(),
            initializer="ones",
            trainable=False,
            aggregation="only_first_replica",
        )

    # The rounding function; see `round_per_channel` for Dense's.
    _round = staticmethod(fake_quant_per_channel)

    def _rounded(self, kernel, training):
        if not training:
            return self._round(kernel, self.weight_bits)
        # A branch, as in `ActivationQuantizer`: no rounding before the
        # delay ends, no select over the kernel and its gradient after.
        return keras.ops.cond(
            self.quantize_enabled > 0.5,
            lambda: self._round(kernel, self.weight_bits),
            lambda: kernel,
        )

    # Conv2D and Dense save only their kernel and bias, under "0", "1"; the
    # switch goes after them, so their load (and its count check) still fit.
    # DepthwiseConv2D saves every variable, the switch last, by itself.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        own = self._trainable_variables + self._non_trainable_variables
        if self.built and len(store.keys()) < len(own):
            store[str(len(store.keys()))] = self.quantize_enabled

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if self.built:
            self.quantize_enabled.assign(store[str(len(store.keys()) - 1)])

    def get_config(self):
        return {**super().get_config(), "weight_bits": self.weight_bits}


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
        outputs = keras.ops.matmul(
            inputs, self._rounded(self.kernel, training)
        )
        if self.bias is not None:
            outputs = keras.ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
