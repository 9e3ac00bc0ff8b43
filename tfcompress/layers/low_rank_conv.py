"""Low-rank convolutions: a kxk convolution to `rank` channels, then 1x1.

The channel decomposition of Zhang et al. 2015 ("Accelerating very deep
convolutional networks"): a kernel `K` of shape `(*k, S, T)`, read as a
matrix `(prod(k) * S, T)`, is a product `U V` of rank r, computed as a
convolution with kernel `U` to r channels followed by a 1x1 convolution
with `V`. For a 1x1 convolution this is the truncated SVD of a `Dense`.
"""

import math

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.sublayers import build_in_sequence
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.quantization.quantize_rules import QuantizeRule


class _LowRankConv(WeightedLayer):
    """Shared body of `LowRankConv1D` and `LowRankConv2D`."""

    rank_of_space = None  # 1 or 2.
    conv_class = None

    def __init__(
        self,
        filters,
        kernel_size,
        rank,
        strides=1,
        padding="valid",
        dilation_rate=1,
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
        self.filters = argument_validation.positive_int("filters", filters)
        self.rank = argument_validation.positive_int("rank", rank)
        self.kernel_size = self._tuple("kernel_size", kernel_size)
        self.strides = self._tuple("strides", strides)
        self.dilation_rate = self._tuple("dilation_rate", dilation_rate)
        self.padding = argument_validation.padding_mode(padding)
        # No bias in the first stage: zero padding then pads what a conv
        # with the product kernel would see, so the pair is exactly it.
        self.spatial = self.conv_class(
            self.rank,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            use_bias=False,
            **self.kernel_arguments(),
            name="spatial",
        )
        self.pointwise = self.conv_class(
            self.filters,
            1,
            activation=self.activation,
            **self.kernel_arguments(),
            **self.bias_arguments(),
            name="pointwise",
        )

    def _tuple(self, name, value):
        if self.rank_of_space == 2:
            return argument_validation.int_pair(name, value)
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise ValueError(
                    f"`{name}` must be an integer or a tuple of 1 integer. "
                    f"Received: {name}={value!r}"
                )
            value = value[0]
        return (argument_validation.positive_int(name, value),)

    @property
    def _stages(self):
        return (self.spatial, self.pointwise)

    def build(self, input_shape):
        argument_validation.channels_last(
            type(self).__name__, input_shape, min_rank=self.rank_of_space + 2
        )
        build_in_sequence(self._stages, input_shape)

    def call(self, inputs):
        return self.pointwise(self.spatial(inputs))

    def compute_output_shape(self, input_shape):
        shape = self.spatial.compute_output_shape(input_shape)
        return self.pointwise.compute_output_shape(shape)

    def factors(self):
        """`(U, V)` as numpy: `U` `(*kernel_size, S, rank)`, `V` `(rank, T)`."""
        if not self.built:
            raise ValueError(
                f"{type(self).__name__}.factors() needs a built layer: call "
                "it on an input or call `build(input_shape)` first."
            )
        u = keras.ops.convert_to_numpy(self.spatial.kernel)
        v = keras.ops.convert_to_numpy(self.pointwise.kernel)
        return u, v.reshape(v.shape[-2:])

    def full_kernel(self):
        """The kernel `(*kernel_size, S, T)` the factors stand for."""
        u, v = self.factors()
        return np.tensordot(u, v, axes=1)

    @classmethod
    def from_factors(cls, spatial_factor, pointwise_factor, bias=None, **kwargs):
        """Makes a built layer from factors `U` and `V`.

        Args:
            spatial_factor: Array `(*kernel_size, S, rank)`.
            pointwise_factor: Array `(rank, T)`.
            bias: Optional array `(T,)`. When given, `use_bias=True`.
            **kwargs: Other constructor arguments (`strides`, `padding`,
                `activation`, `name`, ...). `filters`, `kernel_size` and
                `rank` follow from the factors.

        Returns:
            A built layer whose kernel is `tensordot(U, V, axes=1)`.
        """
        u = np.asarray(spatial_factor, dtype="float32")
        v = np.asarray(pointwise_factor, dtype="float32")
        if (
            u.ndim != cls.rank_of_space + 2
            or v.ndim != 2
            or u.shape[-1] != v.shape[0]
        ):
            raise ValueError(
                f"{cls.__name__} factors must be `spatial_factor` "
                "(*kernel_size, S, rank) and `pointwise_factor` (rank, T). "
                f"Received shapes: spatial_factor={u.shape}, "
                f"pointwise_factor={v.shape}"
            )
        for name in ("filters", "kernel_size", "rank"):
            if name in kwargs:
                raise ValueError(
                    f"`{name}` follows from the factors; do not pass it to "
                    f"from_factors. Received: {name}={kwargs[name]!r}"
                )
        if bias is not None:
            bias = np.asarray(bias, dtype="float32")
            if bias.shape != (v.shape[1],):
                raise ValueError(
                    f"`bias` must have shape ({v.shape[1]},), one value per "
                    f"output channel. Received: bias.shape={bias.shape}"
                )
        layer = cls(
            filters=v.shape[1],
            kernel_size=u.shape[:-2],
            rank=v.shape[0],
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, *([None] * cls.rank_of_space), u.shape[-2]))
        layer.spatial.kernel.assign(u)
        layer.pointwise.kernel.assign(v.reshape((1,) * cls.rank_of_space + v.shape))
        if bias is not None:
            layer.pointwise.bias.assign(bias)
        return layer

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "rank": self.rank,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
        }
        return {**base_config, **config}


