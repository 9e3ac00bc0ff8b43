"""Activations computed in the ops TFLite runs them as, for inlining.

TFLite has no int8 kernel for some Keras activations and runs them as
several int8 ops, each rounding its output: swish (`x * sigmoid(x)`) is
LOGISTIC then MUL, the LOGISTIC output on its fixed range (scale 1/256,
zero point -128); hard sigmoid (`relu6(x + 3) / 6`) is ADD with the ReLU6
fused, then MUL. `ActivationInOps` is `keras.layers.Activation` computing
those ops one by one, so that `quantize_model` can inline it
(`QuantizeRule.inline(twin=ActivationInOps)`) and round each op's output
where the file does. Hard swish has its own int8 op (HARD_SWISH) and
needs none of this.
"""

import keras

# The activations TFLite runs as several int8 ops.
IN_OPS = ("silu", "hard_sigmoid")


def _silu(x):
    return keras.ops.multiply(x, keras.ops.sigmoid(x))


def _hard_sigmoid(x):
    # The converter's ops for Keras's hard sigmoid: ADD + RELU6, then MUL.
    return keras.ops.multiply(keras.ops.relu6(keras.ops.add(x, 3.0)), 1 / 6)


_FUNCTIONS = {"silu": _silu, "hard_sigmoid": _hard_sigmoid}


def activation_name(activation):
    """The name of a Keras activation function (`"silu"` for swish)."""
    return getattr(activation, "__name__", str(activation))


@keras.saving.register_keras_serializable(package="tfcompress")
class ActivationInOps(keras.layers.Activation):
    """`keras.layers.Activation` computed op by op, as TFLite computes it.

    For swish (`"silu"`) and `"hard_sigmoid"` it calls the `keras.ops`
    TFLite runs them as; any other activation is computed as usual.

    Args:
        **kwargs: `keras.layers.Activation` arguments.

    Example:

    ```python
    layer = ActivationInOps("swish")
    y = layer(np.array([[-1.0, 0.0, 2.0]], "float32"))  # x * sigmoid(x)
    ```
    """

    def call(self, inputs):
        function = _FUNCTIONS.get(activation_name(self.activation))
        if function is None:
            return super().call(inputs)
        return function(inputs)
