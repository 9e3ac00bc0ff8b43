"""Batch normalization whose statistics can be frozen during training."""

import keras


@keras.saving.register_keras_serializable(package="tfcompress")
class FreezableBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a switch to freeze statistics.

    Quantization-aware training freezes batch norm late in training
    (Krishnamoorthi 2018, sec. 3.2; Jacob et al. 2018): from then on the
    layer normalizes with its moving mean and variance, exactly as the
    converter folds it into the preceding conv, and stops updating them,
    while gamma and beta keep training. `frozen` is a variable, so
    `tfcompress.callbacks.QuantizationAwareTraining` flips it without
    recompiling `fit`, and it is saved with the model.

    Args:
        **kwargs: `keras.layers.BatchNormalization` arguments.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.frozen = self.add_weight(
            name="frozen",
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )

    def call(self, inputs, training=None, mask=None):
        if not training or not self.trainable:
            return super().call(inputs, training=False, mask=mask)
        return keras.ops.cond(
            self.frozen > 0.5,
            lambda: super(FreezableBatchNormalization, self).call(
                inputs, training=False, mask=mask
            ),
            lambda: super(FreezableBatchNormalization, self).call(
                inputs, training=True, mask=mask
            ),
        )