@keras.saving.register_keras_serializable(package="tfcompress")
class LowRankConv2D(_LowRankConv):
    """A `Conv2D` of rank r: a kxk convolution to r channels, then 1x1.

    The kernel `(kh, kw, S, T)`, read as a matrix `(kh * kw * S, T)`, is
    `U V` of rank r (Zhang et al. 2015): `U` is a kxk convolution from S
    to r channels (with the strides, padding and dilation), `V` a 1x1
    convolution from r to T channels (with the bias and activation). MACs
    per output position drop from `kh * kw * S * T` to
    `r * (kh * kw * S + T)`. On a 1x1 convolution it is a truncated SVD.
    `LowRankConv2D.from_factors(U, V, bias=...)` fills it from a trained
    kernel's factors (see `tfcompress.decomposition.decompose`).

    Args:
        filters: Positive integer, number of output channels T.
        kernel_size: Integer or tuple of 2 integers.
        rank: Positive integer r, the channels between the two stages.
        strides: Integer or tuple of 2 integers. Defaults to `1`.
        padding: `"valid"` or `"same"`. Defaults to `"valid"`.
        dilation_rate: Integer or tuple of 2 integers. Defaults to `1`.
        activation: Activation applied to the output. Defaults to `None`.
        use_bias: Whether the output has a bias. Defaults to `True`.
        kernel_initializer: Initializer of both kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer of both kernels.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        kernel_constraint: Optional constraint of both kernels.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`, as a
        `Conv2D` with the same arguments gives.

    Example:

    >>> layer = LowRankConv2D(64, kernel_size=3, rank=8, padding="same")
    >>> tuple(layer(keras.ops.zeros((1, 16, 16, 32))).shape)
    (1, 16, 16, 64)
    >>> layer.count_params()  # a Conv2D would have 3*3*32*64 + 64 = 18496
    2880
    """

    rank_of_space = 2
    conv_class = keras.layers.Conv2D


@keras.saving.register_keras_serializable(package="tfcompress")
class LowRankConv1D(_LowRankConv):
    """A `Conv1D` of rank r: a width-k convolution to r channels, then 1x1.

    `LowRankConv2D` for sequences: the kernel `(k, S, T)`, read as a
    matrix `(k * S, T)`, is `U V` of rank r. MACs per output step drop
    from `k * S * T` to `r * (k * S + T)`.

    Args:
        filters: Positive integer, number of output channels T.
        kernel_size: Integer.
        rank: Positive integer r, the channels between the two stages.
        strides: Integer. Defaults to `1`.
        padding: `"valid"` or `"same"`. Defaults to `"valid"`.
        dilation_rate: Integer. Defaults to `1`.
        activation: Activation applied to the output. Defaults to `None`.
        use_bias: Whether the output has a bias. Defaults to `True`.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer of both kernels.
        bias_regularizer: Optional regularizer of the bias.
        activity_regularizer: Optional regularizer of the output.
        kernel_constraint: Optional constraint of both kernels.
        bias_constraint: Optional constraint of the bias.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        3D tensor `(batch_size, steps, channels)`.

    Output shape:
        3D tensor `(batch_size, new_steps, filters)`.

    Example:

    >>> layer = LowRankConv1D(32, kernel_size=3, rank=4, padding="same")
    >>> tuple(layer(keras.ops.zeros((1, 49, 16))).shape)
    (1, 49, 32)
    """

    rank_of_space = 1
    conv_class = keras.layers.Conv1D


