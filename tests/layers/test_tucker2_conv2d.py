import keras
import numpy as np
import pytest

from tfcompress.analysis import profile
from tfcompress.layers import Tucker2Conv2D


def random_factors(s=5, kh=3, kw=3, t=7, ranks=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(s, ranks[0]), (kh, kw, *ranks), (t, ranks[1])]
    return [rng.normal(size=shape).astype("float32") for shape in shapes]


@pytest.mark.parametrize(
    "strides, padding, kernel",
    [(1, "same", (3, 3)), (2, "same", (3, 3)), (1, "valid", (3, 5)), (2, "valid", (3, 3))],
)
def test_from_factors_equals_conv2d_with_the_tucker2_kernel(strides, padding, kernel):
    factors = random_factors(kh=kernel[0], kw=kernel[1])
    bias = np.arange(7, dtype="float32")
    layer = Tucker2Conv2D.from_factors(
        *factors, bias=bias, strides=strides, padding=padding, activation="relu"
    )
    u_in, core, u_out = factors
    dense_kernel = np.einsum("hwab,sa,tb->hwst", core, u_in, u_out)
    np.testing.assert_allclose(layer.full_kernel(), dense_kernel, rtol=1e-5, atol=1e-5)
    conv = keras.layers.Conv2D(7, kernel, strides=strides, padding=padding, activation="relu")
    conv.build((None, 11, 11, 5))
    conv.set_weights([dense_kernel, bias])
    x = np.random.default_rng(1).normal(size=(2, 11, 11, 5)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        keras.ops.convert_to_numpy(conv(x)),
        atol=1e-4,
    )
    assert layer.compute_output_shape((2, 11, 11, 5)) == conv.compute_output_shape((2, 11, 11, 5))


def test_factors_round_trip():
    factors = random_factors()
    layer = Tucker2Conv2D.from_factors(*factors)
    for given, read in zip(factors, layer.factors()):
        np.testing.assert_array_equal(given, read)
    assert (layer.filters, layer.kernel_size, layer.ranks, layer.use_bias) == (7, (3, 3), (3, 4), False)


def test_parameter_count():
    layer = Tucker2Conv2D(64, 3, ranks=(8, 16))
    layer.build((None, 16, 16, 32))
    assert layer.count_params() == 32 * 8 + 3 * 3 * 8 * 16 + 16 * 64 + 64
    square = Tucker2Conv2D(64, 3, ranks=8)
    assert square.ranks == (8, 8)


def test_profile_counts_the_three_convolutions():
    inputs = keras.Input((12, 12, 6))
    outputs = Tucker2Conv2D(10, 3, ranks=(4, 5), strides=2, padding="same", name="tucker")(inputs)
    report = profile(keras.Model(inputs, outputs))
    rows = {row.name: row for row in report.rows}
    # 1x1 at the input resolution, 3x3 core at stride 2 (6x6 out), 1x1 out.
    expected = 12 * 12 * 6 * 4 + 6 * 6 * 3 * 3 * 4 * 5 + 6 * 6 * 5 * 10
    assert rows["tucker"].macs == expected
    assert report.macs == expected
    assert report.unknown_macs == []
    # The ranks show as the channels of the projections.
    assert rows["tucker/input_projection"].output_shape == (None, 12, 12, 4)
    assert rows["tucker/core"].output_shape == (None, 6, 6, 5)


@pytest.mark.parametrize("ranks", [0, (4, 0), (2, 3, 4), 1.5])
def test_invalid_ranks(ranks):
    with pytest.raises(ValueError, match="`ranks` must be an integer >= 1 or a tuple of 2"):
        Tucker2Conv2D(8, 3, ranks=ranks)


def test_from_factors_rejects_mismatched_shapes():
    u_in, core, u_out = random_factors()
    with pytest.raises(ValueError, match="Tucker-2 factors must be"):
        Tucker2Conv2D.from_factors(u_in[:, :2], core, u_out)
    with pytest.raises(ValueError, match="`ranks` follows from the factors"):
        Tucker2Conv2D.from_factors(u_in, core, u_out, ranks=(3, 4))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(7,\)"):
        Tucker2Conv2D.from_factors(u_in, core, u_out, bias=np.zeros(3))
