"""CP decomposition of a conv kernel into a `CPConv2D` (Lebedev et al.
2015), computed by alternating least squares in TensorLy."""

import math
import warnings

import numpy as np

from tfcompress.decomposition import conv_layers
from tfcompress.decomposition import ranks
from tfcompress.decomposition.fidelity import relative_error
from tfcompress.decomposition.tensorly_import import import_tensorly
from tfcompress.layers.cp_conv2d import CPConv2D


def cp_full_rank(shape):
    """An upper bound of the CP rank of a tensor of `shape`.

    Any tensor is a sum of `prod(shape) / max(shape)` rank-one terms (one
    per fibre along its longest mode), so no larger rank is ever needed.
    """
    return math.prod(shape) // max(shape)


def cp_factors(kernel, rank, n_iter_max=100, init="svd", random_state=0):
    """CP factors of a conv kernel `(kh, kw, S, T)`, for `CPConv2D`.

    Runs `tensorly.decomposition.parafac` (alternating least squares) on the
    4-D kernel with the numpy backend. The CP weights (lambda) are spread
    evenly over the four factors, so that every rank-one term has columns
    of equal norm in each factor: no factor ends up with a large scale that
    int8 quantization would clip.

    Args:
        kernel: Array `(kh, kw, S, T)`, a `Conv2D` kernel.
        rank: Integer in `[1, cp_full_rank(kernel.shape)]`, the CP rank R.
        n_iter_max: Maximum ALS iterations. Defaults to `100`.
        init: `"svd"` (deterministic) or `"random"`. Defaults to `"svd"`.
        random_state: Seed of the random initialization, and of the columns
            that `"svd"` fills randomly when R exceeds a mode's size.
            Defaults to `0`.

    Returns:
        `(U_s, U_h, U_w, U_t)`: float32 arrays `(S, R)`, `(kh, R)`,
        `(kw, R)` and `(T, R)`, with
        `kernel ~ einsum("sr,hr,wr,tr->hwst", U_s, U_h, U_w, U_t)`. Pass them
        to `CPConv2D.from_factors`.

    Raises:
        ValueError: If `kernel`, `rank`, `init` or `n_iter_max` is invalid.
        ImportError: If TensorLy is not installed; it comes with
            `pip install "tfcompress[decomposition]"`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> u_s, u_h, u_w, u_t = (rng.normal(size=(n, 2)) for n in (4, 3, 3, 5))
    >>> kernel = np.einsum("sr,hr,wr,tr->hwst", u_s, u_h, u_w, u_t)
    >>> factors = cp_factors(kernel, rank=2)
    >>> [f.shape for f in factors]
    [(4, 2), (3, 2), (3, 2), (5, 2)]
    >>> approx = np.einsum("sr,hr,wr,tr->hwst", *factors)
    >>> bool(np.linalg.norm(approx - kernel) < 1e-3 * np.linalg.norm(kernel))
    True
    """
    kernel = np.asarray(kernel, dtype="float64")
    if kernel.ndim != 4:
        raise ValueError(
            "`kernel` must be a 4-D conv kernel (kh, kw, S, T). "
            f"Received: kernel.shape={kernel.shape}"
        )
    rank = ranks.rank_at_most("rank", rank, cp_full_rank(kernel.shape))
    if init not in ("svd", "random"):
        raise ValueError(
            f'`init` must be "svd" or "random". Received: init={init!r}'
        )
    ranks.positive_rank("n_iter_max", n_iter_max)
    tensorly = import_tensorly("cp_factors")
    with tensorly.backend_context("numpy"), warnings.catch_warnings():
        # With "svd" init, a rank above a mode's size (e.g. R > kh) fills
        # the extra columns randomly, which TensorLy warns about: expected.
        warnings.filterwarnings(
            "ignore", message="Trying to compute SVD with n_eigenvecs"
        )
        weights, factors = tensorly.decomposition.parafac(
            kernel,
            rank,
            n_iter_max=n_iter_max,
            init=init,
            random_state=random_state,
        )
    u_h, u_w, u_s, u_t = _balanced(np.asarray(weights), factors)
    return tuple(f.astype("float32") for f in (u_s, u_h, u_w, u_t))


def _balanced(weights, factors):
    """Factors whose r-th columns all have norm `|term r| ** (1 / 4)`."""
    factors = [np.asarray(f, dtype="float64") for f in factors]
    norms = [np.linalg.norm(f, axis=0) for f in factors]
    scale = np.abs(weights) * np.prod(norms, axis=0)
    root = scale ** (1 / len(factors))
    balanced = []
    for i, (factor, norm) in enumerate(zip(factors, norms)):
        unit = np.divide(
            factor, norm, out=np.zeros_like(factor), where=norm > 0
        )
        if i == 0:
            unit = unit * np.sign(weights)
        balanced.append(unit * root)
    return balanced


def cp_kernel(input_factor, vertical_factor, horizontal_factor, output_factor):
    """The kernel `(kh, kw, S, T)` that CP factors stand for."""
    return np.einsum(
        "sr,hr,wr,tr->hwst",
        input_factor,
        vertical_factor,
        horizontal_factor,
        output_factor,
        optimize=True,  # Pairwise contractions, not one nested loop.
    )


class CPMethod(ranks.OneIntegerRank):
    """How `decompose` applies CP to a `Conv2D` layer.

    A rank is an integer R: the layer becomes a `CPConv2D` of rank R.
    """

    name = "cp"
    # ALS at large ranks is slow, and CP ranks above the MACs break-even
    # are of no use: `rank_selection`'s default grid stops there.
    stop_grid_at_break_even = True

    def unsupported(self, layer):
        return conv_layers.unsupported_conv(layer)

    def full_rank(self, layer):
        return cp_full_rank(tuple(layer.kernel.shape))

    def resolve_rank(self, layer, rank, argument="rank"):
        if ranks.is_fraction(rank):
            raise ValueError(
                f"A fraction of energy applies to the methods \"svd\" and "
                f"\"tucker2\"; CP needs an integer rank. Received: "
                f"{argument}={rank!r}"
            )
        return ranks.positive_rank(argument, rank)

    def macs(self, layer, input_shape, output_shape, rank):
        """MACs of one call of the `CPConv2D` (batch of one)."""
        _, height, width, in_channels = input_shape
        _, out_height, out_width, filters = output_shape
        kh, kw = layer.kernel_size
        return rank * (
            height * width * in_channels
            # The vertical pass strides rows only, over every input column.
            + out_height * width * kh
            + out_height * out_width * kw
            + out_height * out_width * filters
        )

    def decompose(self, layer, rank, options):
        """Returns `(CPConv2D, relative kernel error)`."""
        kernel = conv_layers.kernel(layer)
        factors = cp_factors(kernel, rank, **options)
        new_layer = CPConv2D.from_factors(
            *factors,
            bias=conv_layers.bias(layer),
            **conv_layers.replacement_kwargs(layer),
        )
        return new_layer, relative_error(cp_kernel(*factors), kernel)
