"""The mask maths: exact counts, monotone masks, the N:M pattern."""

import numpy as np
import pytest

from tfcompress.pruning import m_by_n_mask
from tfcompress.pruning import magnitude_mask
from tfcompress.pruning.masks import importance_scores
from tfcompress.pruning.masks import pruned_count


@pytest.mark.parametrize("size", [1, 7, 144, 1000, 4097])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.8, 0.95, 1.0])
def test_magnitude_mask_prunes_exactly_round_sparsity_times_size(
    size, sparsity
):
    w = np.random.default_rng(size).normal(size=size)
    mask = magnitude_mask(w, sparsity)
    zeros = size - int(mask.sum())
    assert zeros == pruned_count(size, sparsity)
    assert abs(zeros - sparsity * size) <= 0.5  # within half a weight
    if 0 < zeros < size:
        # Every pruned entry is no larger than every kept one.
        assert np.abs(w[mask == 0]).max() <= np.abs(w[mask == 1]).min()


def test_magnitude_mask_keeps_shape_and_breaks_ties_by_position():
    w = np.ones((2, 3))
    mask = magnitude_mask(w, 0.5)
    assert mask.shape == (2, 3) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask.ravel(), [0, 0, 0, 1, 1, 1])


def test_magnitude_mask_only_grows_from_the_current_mask():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32))
    first = magnitude_mask(w, 0.5)
    # Weights that regrew large must stay pruned: prune-then-grow is not
    # what a rising schedule asks for.
    regrown = np.where(first == 0, 10.0, w)
    second = magnitude_mask(regrown, 0.7, mask=first)
    assert np.all(second[first == 0] == 0)
    assert int((second == 0).sum()) == pruned_count(w.size, 0.7)


def test_importance_scores_taylor_is_abs_weight_times_gradient():
    w = np.array([2.0, -0.5, 1.0])
    g = np.array([0.0, 4.0, -1.0])
    np.testing.assert_array_equal(importance_scores(w), [2.0, 0.5, 1.0])
    np.testing.assert_array_equal(importance_scores(w, g), [0.0, 2.0, 1.0])
    # The large weight the loss ignores goes first under Taylor.
    np.testing.assert_array_equal(
        magnitude_mask(importance_scores(w, g), 1 / 3), [0, 1, 1]
    )
    with pytest.raises(ValueError, match="shape"):
        importance_scores(w, g[:2])


def _groups_along(mask, axis, n):
    moved = np.moveaxis(mask, axis, -1)
    channels = moved.shape[-1]
    return [moved[..., start : start + n] for start in range(0, channels, n)]


@pytest.mark.parametrize(
    "shape, axis", [((16, 8), 0), ((3, 3, 16, 8), -2), ((3, 3, 10, 4), -2)]
)
@pytest.mark.parametrize("m_by_n", [(2, 4), (1, 4), (3, 8)])
def test_m_by_n_mask_has_m_zeros_in_every_group_of_input_channels(
    shape, axis, m_by_n
):
    m, n = m_by_n
    w = np.random.default_rng(1).normal(size=shape)
    mask = m_by_n_mask(w, m_by_n, channel_axis=axis)
    assert mask.shape == shape
    for group in _groups_along(mask, axis, n):
        kept = group.sum(axis=-1)
        width = group.shape[-1]
        # Full groups keep exactly n - m; a short last group (10 channels
        # in groups of 4 or 8), padded with zeros, keeps up to n - m.
        expected = n - m if width == n else min(width, n - m)
        np.testing.assert_array_equal(kept, expected)
    # Within each group the kept entries are the largest ones.
    for g_mask, g_w in zip(
        _groups_along(mask, axis, n), _groups_along(np.abs(w), axis, n)
    ):
        kept_min = np.where(g_mask == 1, g_w, np.inf).min(axis=-1)
        pruned_max = np.where(g_mask == 0, g_w, -np.inf).max(axis=-1)
        assert np.all(pruned_max <= kept_min)


def test_m_by_n_mask_is_along_the_input_channels_not_the_outputs():
    # Dense kernel (in=4, out=2): groups run down each column.
    w = np.array([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0], [4.0, 6.0]])
    mask = m_by_n_mask(w, (2, 4), channel_axis=0)
    np.testing.assert_array_equal(mask, [[0, 1], [0, 1], [1, 0], [1, 0]])


@pytest.mark.parametrize("bad", [(4, 4), (2,), (-1, 4), (2.0, 4), "2:4"])
def test_m_by_n_mask_rejects_bad_patterns(bad):
    with pytest.raises(ValueError, match="sparsity_m_by_n"):
        m_by_n_mask(np.ones((8, 2)), bad, channel_axis=0)
