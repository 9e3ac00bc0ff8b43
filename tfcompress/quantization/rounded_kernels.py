"""Quantization-aware training for a layer of your own: `RoundedKernels`.

Keras's Conv2D, DepthwiseConv2D and Dense have twins that compute with
their kernel rounded (`quantized_layers`). A user's layer has no twin, and
tfcompress cannot restate its `call()`; `RoundedKernels` wraps it instead
and, while the wrapped layer's `call()` runs, stands the rounded kernels in
for the variables it reads (`self.kernel`). Register the layer with
`QuantizeRule.rounded_kernels({"kernel": -1})` and `quantize_model` wraps
it; nothing else changes in the model.

The rounding is `round_per_channel`'s (plain ops): the converter folds the
rounded constant kernel and quantizes it per output channel itself, to the
same integers, whatever op reads it. A weight that is an operand of an
element-wise op (a learned position embedding added to the tokens, a
scale multiplied in) is stored by TFLite with one scale for the whole
tensor: give it the axis `None`, and it is rounded per tensor on its own
range (`fake_quant_constant`).
"""

import contextlib
import inspect

import keras

from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.fake_quant import fake_quant_constant
from tfcompress.quantization.fake_quant import fake_quant_symmetric
from tfcompress.quantization.fake_quant import round_per_channel


@keras.saving.register_keras_serializable(package="tfcompress")
class RoundedKernels(keras.layers.Wrapper):
    """Runs a layer with chosen kernels rounded per output channel.

    Args:
        layer: The layer to wrap. Its `call()` must read each kernel as an
            attribute (`self.kernel`), not through a property.
        kernels: `{attribute: output_channel_axis}`, e.g. `{"kernel": -1}`;
            the axis `None` rounds the weight per tensor (an operand of an
            element-wise op: ADD, MUL).
        weight_bits: Bit width simulated for the kernels, 2 to 8. Defaults
            to `8`.
        per_channel_weights: If `False`, the kernels with an output
            channel axis get one scale each instead (see
            `quantize_model`). Defaults to `True`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        That of the wrapped layer.

    Output shape:
        That of the wrapped layer.

    Example:

    ```python
    # `MyDense.call` computes `inputs @ self.kernel + self.bias`.
    wrapped = RoundedKernels(MyDense(4), {"kernel": -1}, weight_bits=8)
    y = wrapped(x)  # computed with the kernel on its int8 grid
    ```
    """

    def __init__(
        self, layer, kernels, weight_bits=8, per_channel_weights=True, **kwargs
    ):
        super().__init__(layer, **kwargs)
        if not isinstance(kernels, dict) or not kernels:
            raise ValueError(
                "`kernels` must be a non-empty dict {attribute: "
                f"output_channel_axis}}. Received: kernels={kernels!r}"
            )
        for attribute in kernels:
            if isinstance(getattr(type(layer), attribute, None), property):
                raise ValueError(
                    f"{type(layer).__name__}.{attribute} is a property, so "
                    "RoundedKernels cannot stand a rounded kernel in for "
                    "it. Write a subclass computing with the rounded "
                    "kernel and register it with QuantizeRule.kernel(twin)."
                )
        self.kernels = {
            str(name): None if axis is None else int(axis)
            for name, axis in kernels.items()
        }
        self.weight_bits = check_bits("weight_bits", weight_bits)
        self.per_channel_weights = bool(per_channel_weights)

    def build(self, input_shape=None):
        super().build(input_shape)
        for attribute in self.kernels:
            if getattr(self.layer, attribute, None) is None:
                raise ValueError(
                    f"Layer {self.layer.name!r} has no weight "
                    f"{attribute!r} to round. Its weights: "
                    f"{[w.name for w in self.layer.weights]}"
                )
        self.quantize_enabled = self.add_weight(
            name="quantize_enabled",
            shape=(),
            initializer="ones",
            trainable=False,
            aggregation="only_first_replica",
        )

    def _rounded(self, kernel, axis, training):
        def rounded():
            if axis is None:
                return fake_quant_constant(kernel, self.weight_bits)
            if not self.per_channel_weights:
                return fake_quant_symmetric(kernel, self.weight_bits)
            moved = keras.ops.moveaxis(kernel, axis, -1)
            return keras.ops.moveaxis(
                round_per_channel(moved, self.weight_bits), -1, axis
            )

        if not training:
            return rounded()
        return keras.ops.cond(
            self.quantize_enabled > 0.5, rounded, lambda: kernel
        )

    @contextlib.contextmanager
    def _rounded_kernels(self, training):
        saved = {name: self.layer.__dict__[name] for name in self.kernels}
        try:
            for name, axis in self.kernels.items():
                # `object.__setattr__`: a tensor, not a tracked variable, for
                # the duration of this call only.
                object.__setattr__(
                    self.layer, name, self._rounded(saved[name], axis, training)
                )
            yield
        finally:
            for name, variable in saved.items():
                object.__setattr__(self.layer, name, variable)

    def call(self, inputs, training=None):
        kwargs = {}
        if "training" in inspect.signature(self.layer.call).parameters:
            kwargs["training"] = training
        with self._rounded_kernels(training):
            return self.layer.call(inputs, **kwargs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "kernels": dict(self.kernels),
            "weight_bits": self.weight_bits,
            "per_channel_weights": self.per_channel_weights,
        }
