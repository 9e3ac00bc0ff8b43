import keras
import numpy as np
import pytest

from tfcompress.layers import InvertedResidual


def test_residual_only_when_stride_one_and_channels_match():
    cases = [((16, 1), True), ((24, 1), False), ((16, 2), False)]
    for (filters, strides), expected in cases:
        block = InvertedResidual(filters, strides=strides)
        block.build((None, 8, 8, 16))
        assert block.uses_residual is expected


def test_residual_adds_the_input():
    block = InvertedResidual(8, expansion=2)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(block(x))
    # Zeroing the projection's batch-norm scale removes the branch: the
    # block must then return its input exactly.
    block.project_bn.gamma.assign(np.zeros(8, "float32"))
    block.project_bn.beta.assign(np.zeros(8, "float32"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x)), x)
    assert not np.allclose(y, x)


def test_parameter_count_and_expansion_one_skips_expand_conv():
    block = InvertedResidual(24, expansion=6, strides=2)
    block.build((None, 16, 16, 16))
    hidden = 16 * 6
    expected = (
        16 * hidden + 4 * hidden  # expand 1x1 + BN
        + 3 * 3 * hidden + 4 * hidden  # depthwise + BN
        + hidden * 24 + 4 * 24  # linear projection + BN
    )
    assert block.count_params() == expected
    assert tuple(block(np.zeros((1, 16, 16, 16), "float32")).shape) == (
        1, 8, 8, 24,
    )

    plain = InvertedResidual(16, expansion=1)
    plain.build((None, 8, 8, 16))
    assert plain.expand is None
    assert plain.count_params() == 3 * 3 * 16 + 4 * 16 + 16 * 16 + 4 * 16


def test_projection_is_linear():
    # Negative outputs survive: no activation after the projection.
    block = InvertedResidual(8, expansion=2)
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 4)).astype("float32")
    assert keras.ops.convert_to_numpy(block(x)).min() < 0


@pytest.mark.parametrize("expansion", [-1, 0, "6", True])
def test_invalid_expansion(expansion):
    with pytest.raises(ValueError, match="`expansion` must be a positive"):
        InvertedResidual(8, expansion=expansion)


def test_expansion_too_small_for_channels():
    with pytest.raises(ValueError, match="leaves no hidden channel"):
        InvertedResidual(8, expansion=0.1).build((None, 8, 8, 4))