@keras.saving.register_keras_serializable(package="tfcompress")
class LowRankSeparableConv2D(keras.layers.Layer):
    """A `SeparableConv2D` whose pointwise kernel has rank r.

    The depthwise kxk stage is kept whole; the pointwise `(S * m, T)`
    matrix is `U V` of rank r, computed as the separable convolution's own
    pointwise step to r channels (`U`) then a 1x1 convolution to T (`V`,
    with the bias and activation). Pointwise MACs per position drop from
    `S * m * T` to `r * (S * m + T)`.

    Args:
        filters: Positive integer, number of output channels T.
        kernel_size: Integer or tuple of 2 integers.
        rank: Positive integer r.
        strides: Integer or tuple of 2 integers. Defaults to `1`.
        padding: `"valid"` or `"same"`. Defaults to `"valid"`.
        depth_multiplier: Positive integer m. Defaults to `1`.
        dilation_rate: Integer or tuple of 2 integers. Defaults to `1`.
        activation: Activation of the output. Defaults to `None`.
        use_bias: Whether the output has a bias. Defaults to `True`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`.

    Example:

    >>> layer = LowRankSeparableConv2D(64, 3, rank=8, padding="same")
    >>> tuple(layer(keras.ops.zeros((1, 16, 16, 32))).shape)
    (1, 16, 16, 64)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        rank,
        strides=1,
        padding="valid",
        depth_multiplier=1,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = argument_validation.positive_int("filters", filters)
        self.rank = argument_validation.positive_int("rank", rank)
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.strides = argument_validation.int_pair("strides", strides)
        self.dilation_rate = argument_validation.int_pair(
            "dilation_rate", dilation_rate
        )
        self.depth_multiplier = argument_validation.positive_int(
            "depth_multiplier", depth_multiplier
        )
        self.padding = argument_validation.padding_mode(padding)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.separable = keras.layers.SeparableConv2D(
            self.rank,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            depth_multiplier=self.depth_multiplier,
            dilation_rate=self.dilation_rate,
            use_bias=False,
            name="separable",
        )
        self.pointwise = keras.layers.Conv2D(
            self.filters,
            1,
            activation=self.activation,
            use_bias=use_bias,
            name="pointwise",
        )

    def build(self, input_shape):
        argument_validation.channels_last(
            "LowRankSeparableConv2D", input_shape
        )
        build_in_sequence((self.separable, self.pointwise), input_shape)

    def call(self, inputs):
        return self.pointwise(self.separable(inputs))

    def compute_output_shape(self, input_shape):
        shape = self.separable.compute_output_shape(input_shape)
        return self.pointwise.compute_output_shape(shape)

    @classmethod
    def from_factors(
        cls, depthwise_kernel, pointwise_factor, output_factor, bias=None,
        **kwargs,
    ):
        """A built layer from `(kh, kw, S, m)`, `U (S*m, r)`, `V (r, T)`."""
        depthwise = np.asarray(depthwise_kernel, dtype="float32")
        u = np.asarray(pointwise_factor, dtype="float32")
        v = np.asarray(output_factor, dtype="float32")
        in_channels, multiplier = depthwise.shape[2:]
        if u.shape[0] != in_channels * multiplier or u.shape[1] != v.shape[0]:
            raise ValueError(
                "LowRankSeparableConv2D factors must be `depthwise_kernel` "
                "(kh, kw, S, m), `pointwise_factor` (S * m, rank) and "
                f"`output_factor` (rank, T). Received shapes: "
                f"{depthwise.shape}, {u.shape}, {v.shape}"
            )
        layer = cls(
            filters=v.shape[1],
            kernel_size=depthwise.shape[:2],
            rank=v.shape[0],
            depth_multiplier=multiplier,
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, None, None, in_channels))
        layer.separable.depthwise_kernel.assign(depthwise)
        layer.separable.pointwise_kernel.assign(u[None, None])
        layer.pointwise.kernel.assign(v[None, None])
        if bias is not None:
            layer.pointwise.bias.assign(np.asarray(bias, dtype="float32"))
        return layer

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "rank": self.rank,
            "strides": self.strides,
            "padding": self.padding,
            "depth_multiplier": self.depth_multiplier,
            "dilation_rate": self.dilation_rate,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
        }
        return {**base_config, **config}


def low_rank_conv_macs(rank, kernel_size, in_channels, filters, positions):
    """MACs of one call: `positions` output positions."""
    return positions * rank * (math.prod(kernel_size) * in_channels + filters)


# Quantization-aware training and export see its two convolutions.
register_layer(
    (LowRankConv1D, LowRankConv2D, LowRankSeparableConv2D),
    quantize=QuantizeRule.inline(),
)
