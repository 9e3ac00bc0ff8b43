"""`profile` against the MACs published for Keras's applications at 224x224.

Each model is built once (weights=None, no download) and profiled only. The
published figures count multiply-adds of convolution and dense layers; they
agree with the conventions of `tfcompress.analysis.layer_costs` (batch
normalization folded, activations and element-wise ops 0) to within 2%.
"""

import keras
import pytest

from tfcompress.analysis import profile

SHAPE = (224, 224, 3)


def _relative_error(value, reference):
    return abs(value - reference) / reference


def _profiled(constructor, **kwargs):
    model = constructor(weights=None, input_shape=SHAPE, **kwargs)
    report = profile(model)
    assert report.unknown_macs == []
    assert report.params == model.count_params()
    return model, report


@pytest.fixture(scope="module")
def mobilenet_v2():
    return _profiled(keras.applications.MobileNetV2)


@pytest.fixture(scope="module")
def resnet50():
    return _profiled(keras.applications.ResNet50)


@pytest.fixture(scope="module")
def mobilenet_v3_small():
    return _profiled(keras.applications.MobileNetV3Small)


@pytest.fixture(scope="module")
def efficientnet_b0():
    return _profiled(keras.applications.EfficientNetB0)


def test_mobilenet_v2(mobilenet_v2):
    # Sandler et al. 2018, Table 8: 300 M multiply-adds.
    _, report = mobilenet_v2
    assert report.macs == 300_836_992
    assert _relative_error(report.macs, 300e6) < 0.02


def test_resnet50(resnet50):
    model, report = resnet50
    assert report.macs == 3_858_073_600
    # He et al. 2016, Table 1: 3.8 G multiply-adds for ResNet-50 v1, which
    # is what Keras builds: the first block of stages 3-5 strides its 1x1
    # convolution.
    assert model.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert _relative_error(report.macs, 3.8e9) < 0.02
    # The 4.09 G often quoted (torchvision) is ResNet-50 v1.5, which
    # strides the 3x3 convolution instead: the three 1x1 convolutions then
    # run at 4x the positions. The 3x3's cost is unchanged (its output
    # positions are), so v1.5 adds 3 / 4 of v1's cost for those three
    # convolutions, 3 * 28 * 28 * 256 * 128 each.
    v1_5_extra = sum(
        3 * size * size * in_channels * filters
        for size, in_channels, filters in (
            (28, 256, 128),
            (14, 512, 256),
            (7, 1024, 512),
        )
    )
    assert v1_5_extra == 231_211_008
    assert _relative_error(report.macs + v1_5_extra, 4.09e9) < 0.001


def test_mobilenet_v3_small(mobilenet_v3_small):
    model, report = mobilenet_v3_small
    # Keras's defaults: the full model (hard-swish, squeeze-excite) with
    # its input rescaling, which is element-wise (0 MACs), as hard-swish is.
    types = {type(layer).__name__ for layer in model.layers}
    assert "Rescaling" in types
    assert "GlobalAveragePooling2D" in types  # Squeeze-excite blocks.
    assert report.macs == 56_824_000
    # Howard et al. 2019, Table 3: 56 M multiply-adds (57 M in some model
    # zoos). 0.31 M of the count here are the accumulates of the
    # squeeze-excite and head pooling, which such tables often leave out.
    pooling = sum(
        row.macs
        for row in report.rows
        if row.layer_type == "GlobalAveragePooling2D"
    )
    assert pooling == 313_600
    assert _relative_error(report.macs, 56e6) < 0.02
    assert _relative_error(report.macs, 57e6) < 0.02


def test_efficientnet_b0(efficientnet_b0):
    _, report = efficientnet_b0
    # Tan and Le 2019, Table 2: 0.39 G FLOPs (multiply-adds).
    assert report.macs == 388_184_000
    assert _relative_error(report.macs, 390e6) < 0.02


def test_convnext_tiny():
    # LayerNormalization (3 MACs per element) and ConvNeXt's LayerScale
    # (element-wise, 0) are counted, nothing is unknown.
    model, report = _profiled(keras.applications.ConvNeXtTiny)
    def rows(layer_type):
        return [row for row in report.rows if row.layer_type == layer_type]

    # One per block (18), the stem, the three downsamplings and the head.
    assert len(rows("LayerNormalization")) == 23
    assert all(row.macs > 0 for row in rows("LayerNormalization"))
    assert [row.macs for row in rows("LayerScale")] == [0] * 18
    assert report.macs == 4_464_489_984
    # Liu et al. 2022, Table 1: 4.5 G FLOPs (multiply-adds).
    assert _relative_error(report.macs, 4.5e9) < 0.02
