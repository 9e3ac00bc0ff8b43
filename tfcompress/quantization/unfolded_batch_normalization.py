"""Batch normalization that TFLite cannot fold, computed as its int8 ops.

After a conv or dense layer the converter folds batch norm into the
kernel. Anywhere else (DenseNet's pre-activation blocks, after a pooling
or a concatenation) it stays two element-wise int8 ops: MUL by
`gamma / sqrt(variance + epsilon)` and ADD of `beta - mean * that`, each
constant stored with one scale per tensor, each output rounded on a scale
of its own (a ReLU after the ADD fuses into it).
`UnfoldedBatchNormalization` computes those ops at inference (and once
frozen), so that the quantization-aware model and its file agree.
"""

import keras

from tfcompress.quantization.affine_in_int8_ops import AffineInInt8Ops
from tfcompress.quantization.freezable_batch_normalization import (
    FreezableBatchNormalization,
)


@keras.saving.register_keras_serializable(package="tfcompress")
class UnfoldedBatchNormalization(AffineInInt8Ops, FreezableBatchNormalization):
    """Batch norm computed as TFLite's int8 MUL and ADD.

    While it trains on batch statistics it is a plain batch norm; at
    inference, and once frozen, it multiplies by the folded scale and adds
    the folded shift, both rounded per tensor on their own ranges, and
    rounds the product on a range learned in training. `quantize_model`
    rounds its output after it.

    Args:
        weight_bits: Bit width simulated for the two constants, 2 to 8.
            Defaults to `8`.
        activation_bits: Bit width simulated for the product, 2 to 8.
            Defaults to `8`.
        **kwargs: `keras.layers.BatchNormalization` arguments.

    Example:

    ```python
    layer = UnfoldedBatchNormalization()
    y = layer(np.random.rand(2, 4, 4, 3).astype("float32"))
    ```
    """

    def call(self, inputs, training=None, mask=None):
        # Computed in training too, unfrozen, so that the product's range
        # is learned.
        in_ops = self._in_ops(inputs, training)
        if not training or not self.trainable:
            return in_ops
        return keras.ops.cond(
            self.frozen > 0.5,
            lambda: in_ops,
            lambda: keras.layers.BatchNormalization.call(
                self, inputs, training=True, mask=mask
            ),
        )

    def _in_ops(self, inputs, training):
        ops = keras.ops
        inverse = ops.rsqrt(self.moving_variance + self.epsilon)
        if self.scale:
            inverse = inverse * self.gamma
        shift = -self.moving_mean * inverse
        if self.center:
            shift = shift + self.beta
        shape = [1] * len(inputs.shape)
        shape[self.axis] = inputs.shape[self.axis]
        return self._affine(
            inputs, ops.reshape(inverse, shape), ops.reshape(shift, shape), training
        )
