"""Recurrent layers written out step by step, for quantization-aware training.

An int8 `.tflite` file runs an LSTM unrolled (see
`tfcompress.export.recurrent_unrolling`): at each timestep two
FULLY_CONNECTED ops (input and state projections), an ADD, a SPLIT into the
four gates, LOGISTIC / TANH, and the MUL / ADD of the cell update, every
one with an int8 output of its own scale. Keras's `LSTM` runs the same
steps inside one layer (a loop, or a fused kernel), where no fake-quant op
can reach them. `LSTMInOps` is the same layer with the loop written out in
`keras.ops` over two `Dense` sublayers: `quantize_model` inlines it, so each
projection becomes a quantized `Dense` and each op gets the rounding its
int8 op has in the file (the gates' LOGISTIC and TANH on TFLite's fixed
output ranges). Its quantized file projects every step's input in one
FULLY_CONNECTED (sliced per step), and only the state projection repeats.
"""

import keras

from tfcompress.graph import keras_internals

# LSTM arguments that change what a step computes in ways the written-out
# loop does not reproduce; `unsupported_lstm` names the first one set.
_UNSUPPORTED = {
    "go_backwards": "go_backwards=True",
    "stateful": "stateful=True",
    "return_state": "return_state=True",
    "dropout": "dropout > 0",
    "recurrent_dropout": "recurrent_dropout > 0",
}


def unsupported_lstm(layer):
    """Why `LSTMInOps` cannot stand in for the LSTM `layer`, or `None`."""
    config = layer.get_config()
    for argument, description in _UNSUPPORTED.items():
        if config.get(argument):
            return f"an LSTM with {description}"
    if keras_internals.receives_mask(layer):
        return "an LSTM reading a mask (its padded steps are skipped)"
    return None


class LSTMInOps(keras.layers.Layer):
    """`keras.layers.LSTM`, unrolled in `keras.ops` over two `Dense` layers.

    It takes the LSTM's config and weights and computes the same outputs
    (zero initial state), as the int8 file computes them: the inputs of
    every step projected at once, then per step
    `z = input_projection(x)[:, t] + recurrent_projection(h)` (the bias is the
    input projection's; the first step has no state term), the gates
    `i, f, g, o = split(z, 4)`, `c = f * c + i * activation(g)`,
    `h = o * activation(c)`.

    Supported: `return_sequences` either way, any `activation` and
    `recurrent_activation`; not `go_backwards`, `stateful`,
    `return_state`, dropout or masks (see `unsupported_lstm`).

    Args:
        units: The LSTM's units.
        activation: The cell and output activation. Defaults to `"tanh"`.
        recurrent_activation: The gates' activation. Defaults to
            `"sigmoid"`.
        use_bias: Whether the LSTM has a bias. Defaults to `True`.
        return_sequences: Whether to return every step's output. Defaults
            to `False`.
        **kwargs: The LSTM's other config entries (initializers,
            regularizers, ...), accepted and unused, and base `Layer`
            arguments.

    Input shape:
        `(batch, timesteps, features)`, with known `timesteps`.

    Output shape:
        `(batch, units)`, or `(batch, timesteps, units)` with
        `return_sequences=True`.

    Example:

    ```python
    lstm = keras.layers.LSTM(8)
    x = np.ones((2, 5, 3), "float32")
    y = lstm(x)
    twin = LSTMInOps(**lstm.get_config())
    twin.build(x.shape)
    twin.set_weights(lstm.get_weights())
    np.testing.assert_allclose(twin(x), y, atol=1e-6)
    ```
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        return_sequences=False,
        **kwargs,
    ):
        base = {
            key: kwargs.pop(key)
            for key in ("name", "dtype", "trainable")
            if key in kwargs
        }
        super().__init__(**base)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.return_sequences = return_sequences
        self._lstm_config = kwargs
        self.input_projection = keras.layers.Dense(
            4 * units, use_bias=use_bias, name="input_projection"
        )
        self.recurrent_projection = keras.layers.Dense(
            4 * units, use_bias=False, name="recurrent_projection"
        )

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError(
                f"LSTMInOps {self.name!r} unrolls over the timesteps, so it "
                "needs their number: give the model's input a fixed "
                f"sequence length. Received: input_shape={input_shape}"
            )
        self.input_projection.build(input_shape)
        self.recurrent_projection.build((input_shape[0], self.units))
        self.built = True

    def set_weights(self, weights):
        """Takes the weights in the LSTM's order: kernel, recurrent kernel
        and (with `use_bias`) bias."""
        kernel, recurrent_kernel, *bias = weights
        self.input_projection.set_weights([kernel, *bias])
        self.recurrent_projection.set_weights([recurrent_kernel])

    def get_weights(self):
        kernel, *bias = self.input_projection.get_weights()
        return [kernel, *self.recurrent_projection.get_weights(), *bias]

    def call(self, sequences, training=None, mask=None, initial_state=None):
        # Dropout is refused by `unsupported_lstm`: nothing to train.
        del training
        if mask is not None or initial_state is not None:
            raise ValueError(
                f"LSTMInOps {self.name!r} runs from a zero state over every "
                "step; it takes no mask and no initial_state."
            )
        # One projection of every step's input, sliced per step: the same
        # products and rounding as one FULLY_CONNECTED per step, but the
        # file holds one op (one copy of the kernel's per-channel scales and
        # of the int32 bias) instead of one per step.
        projected = self.input_projection(sequences)
        outputs = []
        state = cell = None
        for step in range(sequences.shape[1]):
            z = projected[:, step, :]
            if state is not None:
                z = z + self.recurrent_projection(state)
            i, f, g, o = keras.ops.split(z, 4, axis=-1)
            i = self.recurrent_activation(i)
            candidate = i * self.activation(g)
            if cell is None:
                cell = candidate
            else:
                cell = self.recurrent_activation(f) * cell + candidate
            state = self.recurrent_activation(o) * self.activation(cell)
            outputs.append(state)
        if self.return_sequences:
            return keras.ops.stack(outputs, axis=1)
        return state

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            **self._lstm_config,
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "use_bias": self.use_bias,
            "return_sequences": self.return_sequences,
        }
