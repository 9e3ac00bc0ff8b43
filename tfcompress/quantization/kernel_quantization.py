"""The kernel rounding that the twins of Keras layers share.

`quantize_model` replaces a layer with a kernel (Conv2D, Dense,
EinsumDense, Embedding) by a twin: the Keras class plus this mixin, which
adds the `weight_bits` argument, the `quantize_enabled` switch and the
rounding of the kernel in the forward pass.
"""

import keras

from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_per_channel
from tfcompress.quantization.fake_quant import fake_quant_symmetric


class KernelQuantization:
    """Mixin: `weight_bits` and `per_channel_weights`, the kernel rounding.

    Listed before the Keras layer in the bases, so its `__init__`, `build`
    and `get_config` wrap the layer's own. It adds one state variable,
    `quantize_enabled` (on at first), after the layer's own weights, and
    `_rounded(kernel, training)`, the kernel rounded by `_round` (per
    output channel on the last axis unless a twin says otherwise), or by
    `_round_per_tensor` with `per_channel_weights=False`, while the switch
    is on.
    """

    def __init__(self, *args, weight_bits=8, per_channel_weights=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_bits = check_bits("weight_bits", weight_bits)
        if not isinstance(per_channel_weights, bool):
            raise ValueError(
                "`per_channel_weights` must be True or False. Received: "
                f"per_channel_weights={per_channel_weights!r}"
            )
        self.per_channel_weights = per_channel_weights

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
    # Per tensor: a fake-quant op with a scalar range, which the converter
    # reads whatever it does to the kernel after (transposes, reshapes).
    _round_per_tensor = staticmethod(fake_quant_symmetric)

    def _rounded(self, kernel, training):
        round_kernel = (
            self._round if self.per_channel_weights else self._round_per_tensor
        )
        if not training:
            return round_kernel(kernel, self.weight_bits)
        # A branch, as in `ActivationQuantizer`: no rounding before the
        # delay ends, no select over the kernel and its gradient after.
        return keras.ops.cond(
            self.quantize_enabled > 0.5,
            lambda: round_kernel(kernel, self.weight_bits),
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
        config = {**super().get_config(), "weight_bits": self.weight_bits}
        if not self.per_channel_weights:
            config["per_channel_weights"] = False
        return config
