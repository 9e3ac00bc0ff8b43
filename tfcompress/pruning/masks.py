"""Pruning masks from importance scores: the maths, in plain numpy.

The `MagnitudePruning` callback decides when to prune and on which weights;
these functions decide which entries of one weight tensor become zero, and
`kernel_masks.KernelMask` keeps that decision on a live kernel. They are
pure functions of arrays, so they are tested on their own.
"""

import numpy as np

IMPORTANCE_MEASURES = ("magnitude", "taylor")


def importance_scores(weight, gradient=None):
    """Per-entry importance: `|w|`, or `|w * dL/dw|` when given a gradient.

    `|w * g|` is the first-order Taylor estimate of how much the loss
    changes when the entry is set to zero (Molchanov et al. 2017): a large
    weight the loss does not depend on can go before a small one it does.

    Args:
        weight: Array of the weight's values.
        gradient: Optional array of the loss gradient (same shape), e.g.
            accumulated over a few batches.

    Returns:
        A float64 array of the weight's shape.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if gradient is None:
        return np.abs(weight)
    gradient = np.asarray(gradient, dtype=np.float64)
    if gradient.shape != weight.shape:
        raise ValueError(
            f"The gradient's shape {gradient.shape} differs from the "
            f"weight's {weight.shape}."
        )
    return np.abs(weight * gradient)


def pruned_count(size, sparsity):
    """How many of `size` entries a `sparsity` prunes: `round(sparsity * size)`.

    Rounding (not flooring) keeps the achieved sparsity within half a
    weight of the target.
    """
    return int(np.floor(sparsity * size + 0.5))


def magnitude_mask(importance, sparsity, mask=None):
    """Mask zeroing exactly the `round(sparsity * n)` least important entries.

    Entries already pruned (`mask == 0`) count as least important, so masks
    only grow while the target sparsity rises; ties are broken by position,
    never by pruning more entries than asked.

    Args:
        importance: Array of importance scores (see `importance_scores`).
        sparsity: Target fraction of zeros, in [0, 1].
        mask: Optional current mask (1 keep, 0 pruned) of the same shape.

    Returns:
        A float32 array of 0s and 1s of the shape of `importance`.

    Example:

    >>> magnitude_mask(np.array([0.3, -2.0, 0.1, 1.0]), 0.5)
    array([0., 1., 0., 1.], dtype=float32)
    """
    scores = np.abs(np.asarray(importance, dtype=np.float64)).ravel().copy()
    if mask is not None:
        scores[np.asarray(mask).ravel() == 0] = -np.inf
    k = pruned_count(scores.size, sparsity)
    result = np.ones(scores.size, dtype=np.float32)
    if k > 0:
        # A stable sort makes ties deterministic (lowest index pruned first).
        result[np.argsort(scores, kind="stable")[:k]] = 0.0
    return result.reshape(np.shape(importance))


def m_by_n_mask(importance, m_by_n=(2, 4), channel_axis=-2, mask=None):
    """Mask with at least `m` zeros in every `n` consecutive input channels.

    The N:M pattern sparse hardware and kernels read (2:4 keeps 2 of every 4
    values): groups of `n` consecutive input channels, for each output
    channel and kernel position, each keep their `n - m` most important
    entries. The input-channel axis is the innermost axis of TFLite's weight
    layout (`[out, h, w, in]` for Conv2D, `[out, in]` for Dense), the axis
    tfmot's `sparsity_m_by_n` also uses. A last group shorter than `n` is
    treated as padded with zeros, so it keeps up to `n - m` entries.

    Args:
        importance: Array of importance scores.
        m_by_n: `(m, n)`: `m` zeros in every `n` consecutive values, with
            `0 <= m < n`. Defaults to `(2, 4)`.
        channel_axis: Axis of the input channels: `0` for a Dense kernel
            `(in, out)`, `-2` for a Conv kernel `(..., in, out)`. Defaults
            to `-2`.
        mask: Optional current mask; pruned entries stay pruned.

    Returns:
        A float32 array of 0s and 1s of the shape of `importance`.

    Example:

    >>> kernel = np.array([[0.1], [0.9], [-0.5], [0.2], [0.3], [0.4]])
    >>> m_by_n_mask(kernel, (2, 4), channel_axis=0).ravel()
    array([0., 1., 1., 0., 1., 1.], dtype=float32)
    """
    m, n = validate_m_by_n(m_by_n)
    scores = np.abs(np.asarray(importance, dtype=np.float64)).copy()
    if mask is not None:
        scores[np.asarray(mask) == 0] = -np.inf
    scores = np.moveaxis(scores, channel_axis, -1)
    shape = scores.shape
    channels = shape[-1]
    groups = -(-channels // n)
    padded = np.full((*shape[:-1], groups * n), -np.inf)
    padded[..., :channels] = scores
    padded = padded.reshape(*shape[:-1], groups, n)
    # Padding counts as zeros (pruned first), as sparse kernels pad a short
    # last group with zeros; it then keeps up to n - m real entries.
    order = np.argsort(padded, axis=-1, kind="stable")
    result = np.ones(padded.shape, dtype=np.float32)
    np.put_along_axis(result, order[..., :m], 0.0, axis=-1)
    result = result.reshape(*shape[:-1], groups * n)[..., :channels]
    return np.moveaxis(result, -1, channel_axis)


def validate_m_by_n(m_by_n):
    """Checks `(m, n)`: integers with `0 <= m < n`; returns them."""
    valid = (
        isinstance(m_by_n, (tuple, list))
        and len(m_by_n) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in m_by_n
        )
        and 0 <= m_by_n[0] < m_by_n[1]
    )
    if not valid:
        raise ValueError(
            "`sparsity_m_by_n` must be a pair of integers (m, n) with "
            "0 <= m < n: m zeros in every n consecutive input channels, "
            f"e.g. (2, 4). Received: sparsity_m_by_n={m_by_n!r}"
        )
    return int(m_by_n[0]), int(m_by_n[1])
