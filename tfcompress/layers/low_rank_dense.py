"""Dense layer with a low-rank kernel W = U V."""

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class LowRankDense(WeightedLayer):
    """`Dense` whose kernel is the product of two thin matrices, W = U V.

    A Dense kernel W of shape (m, n) is replaced by U (m, r) and V (r, n),
    so the layer computes `activation((x U) V + b)` with `(m + n) r`
    kernel parameters and MACs instead of `m n` (Denil et al. 2013; Sainath
    et al. 2013). It saves parameters and compute only while
    `r < m n / (m + n)`. TFLite runs it as two `FULLY_CONNECTED` ops. Train
    it from scratch, or fill it from a trained kernel's truncated SVD with
    `LowRankDense.from_factors`.

    Args:
        units: Positive integer, dimensionality of the output space n.
        rank: Positive integer, the rank r of the kernel.
        activation: Activation applied to the output. Defaults to `None`.
        use_bias: Whether the layer has a bias. Defaults to `True`.
        kernel_initializer: Initializer of U and V. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer applied to U and V.
        bias_regularizer: Optional regularizer applied to the bias.
        activity_regularizer: Optional regularizer applied to the output.
        kernel_constraint: Optional constraint applied to U and V.
        bias_constraint: Optional constraint applied to the bias.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        N-D tensor `(batch_size, ..., input_dim)`.

    Output shape:
        N-D tensor `(batch_size, ..., units)`.

    Example:

    >>> layer = LowRankDense(256, rank=16)
    >>> tuple(layer(keras.ops.zeros((2, 512))).shape)
    (2, 256)
    >>> layer.count_params()  # Dense(256) would have 512*256 + 256 = 131328
    12544
    """

    def __init__(
        self,
        units,
        rank,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.units = argument_validation.positive_int("units", units)
        self.rank = argument_validation.positive_int("rank", rank)
        self.u = keras.layers.Dense(
            self.rank, use_bias=False, **self.kernel_arguments(), name="u"
        )
        self.v = keras.layers.Dense(
            self.units,
            activation=self.activation,
            **self.kernel_arguments(),
            **self.bias_arguments(),
            name="v",
        )

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                "LowRankDense needs a known last input dimension. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.u.build(input_shape)
        self.v.build(self.u.compute_output_shape(input_shape))

    def call(self, inputs):
        return self.v(self.u(inputs))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def full_kernel(self):
        """The full kernel the factors are equivalent to, `U V`, as numpy.

        A `Dense` with this kernel `(m, n)`, the same bias and activation
        computes what this layer computes.
        """
        return keras.ops.convert_to_numpy(self.u.kernel) @ (
            keras.ops.convert_to_numpy(self.v.kernel)
        )

    @classmethod
    def from_factors(cls, u, v, bias=None, **kwargs):
        """Makes a built `LowRankDense` with kernel `u @ v`.

        Args:
            u: Array (m, r).
            v: Array (r, n). For a truncated SVD `W ~ A diag(s) B`, pass
                `u = A * sqrt(s)` and `v = sqrt(s)[:, None] * B`, which keeps
                both factors at the same scale (better for int8).
            bias: Optional array (n,). When given, `use_bias=True`.
            **kwargs: Other constructor arguments (`activation`, `name`,
                ...). `units` and `rank` follow from the factors.

        Returns:
            A built `LowRankDense`.
        """
        u = np.asarray(u, dtype="float32")
        v = np.asarray(v, dtype="float32")
        if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[0]:
            raise ValueError(
                "`u` (m, r) and `v` (r, n) must be 2-D with matching rank. "
                f"Received: u.shape={u.shape}, v.shape={v.shape}"
            )
        for name in ("units", "rank"):
            if name in kwargs:
                raise ValueError(
                    f"`{name}` follows from the factors; do not pass it to "
                    f"from_factors. Received: {name}={kwargs[name]!r}"
                )
        if bias is not None:
            bias = np.asarray(bias, dtype="float32")
            if bias.shape != (v.shape[1],):
                raise ValueError(
                    f"`bias` must have shape ({v.shape[1]},). "
                    f"Received: bias.shape={bias.shape}"
                )
        layer = cls(
            units=v.shape[1],
            rank=u.shape[1],
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, u.shape[0]))
        layer.u.kernel.assign(u)
        layer.v.kernel.assign(v)
        if bias is not None:
            layer.v.bias.assign(bias)
        return layer

    def get_config(self):
        base_config = super().get_config()
        config = {
            "units": self.units,
            "rank": self.rank,
        }
        return {**base_config, **config}


# Channel rule (structured pruning): V's units are the output channels; U
# reads the input's channels.
def _channel_rule(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    unit = trace.new_unit(
        layer, layer.name, layer.units, [(layer.v.kernel, 1)], layer.v.bias
    )
    trace.slice(layer, layer.u.kernel, 0, in_map)
    trace.slice(layer, layer.v.kernel, 1, unit.map)
    trace.slice(layer, layer.v.bias, 0, unit.map)
    trace.resize(layer, lambda plan: {"units": plan.count(unit)})
    return [unit.map]


register_layer(
    LowRankDense,
    channels=_channel_rule,
    quantize=QuantizeRule.inline(),
)
