"""Truncated SVD of Dense kernels: exactness, the formula, energy ranks."""

import keras
import numpy as np
import pytest

from tfcompress.decomposition import decompose
from tfcompress.decomposition import energy_rank
from tfcompress.decomposition import svd_factors
from tfcompress.layers import LowRankDense


def kernel_with_singular_values(m, n, singular_values, seed=0):
    rng = np.random.default_rng(seed)
    left, _ = np.linalg.qr(rng.normal(size=(m, m)))
    right, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.zeros(min(m, n))
    s[: len(singular_values)] = singular_values
    return (left[:, : len(s)] * s) @ right[:, : len(s)].T


def test_full_rank_reproduces_the_dense_layer_exactly():
    rng = np.random.default_rng(0)
    dense = keras.layers.Dense(7, activation="relu")
    dense.build((None, 12))
    kernel, bias = rng.normal(size=(12, 7)), rng.normal(size=7)
    dense.set_weights([kernel, bias])
    u, v = svd_factors(kernel, 7)
    layer = LowRankDense.from_factors(u, v, bias=bias, activation="relu")
    x = rng.normal(size=(32, 12)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        keras.ops.convert_to_numpy(dense(x)),
        atol=1e-5,
    )
    np.testing.assert_allclose(u @ v, kernel, atol=1e-5)


def test_factors_are_the_truncated_svd_at_a_balanced_scale():
    kernel = np.random.default_rng(1).normal(size=(20, 9))
    a, s, b = np.linalg.svd(kernel, full_matrices=False)
    u, v = svd_factors(kernel, 3)
    np.testing.assert_allclose(u @ v, (a[:, :3] * s[:3]) @ b[:3], atol=1e-5)
    # Both factors carry sqrt(s): equal column / row norms.
    np.testing.assert_allclose(np.linalg.norm(u, axis=0), np.sqrt(s[:3]), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), np.sqrt(s[:3]), rtol=1e-5)


def test_decomposed_model_outputs_match_the_formula_before_fine_tuning():
    # A functional model with two Dense branches merged by Add: the
    # decomposed twin computes x @ (A_r S_r B_r) + b in each branch.
    rng = np.random.default_rng(2)
    inputs = keras.Input((24,))
    left = keras.layers.Dense(16, activation="relu", name="left")(inputs)
    right = keras.layers.Dense(16, name="right")(inputs)
    merged = keras.layers.Add(name="add")([left, right])
    outputs = keras.layers.Dense(4, name="head")(merged)
    model = keras.Model(inputs, outputs, name="branches")
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])

    new_model, report = decompose(model, method="svd", rank={"left": 3, "right": 5}, verbose=False)

    def truncated(name, rank):
        kernel, bias = model.get_layer(name).get_weights()
        a, s, b = np.linalg.svd(kernel, full_matrices=False)
        return (a[:, :rank] * s[:rank]) @ b[:rank], bias

    x = rng.normal(size=(10, 24)).astype("float32")
    k_left, b_left = truncated("left", 3)
    k_right, b_right = truncated("right", 5)
    head_kernel, head_bias = model.get_layer("head").get_weights()
    expected = (np.maximum(x @ k_left + b_left, 0) + x @ k_right + b_right) @ head_kernel + head_bias
    np.testing.assert_allclose(new_model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    assert [(row.name, row.rank, row.layer_type) for row in report.layers] == [
        ("left", 3, "LowRankDense"),
        ("right", 5, "LowRankDense"),
    ]
    # (24 + 16) r MACs instead of 24 * 16.
    assert [row.macs_after for row in report.layers] == [40 * 3, 40 * 5]
    assert report.macs_before == 2 * 24 * 16 + 16 * 4
    assert report.macs_after == 40 * 3 + 40 * 5 + 16 * 4


def test_energy_rank_picks_the_smallest_rank_reaching_the_energy():
    # Energies 16, 9, 4, 1 of 30: cumulative 0.533, 0.833, 0.967, 1.
    s = [4.0, 3.0, 2.0, 1.0]
    assert energy_rank(s, 0.5) == 1
    assert energy_rank(s, 16 / 30) == 1
    assert energy_rank(s, 0.8) == 2
    assert energy_rank(s, 0.84) == 3
    assert energy_rank(s, 0.97) == 4
    assert energy_rank(s, 1.0) == 4
    assert energy_rank([1.0, 3.0, 2.0, 4.0], 0.84) == 3  # order does not matter


def test_energy_fraction_as_rank_in_decompose():
    kernel = kernel_with_singular_values(40, 30, [4.0, 3.0, 2.0, 1.0])
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(30, name="dense")])
    model.get_layer("dense").set_weights([kernel, np.zeros(30)])
    _, report = decompose(model, method="svd", rank=0.9, verbose=False)
    (row,) = report.layers
    assert row.rank == 3
    # What is left is the energy of the smallest singular value, 1 of 30.
    assert row.kernel_error == pytest.approx(np.sqrt(1 / 30), rel=1e-4)


@pytest.mark.parametrize("energy", [0.0, 1.5, -0.2])
def test_invalid_energy(energy):
    with pytest.raises(ValueError, match=r"`energy` must be a fraction of energy to keep, a float in \(0, 1\]"):
        energy_rank([1.0], energy)


def test_svd_factors_rejects_bad_ranks():
    with pytest.raises(ValueError, match="`rank` must be at most the full rank 4. Received: rank=5"):
        svd_factors(np.ones((4, 6)), 5)
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1. Received: rank=0"):
        svd_factors(np.ones((4, 6)), 0)
