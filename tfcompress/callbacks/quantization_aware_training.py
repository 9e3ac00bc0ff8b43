"""The quantization-aware training schedule, as a `model.fit` callback."""

import keras

from tfcompress.argument_validation import integer_at_least
from tfcompress.graph import layer_tree
from tfcompress.pruning.zero_masks import hold_zeros
from tfcompress.quantization import ActivationQuantizer
from tfcompress.quantization import FreezableBatchNormalization
from tfcompress.quantization.quantized_layers import quantized_kernel_layers


class QuantizationAwareTraining(keras.callbacks.Callback):
    """Schedules quantization-aware training of a `quantize_model` model.

    Three switches, each at an optimizer step (`model.optimizer.iterations`,
    so a resumed `fit` continues the schedule where it stopped):

    - `quantize_delay`: train in float for this many steps first (ranges
      are still tracked), then round weights and activations. A float
      warm-up lets a model trained from scratch settle before rounding.
    - `freeze_bn_after`: from this step on, batch norm uses its moving
      statistics, as the folded conv in the `.tflite` file does, and stops
      updating them (Krishnamoorthi 2018 freezes them late in training).
    - `freeze_ranges_after`: from this step on, activation ranges stop
      moving, so the last steps fine-tune the weights to fixed scales.

    The switches are variables of the quantized layers: flipping them needs
    no recompilation and they are saved with the model. The states are
    logged to the epoch logs (`qat_quantizing`, `qat_bn_frozen`,
    `qat_ranges_frozen`, as 0 or 1), so they reach `History` and
    TensorBoard.

    Args:
        quantize_delay: Steps of float training before rounding starts, an
            integer >= 0. Defaults to `0`.
        freeze_bn_after: Step at which batch norm statistics freeze, or
            `None` to never freeze them. Defaults to `None`.
        freeze_ranges_after: Step at which activation ranges freeze, or
            `None` to never freeze them. Defaults to `None`.
        preserve_sparsity: If `True`, the zeros of the model's kernels stay
            zero through training (pruning-preserving QAT): kernels without
            a mask yet (a model reloaded from a `.keras` file) get one made
            of their zeros (`tfcompress.pruning.hold_zeros`), and the train
            function is traced again to apply it. `quantize_model` attaches
            the masks itself; this covers a model saved and loaded since.
            Defaults to `True`.
        verbose: If 1, print a line when a switch flips. Defaults to `0`.

    Example:

    ```python
    qat_model, _ = tfcompress.quantization.quantize_model(model)
    qat_model.compile(optimizer="adam", loss=loss)
    qat_model.fit(
        x, y, epochs=3,
        callbacks=[
            tfcompress.callbacks.QuantizationAwareTraining(
                quantize_delay=100, freeze_bn_after=500
            )
        ],
    )
    ```
    """

    def __init__(
        self,
        quantize_delay=0,
        freeze_bn_after=None,
        freeze_ranges_after=None,
        preserve_sparsity=True,
        verbose=0,
    ):
        super().__init__()
        self.quantize_delay = integer_at_least(
            "quantize_delay", quantize_delay, minimum=0
        )
        self.freeze_bn_after = _optional_step(
            "freeze_bn_after", freeze_bn_after
        )
        self.freeze_ranges_after = _optional_step(
            "freeze_ranges_after", freeze_ranges_after
        )
        if not isinstance(preserve_sparsity, bool):
            raise ValueError(
                "`preserve_sparsity` must be True or False. "
                f"Received: preserve_sparsity={preserve_sparsity!r}"
            )
        self.preserve_sparsity = preserve_sparsity
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        if self.preserve_sparsity:
            held = hold_zeros(self.model)
            if any(entry.newly_attached for entry in held):
                # `fit` made its train function before this hook, without
                # the new masks' constraints.
                self.model.make_train_function(force=True)
        layers = layer_tree.all_layers(self.model)
        self._switches = {
            "qat_quantizing": [
                layer.quantize_enabled
                for layer in layers
                if isinstance(layer, ActivationQuantizer)
            ]
            + [
                layer.quantize_enabled
                for layer in quantized_kernel_layers(layers)
            ],
            "qat_bn_frozen": [
                layer.frozen
                for layer in layers
                if isinstance(layer, FreezableBatchNormalization)
            ],
            "qat_ranges_frozen": [
                layer.range_frozen
                for layer in layers
                if isinstance(layer, ActivationQuantizer)
            ],
        }
        if not self._switches["qat_quantizing"]:
            raise ValueError(
                "QuantizationAwareTraining found no quantized layer in the "
                f"model {self.model.name!r}. Train the model returned by "
                "`tfcompress.quantization.quantize_model(model)`."
            )
        self._thresholds = {
            "qat_quantizing": self.quantize_delay,
            "qat_bn_frozen": self.freeze_bn_after,
            "qat_ranges_frozen": self.freeze_ranges_after,
        }
        self._states = {}

    def on_train_batch_begin(self, batch, logs=None):
        if self._settled():
            return  # Every switch is past its step: nothing to read.
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        for name, threshold in self._thresholds.items():
            state = threshold is not None and step >= threshold
            if self._states.get(name) == state:
                continue
            self._states[name] = state
            for variable in self._switches[name]:
                variable.assign(1.0 if state else 0.0)
            if self.verbose and state:
                print(f"QuantizationAwareTraining: step {step}: {name} on")

    def _settled(self):
        return len(self._states) == len(self._thresholds) and all(
            self._states[name] or threshold is None
            for name, threshold in self._thresholds.items()
        )

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for name in self._thresholds:
            logs[name] = 1.0 if self._states.get(name) else 0.0


def _optional_step(name, value):
    if value is None:
        return None
    return integer_at_least(name, value, minimum=0)
