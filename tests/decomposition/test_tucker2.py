"""Tucker-2 of conv kernels: exact at full ranks, the formula, energy."""

import keras
import numpy as np
import pytest

from tfcompress.decomposition import decompose
from tfcompress.decomposition import energy_rank
from tfcompress.decomposition import tucker2_factors
from tfcompress.decomposition import tucker2_full_ranks
from tfcompress.decomposition import tucker2_kernel
from tfcompress.layers import Tucker2Conv2D


def relative(approx, reference):
    return np.linalg.norm(approx - reference) / np.linalg.norm(reference)


def test_full_ranks_reproduce_the_conv_exactly(trained_cnn):
    conv = trained_cnn.get_layer("conv2")  # 3x3, 16 -> 32, stride 2, "same"
    kernel, bias = conv.get_weights()
    assert tucker2_full_ranks(kernel.shape) == (16, 32)
    factors = tucker2_factors(kernel, (16, 32))
    np.testing.assert_allclose(tucker2_kernel(*factors), kernel, atol=1e-5)
    layer = Tucker2Conv2D.from_factors(*factors, bias=bias, strides=2, padding="same", activation="relu")
    x = np.random.default_rng(0).normal(size=(8, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(conv(x)), atol=1e-5
    )


def test_projections_are_orthonormal_and_error_falls_with_rank(trained_cnn):
    kernel = trained_cnn.get_layer("conv3").get_weights()[0]  # (3, 3, 32, 32)
    errors = []
    for rank in (2, 4, 8, 16, 32):
        u_in, core, u_out = tucker2_factors(kernel, rank)
        np.testing.assert_allclose(u_in.T @ u_in, np.eye(rank), atol=1e-5)
        np.testing.assert_allclose(u_out.T @ u_out, np.eye(rank), atol=1e-5)
        errors.append(relative(tucker2_kernel(u_in, core, u_out), kernel))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-5


@pytest.mark.parametrize("strides, padding", [(1, "same"), (2, "valid")])
def test_decomposed_conv_equals_conv_with_the_tucker2_kernel(strides, padding):
    rng = np.random.default_rng(1)
    model = keras.Sequential(
        [
            keras.Input((9, 9, 8)),
            keras.layers.Conv2D(12, 3, strides=strides, padding=padding, name="conv"),
        ]
    )
    kernel, bias = rng.normal(size=(3, 3, 8, 12)), rng.normal(size=12)
    model.get_layer("conv").set_weights([kernel, bias])
    new_model, report = decompose(model, method="tucker2", rank=(3, 5), verbose=False)
    layer = new_model.get_layer("conv")
    assert isinstance(layer, Tucker2Conv2D) and layer.ranks == (3, 5)
    approx_kernel = tucker2_kernel(*layer.factors())
    np.testing.assert_allclose(layer.full_kernel(), approx_kernel, atol=1e-5)
    reference = keras.layers.Conv2D(12, 3, strides=strides, padding=padding)
    reference.build((None, 9, 9, 8))
    reference.set_weights([approx_kernel, bias])
    x = rng.normal(size=(4, 9, 9, 8)).astype("float32")
    np.testing.assert_allclose(
        new_model.predict(x, verbose=0), keras.ops.convert_to_numpy(reference(x)), atol=1e-4
    )
    (row,) = report.layers
    assert row.rank == (3, 5)
    assert row.kernel_error == pytest.approx(relative(approx_kernel, kernel), rel=1e-4)


def test_energy_fractions_apply_to_each_channel_mode():
    kernel = np.random.default_rng(2).normal(size=(3, 3, 8, 12))
    model = keras.Sequential([keras.Input((6, 6, 8)), keras.layers.Conv2D(12, 3, name="conv")])
    model.get_layer("conv").set_weights([kernel, np.zeros(12)])
    _, report = decompose(model, method="tucker2", rank=(0.9, 0.5), verbose=False)
    s_in = np.linalg.svd(np.moveaxis(kernel, 2, 0).reshape(8, -1), compute_uv=False)
    s_out = np.linalg.svd(np.moveaxis(kernel, 3, 0).reshape(12, -1), compute_uv=False)
    expected = (energy_rank(s_in, 0.9), energy_rank(s_out, 0.5))
    assert report.layers[0].rank == expected
    assert expected[0] < 8 and expected[1] < 12


def test_bad_ranks():
    kernel = np.ones((3, 3, 4, 6))
    with pytest.raises(ValueError, match="`r_in` must be at most the full rank 4. Received: r_in=5"):
        tucker2_factors(kernel, (5, 2))
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1. Received: rank=0"):
        tucker2_factors(kernel, (0, 2))
    with pytest.raises(ValueError, match=r"or a pair \(r_in, r_out\) of them. Received: rank=\(1, 2, 3\)"):
        tucker2_factors(kernel, (1, 2, 3))
