"""CP of conv kernels: error vs rank, exactness, the formula, errors."""

import keras
import numpy as np
import pytest

from tfcompress.decomposition import cp_factors
from tfcompress.decomposition import cp_full_rank
from tfcompress.decomposition import cp_kernel
from tfcompress.decomposition import decompose
from tfcompress.layers import CPConv2D


def relative(approx, reference):
    return np.linalg.norm(approx - reference) / np.linalg.norm(reference)


def test_reconstruction_error_falls_as_rank_rises(trained_cnn):
    kernel = trained_cnn.get_layer("conv2").get_weights()[0]  # (3, 3, 16, 32)
    errors = [relative(cp_kernel(*cp_factors(kernel, rank)), kernel) for rank in (2, 4, 8, 16, 64)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] < 1.0 and errors[-1] < 0.5 * errors[0], errors


def test_recovers_a_kernel_of_that_rank():
    rng = np.random.default_rng(0)
    factors = [rng.normal(size=(n, 3)) for n in (6, 3, 3, 5)]
    kernel = cp_kernel(*factors)
    assert relative(cp_kernel(*cp_factors(kernel, 3, n_iter_max=500)), kernel) < 1e-3


def test_factors_are_balanced_across_the_four_modes():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 8, 12))
    factors = cp_factors(kernel, 5)
    norms = np.array([np.linalg.norm(f, axis=0) for f in factors])  # (4, R)
    np.testing.assert_allclose(norms, np.broadcast_to(norms[0], norms.shape), rtol=1e-4)


def test_same_seed_same_factors_and_random_init():
    kernel = np.random.default_rng(2).normal(size=(3, 3, 4, 6))
    for first, second in zip(cp_factors(kernel, 4), cp_factors(kernel, 4)):
        np.testing.assert_array_equal(first, second)
    random_init = cp_factors(kernel, 4, init="random", random_state=1)
    assert relative(cp_kernel(*random_init), kernel) < 1.0


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "same"), (1, "valid"), (2, "valid")])
def test_decomposed_conv_equals_conv_with_the_cp_kernel(strides, padding):
    # The formula: the CPConv2D in the new model computes a Conv2D with
    # kernel einsum("sr,hr,wr,tr->hwst", U_s, U_h, U_w, U_t) and the
    # original bias, activation, strides and padding.
    rng = np.random.default_rng(3)
    model = keras.Sequential(
        [
            keras.Input((9, 9, 6)),
            keras.layers.Conv2D(10, 3, strides=strides, padding=padding, activation="relu", name="conv"),
        ]
    )
    kernel, bias = rng.normal(size=(3, 3, 6, 10)), rng.normal(size=10)
    model.get_layer("conv").set_weights([kernel, bias])
    new_model, report = decompose(model, method="cp", rank=4, verbose=False)
    layer = new_model.get_layer("conv")
    assert isinstance(layer, CPConv2D)
    assert (layer.rank, layer.strides, layer.padding) == (4, (strides, strides), padding)
    approx_kernel = cp_kernel(*layer.factors())
    reference = keras.layers.Conv2D(10, 3, strides=strides, padding=padding, activation="relu")
    reference.build((None, 9, 9, 6))
    reference.set_weights([approx_kernel, bias])
    x = rng.normal(size=(4, 9, 9, 6)).astype("float32")
    np.testing.assert_allclose(
        new_model.predict(x, verbose=0), keras.ops.convert_to_numpy(reference(x)), atol=1e-4
    )
    (row,) = report.layers
    assert row.kernel_error == pytest.approx(relative(approx_kernel, kernel), rel=1e-4)
    assert 0 < row.kernel_error < 1


def test_full_rank_bound():
    assert cp_full_rank((3, 3, 16, 32)) == 3 * 3 * 16
    with pytest.raises(ValueError, match="`rank` must be at most the full rank 144. Received: rank=145"):
        cp_factors(np.ones((3, 3, 16, 32)), 145)


def test_bad_arguments():
    kernel = np.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1. Received: rank=0"):
        cp_factors(kernel, 0)
    with pytest.raises(ValueError, match='`init` must be "svd" or "random". Received: init=\'hosvd\''):
        cp_factors(kernel, 2, init="hosvd")
    with pytest.raises(ValueError, match=r"must be a 4-D conv kernel \(kh, kw, S, T\)"):
        cp_factors(np.ones((3, 3)), 2)
