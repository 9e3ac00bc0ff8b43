"""Tucker-2 decomposition of a conv kernel into a `Tucker2Conv2D` (Kim et
al. 2016), computed by higher-order orthogonal iteration in TensorLy."""

import numbers

import numpy as np

from tfcompress.decomposition import conv_layers
from tfcompress.decomposition import ranks
from tfcompress.decomposition.fidelity import relative_error
from tfcompress.decomposition.svd import energy_rank
from tfcompress.decomposition.tensorly_import import import_tensorly
from tfcompress.layers.tucker2_conv2d import Tucker2Conv2D

# The channel modes of a (kh, kw, S, T) kernel.
_MODES = (2, 3)


def tucker2_full_ranks(shape):
    """`(r_in, r_out)` at which a Tucker-2 of a kernel `shape` is exact.

    The rank of the kernel's unfolding along each channel mode: at most
    the number of channels, and at most the size of the other modes.
    """
    kh, kw, s, t = shape
    return min(s, kh * kw * t), min(t, kh * kw * s)


def _unfold(kernel, mode):
    return np.moveaxis(kernel, mode, 0).reshape(kernel.shape[mode], -1)


def tucker2_factors(kernel, rank, n_iter_max=100, init="svd", random_state=0):
    """Tucker-2 factors of a conv kernel `(kh, kw, S, T)`.

    Runs `tensorly.decomposition.partial_tucker` on the two channel modes
    of the kernel, with the numpy backend. `U_in` and `U_out` have
    orthonormal columns; the core carries the scale.

    Args:
        kernel: Array `(kh, kw, S, T)`, a `Conv2D` kernel.
        rank: `(r_in, r_out)`, each an integer up to
            `tucker2_full_ranks(kernel.shape)` or a float in `(0, 1]` (the
            fraction of that mode's energy to keep); an integer or a float
            sets both.
        n_iter_max: Maximum iterations of HOOI. Defaults to `100`.
        init: `"svd"` (deterministic) or `"random"`. Defaults to `"svd"`.
        random_state: Seed of the random initialization. Defaults to `0`.

    Returns:
        `(U_in, core, U_out)`: float32 arrays `(S, r_in)`,
        `(kh, kw, r_in, r_out)` and `(T, r_out)`, with
        `kernel ~ einsum("hwab,sa,tb->hwst", core, U_in, U_out)`. Pass them
        to `Tucker2Conv2D.from_factors`.

    Raises:
        ValueError: If `kernel`, `rank`, `init` or `n_iter_max` is invalid.
        ImportError: If TensorLy is not installed; it comes with
            `pip install "tfcompress[decomposition]"`.

    Example:

    >>> kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 6))
    >>> u_in, core, u_out = tucker2_factors(kernel, (4, 6))  # full ranks
    >>> u_in.shape, core.shape, u_out.shape
    ((4, 4), (3, 3, 4, 6), (6, 6))
    >>> approx = np.einsum("hwab,sa,tb->hwst", core, u_in, u_out)
    >>> bool(np.allclose(approx, kernel, atol=1e-5))
    True
    """
    kernel = np.asarray(kernel, dtype="float64")
    if kernel.ndim != 4:
        raise ValueError(
            "`kernel` must be a 4-D conv kernel (kh, kw, S, T). "
            f"Received: kernel.shape={kernel.shape}"
        )
    rank_in, rank_out = _resolve(kernel, rank, "rank")
    if init not in ("svd", "random"):
        raise ValueError(
            f'`init` must be "svd" or "random". Received: init={init!r}'
        )
    full_in, full_out = tucker2_full_ranks(kernel.shape)
    ranks.rank_at_most("r_in", rank_in, full_in)
    ranks.rank_at_most("r_out", rank_out, full_out)
    ranks.positive_rank("n_iter_max", n_iter_max)
    tensorly = import_tensorly("tucker2_factors")
    with tensorly.backend_context("numpy"):
        (core, (u_in, u_out)), _ = tensorly.decomposition.partial_tucker(
            kernel,
            rank=[rank_in, rank_out],
            modes=list(_MODES),
            n_iter_max=n_iter_max,
            init=init,
            random_state=random_state,
        )
    return tuple(
        np.asarray(f).astype("float32") for f in (u_in, core, u_out)
    )



