"""Truncated SVD of a convolution's kernel into a `LowRankConv1D/2D`.

The channel decomposition of Zhang et al. 2015: the kernel `(*k, S, T)`
read as a matrix `(prod(k) * S, T)` is factorized by truncated SVD. One
SVD, no iterations: the quickest method, and the one for 1x1 convolutions
(where it is the SVD of a `Dense`) and `Conv1D`.
"""

import math

import keras
import numpy as np

from tfcompress.decomposition import ranks
from tfcompress.decomposition.fidelity import relative_error
from tfcompress.decomposition.svd import energy_rank
from tfcompress.decomposition.svd import svd_factors
from tfcompress.layers.low_rank_conv import LowRankConv1D
from tfcompress.layers.low_rank_conv import LowRankConv2D
from tfcompress.layers.low_rank_conv import LowRankSeparableConv2D


def _matrix(layer):
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    return kernel, kernel.reshape(-1, kernel.shape[-1])


class ConvSVDMethod(ranks.OneIntegerRank):
    """How `decompose` applies truncated SVD to a `Conv1D` or `Conv2D`.

    Method `"channel_svd"` (`"svd"` stays the `Dense` method).

    A rank is an integer r or a fraction of the kernel's energy: the layer
    becomes a `LowRankConv1D`/`LowRankConv2D` of rank r.
    """

    name = "channel_svd"
    stop_grid_at_break_even = False

    def unsupported(self, layer):
        if getattr(layer, "quantization_mode", None) is not None:
            return f"quantized ({layer.quantization_mode}) convolution"
        if getattr(layer, "groups", 1) != 1:
            return (
                f"grouped convolution (groups={layer.groups}); only "
                "groups=1 can be decomposed"
            )
        if layer.data_format != "channels_last":
            return (
                f"data_format={layer.data_format!r}; only channels_last "
                "can be decomposed"
            )
        if layer.padding not in ("valid", "same"):
            return f"padding={layer.padding!r}; only valid or same"
        return None

    def full_rank(self, layer):
        return min(_matrix(layer)[1].shape)

    def resolve_rank(self, layer, rank, argument="rank"):
        if ranks.is_fraction(rank):
            ranks.energy_fraction(argument, rank)
            singular_values = np.linalg.svd(
                _matrix(layer)[1].astype("float64"), compute_uv=False
            )
            return energy_rank(singular_values, rank)
        return ranks.positive_rank(argument, rank)

    def macs(self, layer, input_shape, output_shape, rank):
        """MACs of one call of the replacement (batch of one)."""
        positions = math.prod(output_shape[1:-1])
        in_channels = input_shape[-1]
        return (
            positions
            * rank
            * (math.prod(layer.kernel_size) * in_channels + layer.filters)
        )

    def decompose(self, layer, rank, options):
        """Returns `(LowRankConv1D/2D, relative kernel error)`.

        `options` (CP's and Tucker-2's iterations) do not apply: one SVD.
        """
        kernel, matrix = _matrix(layer)
        u, v = svd_factors(matrix, rank)
        layer_class = LowRankConv2D if kernel.ndim == 4 else LowRankConv1D
        new_layer = layer_class.from_factors(
            u.reshape(*kernel.shape[:-1], u.shape[-1]),
            v,
            **_convolution_arguments(layer),
        )
        return new_layer, relative_error(u @ v, matrix)


class SeparableSVDMethod(ConvSVDMethod):
    """Method `"channel_svd"` of a `SeparableConv2D`: SVD of its pointwise
    kernel (the depthwise stage is kept), as a `LowRankSeparableConv2D`."""

    def unsupported(self, layer):
        reason = super().unsupported(layer)
        if reason is None and layer.depthwise_kernel.ndim != 4:
            return "only SeparableConv2D"
        return reason

    def full_rank(self, layer):
        return min(_pointwise(layer).shape)

    def resolve_rank(self, layer, rank, argument="rank"):
        if ranks.is_fraction(rank):
            ranks.energy_fraction(argument, rank)
            singular_values = np.linalg.svd(
                _pointwise(layer).astype("float64"), compute_uv=False
            )
            return energy_rank(singular_values, rank)
        return ranks.positive_rank(argument, rank)

    def macs(self, layer, input_shape, output_shape, rank):
        positions = math.prod(output_shape[1:-1])
        hidden = input_shape[-1] * layer.depth_multiplier
        depthwise = math.prod(layer.kernel_size) * hidden
        return positions * (depthwise + rank * (hidden + layer.filters))

    def decompose(self, layer, rank, options):
        matrix = _pointwise(layer)
        u, v = svd_factors(matrix, rank)
        new_layer = LowRankSeparableConv2D.from_factors(
            keras.ops.convert_to_numpy(layer.depthwise_kernel),
            u,
            v,
            **_convolution_arguments(layer),
        )
        return new_layer, relative_error(u @ v, matrix)


def _convolution_arguments(layer):
    """What the factorized layer keeps of `layer`: bias, strides, padding,
    dilation, activation, name and dtype policy."""
    return dict(
        bias=(keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else None),
        strides=tuple(layer.strides),
        padding=layer.padding,
        dilation_rate=tuple(layer.dilation_rate),
        activation=layer.activation,
        name=layer.name,
        dtype=layer.dtype_policy,
    )


def _pointwise(layer):
    kernel = keras.ops.convert_to_numpy(layer.pointwise_kernel)
    return kernel.reshape(-1, kernel.shape[-1])
