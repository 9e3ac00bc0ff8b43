"""The weight arguments of Keras's own layers, for tfcompress's layers."""

import keras
import numpy as np

# The arguments `Dense` and `Conv2D` take for their weights, with their
# Keras defaults, in Keras's order.
KERAS_WEIGHT_ARGUMENTS = {
    "activation": None,
    "use_bias": True,
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
    "kernel_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
}


def _keras_module(name):
    """The Keras module that gets and serializes argument `name`."""
    if name == "activation":
        return keras.activations
    return {
        "initializer": keras.initializers,
        "regularizer": keras.regularizers,
        "constraint": keras.constraints,
    }[name.rsplit("_", 1)[1]]


class WeightedLayer(keras.layers.Layer):
    """Base of the tfcompress layers that own weights.

    Keras's weighted layers (`Dense`, `Conv2D`) all take `activation`,
    `use_bias`, and an initializer, a regularizer and a constraint for the
    kernel and for the bias, plus `activity_regularizer`. This base takes
    them, turns identifiers into objects (`keras.initializers.get`, ...),
    stores them as attributes of the same names and writes them in
    `get_config()`, so a tfcompress layer only passes them on to its Keras
    sublayers (`kernel_arguments()`, `bias_arguments()`).

    A subclass whose sublayers have no use for some of them (a convolution
    followed by batch normalization has no bias) lists the ones it takes in
    the class attribute `weight_arguments`; any other is refused as an
    unrecognized keyword argument, as Keras refuses an unknown one. A
    config saved before an argument was added simply lacks its key, and the
    layer's default applies.

    Args:
        activation: Activation function of the layer's output. Defaults to
            `None` (linear).
        use_bias: Whether the layer has a bias. Defaults to `True`.
        kernel_initializer: Initializer of the kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Initializer of the bias. Defaults to `"zeros"`.
        kernel_regularizer: Regularizer of the kernels. Defaults to `None`.
        bias_regularizer: Regularizer of the bias. Defaults to `None`.
        activity_regularizer: Regularizer of the layer's output. Defaults
            to `None`.
        kernel_constraint: Constraint on the kernels. Defaults to `None`.
        bias_constraint: Constraint on the bias. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Raises:
        ValueError: If an identifier is unknown, if `use_bias` is not a
            bool, or if an argument the subclass does not take is given.

    Example:

    >>> class Scaled(WeightedLayer):
    ...     weight_arguments = ("kernel_initializer", "activity_regularizer")
    ...     def build(self, input_shape):
    ...         self.scale = self.add_weight(
    ...             shape=input_shape[-1:],
    ...             initializer=self.kernel_initializer,
    ...         )
    ...     def call(self, inputs):
    ...         return inputs * self.scale
    >>> layer = Scaled(kernel_initializer="ones")
    >>> layer.get_config()["kernel_initializer"]["class_name"]
    'Ones'
    >>> Scaled(use_bias=False)
    Traceback (most recent call last):
    ...
    ValueError: Unrecognized keyword arguments passed to Scaled: {'use_bias': False}
    """

    weight_arguments = tuple(KERAS_WEIGHT_ARGUMENTS)

    def __init__(self, **kwargs):
        unknown = set(self.weight_arguments) - set(KERAS_WEIGHT_ARGUMENTS)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.weight_arguments may only name "
                f"{list(KERAS_WEIGHT_ARGUMENTS)}. Received: "
                f"{sorted(unknown)}"
            )
        values = {
            name: kwargs.pop(name, KERAS_WEIGHT_ARGUMENTS[name])
            for name in self.weight_arguments
        }
        # Keras's base layer owns `activity_regularizer`: it applies it in
        # `__call__` and writes it in `get_config()` when set. Any weight
        # argument the subclass does not take is left in `kwargs`, which
        # the base layer refuses.
        super().__init__(
            activity_regularizer=values.pop("activity_regularizer", None),
            **kwargs,
        )
        for name, value in values.items():
            if name == "use_bias":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(
                        "`use_bias` must be True or False. "
                        f"Received: use_bias={value!r}"
                    )
                value = bool(value)
            else:
                value = _keras_module(name).get(value)
            setattr(self, name, value)

    def kernel_arguments(self, prefix="kernel"):
        """The kernel arguments this layer takes, for a Keras sublayer.

        Args:
            prefix: `"kernel"` for `Dense` and `Conv2D`, `"depthwise"` for
                `DepthwiseConv2D`, whose kernel arguments Keras names
                `depthwise_initializer`, ... Defaults to `"kernel"`.

        Returns:
            A dict such as `{"kernel_initializer": ..., "kernel_regularizer":
            ..., "kernel_constraint": ...}`, with only the arguments this
            layer takes.
        """
        return {
            f"{prefix}_{kind}": getattr(self, f"kernel_{kind}")
            for kind in ("initializer", "regularizer", "constraint")
            if f"kernel_{kind}" in self.weight_arguments
        }

    def bias_arguments(self):
        """`use_bias` and the bias arguments this layer takes, as a dict.

        For the Keras sublayer that holds the layer's bias.
        """
        names = (
            "use_bias",
            "bias_initializer",
            "bias_regularizer",
            "bias_constraint",
        )
        return {
            name: getattr(self, name)
            for name in names
            if name in self.weight_arguments
        }

    def get_config(self):
        config = super().get_config()
        for name in self.weight_arguments:
            if name == "activity_regularizer":
                continue  # written by the base layer
            value = getattr(self, name)
            if name != "use_bias":
                value = _keras_module(name).serialize(value)
            config[name] = value
        return config