def _resolve(kernel, rank, argument):
    """`(r_in, r_out)` integers from an int, a float or a pair of them."""
    if isinstance(rank, (tuple, list)):
        if len(rank) != 2:
            raise ValueError(
                f"`{argument}` must be an integer, a float in (0, 1] or a "
                f"pair (r_in, r_out) of them. Received: {argument}={rank!r}"
            )
        pair = tuple(rank)
    else:
        pair = (rank, rank)
    resolved = []
    for mode, value in zip(_MODES, pair):
        if ranks.is_fraction(value):
            ranks.energy_fraction(argument, value)
            singular_values = np.linalg.svd(
                _unfold(kernel, mode), compute_uv=False
            )
            resolved.append(energy_rank(singular_values, value))
        elif isinstance(value, numbers.Integral):
            resolved.append(ranks.positive_rank(argument, value))
        else:
            raise ValueError(
                f"`{argument}` must be an integer >= 1, a float in (0, 1] "
                f"or a pair (r_in, r_out) of them. Received: "
                f"{argument}={rank!r}"
            )
    return tuple(resolved)


def tucker2_kernel(input_factor, core, output_factor):
    """The kernel `(kh, kw, S, T)` that Tucker-2 factors stand for."""
    # optimize=True contracts pairwise (tensordot): the naive loop takes
    # minutes on a 3x3x512x512 kernel.
    return np.einsum(
        "hwab,sa,tb->hwst", core, input_factor, output_factor, optimize=True
    )


class Tucker2Method:
    """How `decompose` applies Tucker-2 to a `Conv2D` layer.

    A rank is `(r_in, r_out)`, an integer for both, or energy fractions:
    the layer becomes a `Tucker2Conv2D` with those ranks.
    """

    name = "tucker2"
    stop_grid_at_break_even = False

    def unsupported(self, layer):
        return conv_layers.unsupported_conv(layer)

    def full_rank(self, layer):
        return tucker2_full_ranks(tuple(layer.kernel.shape))

    def resolve_rank(self, layer, rank, argument="rank"):
        return _resolve(conv_layers.kernel(layer), rank, argument)

    def exceeds_full_rank(self, layer, rank):
        return any(r > f for r, f in zip(rank, self.full_rank(layer)))

    def candidate_ranks(self, layer):
        # Both ranks grow together, in proportion to their full ranks.
        full_in, full_out = self.full_rank(layer)
        candidates = []
        for rank_in in range(1, full_in + 1):
            rank_out = min(
                full_out, max(1, round(rank_in * full_out / full_in))
            )
            if (rank_in, rank_out) not in candidates:
                candidates.append((rank_in, rank_out))
        return candidates

    def default_grid(self, layer):
        full_in, full_out = self.full_rank(layer)
        grid = []
        for rank in ranks.powers_of_two_up_to(max(full_in, full_out)):
            pair = (min(rank, full_in), min(rank, full_out))
            if pair not in grid:
                grid.append(pair)
        return grid

    def macs(self, layer, input_shape, output_shape, rank):
        """MACs of one call of the `Tucker2Conv2D` (batch of one)."""
        _, height, width, in_channels = input_shape
        _, out_height, out_width, filters = output_shape
        kh, kw = layer.kernel_size
        rank_in, rank_out = rank
        return (
            height * width * in_channels * rank_in
            + out_height * out_width * kh * kw * rank_in * rank_out
            + out_height * out_width * rank_out * filters
        )

    def decompose(self, layer, rank, options):
        """Returns `(Tucker2Conv2D, relative kernel error)`."""
        kernel = conv_layers.kernel(layer)
        factors = tucker2_factors(kernel, rank, **options)
        new_layer = Tucker2Conv2D.from_factors(
            *factors,
            bias=conv_layers.bias(layer),
            **conv_layers.replacement_kwargs(layer),
        )
        return new_layer, relative_error(tucker2_kernel(*factors), kernel)
