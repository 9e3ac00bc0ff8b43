"""`x * scale + shift` as TFLite's int8 MUL and ADD compute it.

Batch norm that cannot fold into a kernel, `Normalization` and `Rescaling`
with an offset all become these two element-wise ops in an int8 file.
`AffineInInt8Ops` is what their quantization-aware twins share: the bit
widths, the quantizer of the product and the rounded computation.
"""

import keras

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_constant


def affine_in_int8_ops(x, scale, shift, product_quantizer, bits, training):
    """`x * scale + shift` as TFLite's int8 MUL and ADD compute it.

    Both constants are rounded per tensor on their own ranges (as the
    converter stores an element-wise op's constant operand), the product
    by `product_quantizer`; the sum is left for the caller to round.
    """
    scale = fake_quant_constant(scale, bits)
    shift = fake_quant_constant(shift, bits)
    product = product_quantizer(keras.ops.multiply(x, scale), training=training)
    return keras.ops.add(product, shift)


class AffineInInt8Ops:
    """Mixin for a Keras layer whose int8 ops are a MUL and an ADD.

    Put it before the Keras layer class it twins
    (`class QuantizedRescaling(AffineInInt8Ops, keras.layers.Rescaling)`);
    it takes `weight_bits` and `activation_bits` (2 to 8, default 8), adds
    the product's `ActivationQuantizer` and their config, and
    `self._affine(inputs, scale, shift, training)` computes the rounded ops.
    """

    def __init__(self, *args, weight_bits=8, activation_bits=8, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_bits = check_bits("weight_bits", weight_bits)
        self.activation_bits = check_bits("activation_bits", activation_bits)
        self.product_quantizer = ActivationQuantizer(
            num_bits=self.activation_bits, name="product_quant"
        )

    def build(self, input_shape):
        super().build(input_shape)
        # Built here: a symbolic call of the layer only computes shapes.
        self.product_quantizer.build(input_shape)

    def _affine(self, inputs, scale, shift, training):
        x = keras.ops.cast(inputs, "float32")
        outputs = affine_in_int8_ops(
            x,
            scale,
            shift,
            self.product_quantizer,
            self.weight_bits,
            training,
        )
        return keras.ops.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "weight_bits": self.weight_bits,
            "activation_bits": self.activation_bits,
        }
