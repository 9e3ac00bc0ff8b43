"""The per-tensor activation quantizer that `quantize_model` inserts."""

import keras

from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_per_tensor


@keras.saving.register_keras_serializable(package="tfcompress")
class ActivationQuantizer(keras.layers.Layer):
    """Simulates int8 rounding of a tensor, with a range learned in training.

    `quantize_model` places one wherever TFLite gives a tensor its own int8
    scale: the model inputs, the output of a fused conv + batch norm +
    activation, adds, concatenations, average pooling. In training it tracks
    the tensor's range with an exponential moving average of the batch
    minimum and maximum (the first batch sets it), and rounds the tensor to
    the `2^num_bits` levels of that range. In inference it uses the stored
    range, so what the model computes is what the int8 `.tflite` file
    computes: the converter reads the range from the fake-quant op.

    `tfcompress.callbacks.QuantizationAwareTraining` switches rounding on
    after a delay and freezes the range; both are variables, so the switch
    needs no recompilation and is saved with the model.

    An op whose int8 output range TFLite fixes (softmax: scale 1/256, zero
    point -128, so `[0, 255/256]`) gets a quantizer with `fixed_range`:
    it rounds on that range and learns nothing.

    Called with `observe=False` (by `quantize_model`, on the output of an
    average pooling of its output), it rounds on its stored range without
    updating it: TFLite gives that tensor the same scale.

    Args:
        num_bits: Bit width simulated, 2 to 8. Defaults to `8`.
        ema_decay: Decay of the moving average of the range, in [0, 1).
            Defaults to `0.999`.
        fixed_range: Optional `(min, max)`: the range to round on, fixed
            (not learned). Defaults to `None`: learned.
        **kwargs: Base layer arguments (`name`, ...).

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Example:

    ```python
    quantizer = ActivationQuantizer()
    y = quantizer(x, training=True)  # learns the range of x, rounds x
    ```
    """

    def __init__(self, num_bits=8, ema_decay=0.999, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if fixed_range is not None:
            if (
                not isinstance(fixed_range, (tuple, list))
                or len(fixed_range) != 2
                or not float(fixed_range[0]) < float(fixed_range[1])
            ):
                raise ValueError(
                    "`fixed_range` must be (min, max) with min < max, or "
                    f"None. Received: fixed_range={fixed_range!r}"
                )
            fixed_range = (float(fixed_range[0]), float(fixed_range[1]))
        self.fixed_range = fixed_range
        self.num_bits = check_bits("num_bits", num_bits)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(
                "`ema_decay` must be in [0, 1). "
                f"Received: ema_decay={ema_decay!r}"
            )
        self.ema_decay = float(ema_decay)

    def build(self, input_shape):
        def state(name, value, aggregation):
            return self.add_weight(
                name=name,
                shape=(),
                initializer=keras.initializers.Constant(value),
                trainable=False,
                aggregation=aggregation,
            )

        # Before any batch is seen the range is tfmot's default, [-6, 6].
        low, high = self.fixed_range or (-6.0, 6.0)
        self.range_min = state("range_min", low, "mean")
        self.range_max = state("range_max", high, "mean")
        self.range_initialized = state(
            "range_initialized", 0.0, "only_first_replica"
        )
        self.quantize_enabled = state(
            "quantize_enabled", 1.0, "only_first_replica"
        )
        self.range_frozen = state("range_frozen", 0.0, "only_first_replica")

    def call(self, inputs, training=None, observe=True):
        if self.fixed_range is not None:
            return self._round_on_fixed_range(inputs, training)
        if not observe:
            # A second call on a tensor TFLite keeps on this range (an
            # average pooling's output): round on it, learn nothing.
            return self._round_on_stored_range(inputs, training)
        if not training:
            return fake_quant_per_tensor(
                inputs, self.range_min, self.range_max, self.num_bits
            )
        ops = keras.ops
        x = ops.cast(inputs, "float32")
        batch_min = ops.stop_gradient(ops.min(x))
        batch_max = ops.stop_gradient(ops.max(x))
        decay = self.ema_decay
        initialized = self.range_initialized > 0.5
        frozen = self.range_frozen > 0.5
        new_min = ops.where(
            initialized,
            decay * self.range_min + (1.0 - decay) * batch_min,
            batch_min,
        )
        new_max = ops.where(
            initialized,
            decay * self.range_max + (1.0 - decay) * batch_max,
            batch_max,
        )
        new_min = ops.where(frozen, self.range_min, new_min)
        new_max = ops.where(frozen, self.range_max, new_max)
        self.range_min.assign(new_min)
        self.range_max.assign(new_max)
        self.range_initialized.assign(1.0)
        # A branch, not `where`: before the delay ends the tensor is not
        # rounded at all, and afterwards no select runs over the whole
        # activation (and its gradient) at every step.
        outputs = ops.cond(
            self.quantize_enabled > 0.5,
            lambda: fake_quant_per_tensor(x, new_min, new_max, self.num_bits),
            lambda: x,
        )
        return ops.cast(outputs, inputs.dtype)

    def _round_on_stored_range(self, inputs, training):
        x = keras.ops.cast(inputs, "float32")

        def rounded():
            return fake_quant_per_tensor(
                x, self.range_min, self.range_max, self.num_bits
            )

        if not training:
            outputs = rounded()
        else:
            outputs = keras.ops.cond(
                self.quantize_enabled > 0.5, rounded, lambda: x
            )
        return keras.ops.cast(outputs, inputs.dtype)

    def _round_on_fixed_range(self, inputs, training):
        low, high = self.fixed_range
        x = keras.ops.cast(inputs, "float32")

        def rounded():
            return fake_quant_per_tensor(x, low, high, self.num_bits)

        if not training:
            outputs = rounded()
        else:
            outputs = keras.ops.cond(
                self.quantize_enabled > 0.5, rounded, lambda: x
            )
        return keras.ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bits": self.num_bits,
            "ema_decay": self.ema_decay,
            "fixed_range": self.fixed_range,
        }
