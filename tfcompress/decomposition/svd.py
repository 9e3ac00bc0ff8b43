"""Truncated SVD of a `Dense` kernel into a `LowRankDense` (Denil et al.
2013; Jaderberg et al. 2014)."""

import math
import numbers

import keras
import numpy as np

from tfcompress.decomposition import ranks
from tfcompress.decomposition.fidelity import relative_error
from tfcompress.layers.low_rank_dense import LowRankDense


def energy_rank(singular_values, energy):
    """Smallest rank whose leading singular values keep `energy`.

    The energy of a matrix is the sum of its squared singular values (its
    squared Frobenius norm); keeping the r largest ones keeps
    `sum(s[:r] ** 2) / sum(s ** 2)` of it, and leaves a relative
    reconstruction error of `sqrt(1 - kept)`.

    Args:
        singular_values: 1-D array of singular values, in any order.
        energy: Float in `(0, 1]`, the fraction of energy to keep.

    Returns:
        An integer between 1 and `len(singular_values)`.

    Example:

    >>> energy_rank([3.0, 2.0, 1.0], 0.9)  # 9 / 14 < 0.9 <= 13 / 14
    2
    """
    energy = ranks.energy_fraction("energy", energy)
    squares = np.sort(np.asarray(singular_values, dtype="float64") ** 2)[::-1]
    total = squares.sum()
    if total == 0:
        return 1
    kept = np.cumsum(squares) / total
    # A tolerance so that `energy=1.0` is reached despite rounding.
    return int(np.searchsorted(kept, energy - 1e-12) + 1)


def svd_factors(kernel, rank):
    """Truncated SVD of a matrix `W (m, n) ~ U V`, at a balanced scale.

    With `W = A diag(s) B`, returns `U = A_r sqrt(s_r)` and
    `V = sqrt(s_r) B_r`, the best rank-r approximation of W in the
    Frobenius norm (Eckart-Young). Splitting `s` evenly keeps both factors
    at the same scale, which suits int8 quantization.

    Args:
        kernel: Array `(m, n)`, e.g. a `Dense` kernel.
        rank: Integer in `[1, min(m, n)]`, or a float in `(0, 1]`: the
            fraction of energy to keep (see `energy_rank`).

    Returns:
        `(u, v)`: float32 arrays `(m, r)` and `(r, n)`, ready for
        `LowRankDense.from_factors(u, v, bias)`.

    Example:

    >>> w = np.outer([1.0, 2.0], [3.0, 4.0, 5.0])  # rank one
    >>> u, v = svd_factors(w, 1)
    >>> u.shape, v.shape, bool(np.allclose(u @ v, w))
    ((2, 1), (1, 3), True)
    """
    kernel = np.asarray(kernel, dtype="float64")
    if kernel.ndim != 2:
        raise ValueError(
            "`kernel` must be a 2-D matrix. "
            f"Received: kernel.shape={kernel.shape}"
        )
    a, s, b = np.linalg.svd(kernel, full_matrices=False)
    if isinstance(rank, numbers.Real) and not isinstance(
        rank, numbers.Integral
    ):
        rank = energy_rank(s, rank)
    rank = ranks.rank_at_most("rank", rank, len(s))
    root = np.sqrt(s[:rank])
    u = a[:, :rank] * root
    v = root[:, None] * b[:rank]
    return u.astype("float32"), v.astype("float32")


class SVDMethod(ranks.OneIntegerRank):
    """How `decompose` applies truncated SVD to a `Dense` layer.

    A rank is an integer r (the layer becomes `LowRankDense` with rank r)
    or a float in `(0, 1]`, the fraction of the kernel's energy to keep.
    """

    name = "svd"
    stop_grid_at_break_even = False

    def unsupported(self, layer):
        """Why `layer` cannot be decomposed, or `None`."""
        if getattr(layer, "quantization_mode", None) is not None:
            return f"quantized ({layer.quantization_mode}) Dense layer"
        return None

    def full_rank(self, layer):
        m, n = _kernel(layer).shape
        return min(m, n)

    def resolve_rank(self, layer, rank, argument="rank"):
        """A concrete integer rank from an int or an energy fraction."""
        if ranks.is_fraction(rank):
            ranks.energy_fraction(argument, rank)
            singular_values = np.linalg.svd(
                _kernel(layer).astype("float64"), compute_uv=False
            )
            return energy_rank(singular_values, rank)
        return ranks.positive_rank(argument, rank)

    def macs(self, layer, input_shape, output_shape, rank):
        """MACs of one call of the `LowRankDense` (batch of one)."""
        positions = math.prod(output_shape[:-1])
        m, n = _kernel(layer).shape
        return positions * (m + n) * rank

    def decompose(self, layer, rank, options):
        """Returns `(LowRankDense, relative kernel error)`.

        `options` (the iteration settings of CP and Tucker-2) are ignored:
        the truncated SVD is computed exactly.
        """
        kernel = _kernel(layer)
        u, v = svd_factors(kernel, rank)
        new_layer = LowRankDense.from_factors(
            u,
            v,
            bias=_bias(layer),
            activation=layer.activation,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
        return new_layer, relative_error(u @ v, kernel)


def _kernel(layer):
    return keras.ops.convert_to_numpy(layer.kernel)


def _bias(layer):
    if not layer.use_bias:
        return None
    return keras.ops.convert_to_numpy(layer.bias)
