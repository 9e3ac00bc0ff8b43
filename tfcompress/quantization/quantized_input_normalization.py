"""`Normalization` and `Rescaling` computed as TFLite's int8 MUL and ADD.

`Normalization` computes `(x - mean) / sqrt(variance)` with constants, one
per channel; in an int8 file that is an element-wise multiply and add,
each with its constant rounded per tensor and its output on a scale of
its own (EfficientNet normalizes its input so). `QuantizedNormalization`
computes it as `x * (1 / std) + (-mean / std)`, rounding where the file
does. `Rescaling` with an offset (`x * scale + offset`, MobileNetV3's
input) is the same two ops: `QuantizedRescaling`.
"""

import keras

from tfcompress.quantization.affine_in_int8_ops import AffineInInt8Ops


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedNormalization(AffineInInt8Ops, keras.layers.Normalization):
    """`keras.layers.Normalization` rounding what TFLite rounds.

    Args:
        weight_bits: Bit width simulated for the two constants, 2 to 8.
            Defaults to `8`.
        activation_bits: Bit width simulated for the product, 2 to 8.
            Defaults to `8`.
        **kwargs: `keras.layers.Normalization` arguments (`invert=True` is
            not supported).

    Example:

    ```python
    layer = QuantizedNormalization(mean=[1.0, 2.0], variance=[4.0, 1.0])
    y = layer(np.ones((3, 2), "float32"))
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.invert:
            raise ValueError(
                "QuantizedNormalization does not support invert=True. "
                f"Received: invert={self.invert!r}"
            )

    def call(self, inputs, training=None):
        ops = keras.ops
        if self.input_mean is None:
            # The adapted state, read at each call: `quantize_model` copies
            # it in after the build.
            mean = ops.reshape(self.adapt_mean, self._broadcast_shape)
            variance = ops.reshape(self.adapt_variance, self._broadcast_shape)
        else:
            mean, variance = self.mean, self.variance
        inverse = 1.0 / ops.maximum(ops.sqrt(variance), keras.config.epsilon())
        return self._affine(inputs, inverse, -mean * inverse, training)


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedRescaling(AffineInInt8Ops, keras.layers.Rescaling):
    """`keras.layers.Rescaling` with an offset, rounding what TFLite rounds.

    `x * scale + offset` is an int8 MUL then ADD in the file; the product
    is rounded on a range learned in training, the constants per tensor.

    Args:
        weight_bits: Bit width simulated for the two constants, 2 to 8.
            Defaults to `8`.
        activation_bits: Bit width simulated for the product, 2 to 8.
            Defaults to `8`.
        **kwargs: `keras.layers.Rescaling` arguments.

    Example:

    ```python
    layer = QuantizedRescaling(scale=1 / 127.5, offset=-1.0)
    y = layer(np.full((1, 2), 255.0, "float32"))  # about 1.0
    ```
    """

    def call(self, inputs, training=None):
        return self._affine(
            inputs,
            keras.ops.convert_to_tensor(self.scale, "float32"),
            keras.ops.convert_to_tensor(self.offset, "float32"),
            training,
        )
