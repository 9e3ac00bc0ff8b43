"""`keras.layers.LayerNormalization` computed as TFLite computes it in int8.

TFLite has no layer-normalization op: the converter lowers it to MEAN,
SUB, MUL, MEAN, ADD, RSQRT, MUL, MUL, ADD, each an int8 op whose output
has a scale of its own, and the scale and offset (gamma, beta) are int8
constants with one scale per tensor. `QuantizedLayerNormalization`
computes those ops, rounding each intermediate tensor where the file
does, so that the quantization-aware model and its file agree.
"""

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_constant
from tfcompress.quantization.kernel_quantization import KernelQuantization

# The intermediate tensors, each rounded on a range of its own.
_INTERMEDIATES = (
    "mean",
    "centered",
    "squared",
    "variance",
    "variance_epsilon",
    "inverse_std",
    "normalized",
    "scaled",
)


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedLayerNormalization(
    KernelQuantization, keras.layers.LayerNormalization
):
    """`keras.layers.LayerNormalization` rounding what TFLite rounds.

    Computes, over the normalized axes, `mean = MEAN(x)`, `d = x - mean`,
    `variance = MEAN(d * d)`, `inverse = RSQRT(variance + epsilon)`,
    `y = d * inverse` (`x * inverse` with `rms_scaling`), `y * gamma`,
    `+ beta`: one op each, as the converter emits them, each output rounded
    to int8 on a range learned in training (an `ActivationQuantizer`),
    but the last, which `quantize_model` rounds after the layer. `gamma`
    and `beta` are rounded per tensor on their own ranges, as the
    converter stores the constants of a MUL and an ADD.

    Args:
        weight_bits: Bit width simulated for gamma and beta, 2 to 8.
            Defaults to `8`.
        activation_bits: Bit width simulated for the intermediate tensors,
            2 to 8. Defaults to `8`.
        **kwargs: `keras.layers.LayerNormalization` arguments.

    Example:

    ```python
    layer = QuantizedLayerNormalization(epsilon=1e-6)
    y = layer(np.random.rand(2, 3, 8).astype("float32"))  # (2, 3, 8)
    ```
    """

    _round = staticmethod(fake_quant_constant)
    _round_per_tensor = _round  # Already one scale for the whole tensor.

    def __init__(self, *args, activation_bits=8, **kwargs):
        super().__init__(*args, **kwargs)
        self.activation_bits = check_bits("activation_bits", activation_bits)
        self.quantizers = {
            name: ActivationQuantizer(
                num_bits=self.activation_bits, name=f"{name}_quant"
            )
            for name in _INTERMEDIATES
        }

    def build(self, input_shape):
        super().build(input_shape)
        # Built here, not by their first call: a symbolic call of this
        # layer only computes its output shape.
        for quantizer in self.quantizers.values():
            quantizer.build(input_shape)

    def call(self, inputs, training=None):
        ops = keras.ops
        x = ops.cast(inputs, "float32")
        axes = sorted(
            a % len(x.shape)
            for a in (self.axis if isinstance(self.axis, (list, tuple))
                      else [self.axis])
        )

        def rounded(name, tensor):
            return self.quantizers[name](tensor, training=training)

        mean = rounded("mean", ops.mean(x, axis=axes, keepdims=True))
        centered = rounded("centered", ops.subtract(x, mean))
        squared = rounded("squared", ops.multiply(centered, centered))
        variance = rounded(
            "variance", ops.mean(squared, axis=axes, keepdims=True)
        )
        variance = rounded(
            "variance_epsilon", ops.add(variance, self.epsilon)
        )
        # A variance that rounds to 0 would make the rsqrt infinite (and the
        # learned range NaN); TFLite saturates there. Floored at epsilon,
        # as the float layer's `variance + epsilon` is.
        variance = ops.maximum(variance, self.epsilon)
        inverse = rounded("inverse_std", ops.rsqrt(variance))
        outputs = ops.multiply(x if self.rms_scaling else centered, inverse)
        if self.scale:
            outputs = rounded("normalized", outputs)
            gamma = self._constant(self.gamma, axes, len(x.shape), training)
            outputs = ops.multiply(outputs, gamma)
        if self.center and not self.rms_scaling:
            if self.scale:
                outputs = rounded("scaled", outputs)
            beta = self._constant(self.beta, axes, len(x.shape), training)
            outputs = ops.add(outputs, beta)
        return ops.cast(outputs, self.compute_dtype)

    def _constant(self, weight, axes, rank, training):
        """`weight` rounded per tensor, shaped to broadcast over inputs."""
        weight = self._rounded(weight, training)
        if axes != [rank - 1]:
            shape = [1] * rank
            for axis, size in zip(axes, weight.shape):
                shape[axis] = size
            weight = keras.ops.reshape(weight, shape)
        return weight

    def get_config(self):
        return {**super().get_config(), "activation_bits": self.activation_bits}
