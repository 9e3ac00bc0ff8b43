"""decompose's default method="auto" on the zoo's CNNs, and the channel SVD
of convolutions (LowRankConv1D/2D)."""

import keras
import numpy as np
import pytest

from tfcompress.analysis import profile
from tfcompress.decomposition import decompose
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.layers import LowRankConv1D
from tfcompress.layers import LowRankConv2D
from tfcompress.models.zoo import zoo_model


@pytest.mark.parametrize(
    "name, methods",
    [
        ("kws_conv1d", {"channel_svd", "svd"}),
        ("mobilenet_v3_small", {"tucker2", "channel_svd", "svd"}),
        ("resnet50", {"tucker2", "channel_svd", "svd"}),
    ],
)
def test_auto_reaches_half_the_macs(name, methods):
    model = zoo_model(name, size="tiny")
    new_model, report = decompose(model, target_macs_ratio=0.5, verbose=False)
    ratio = profile(new_model).macs / profile(model).macs
    assert report.macs_ratio == pytest.approx(ratio)
    assert 0.4 < ratio <= 0.5, ratio
    assert {row.method for row in report.rows} == methods
    assert tuple(new_model.outputs[0].shape) == tuple(model.outputs[0].shape)


@pytest.mark.parametrize(
    "conv, layer_class",
    [
        (keras.layers.Conv1D(16, 3, strides=2, padding="same"), LowRankConv1D),
        (keras.layers.Conv2D(16, 3, dilation_rate=2), LowRankConv2D),
    ],
)
def test_channel_svd_of_a_rank_2_kernel_is_exact(conv, layer_class):
    shape = (12, 8) if isinstance(conv, keras.layers.Conv1D) else (9, 9, 8)
    inputs = keras.Input(shape)
    x = keras.layers.ReLU()(inputs)
    model = keras.Model(inputs, conv(x))
    rng = np.random.default_rng(0)
    kernel_shape = tuple(conv.kernel.shape)
    matrix = rng.normal(size=(np.prod(kernel_shape[:-1]), 2)) @ rng.normal(
        size=(2, 16)
    )
    conv.kernel.assign(matrix.reshape(kernel_shape).astype("float32"))
    new_model, report = decompose(
        model, method="channel_svd", rank=2, verbose=False
    )
    layer = new_model.get_layer(conv.name)
    assert type(layer) is layer_class
    assert report.rows[0].kernel_error < 1e-5
    assert report.macs_after < report.macs_before
    x = rng.normal(size=(4, *shape)).astype("float32")
    np.testing.assert_allclose(
        new_model.predict(x, verbose=0),
        model.predict(x, verbose=0),
        atol=1e-4,
    )


def test_auto_names_why_a_grouped_convolution_is_skipped():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, groups=2, name="grouped")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(8, 1, name="pw")(x))
    _, report = decompose(model, rank=2, verbose=False)
    assert [row.name for row in report.rows] == ["pw"]
    assert "grouped convolution (groups=2)" in report.skipped[0].reason


def test_separable_conv_pointwise_svd_is_exact_at_low_rank(tmp_path):
    inputs = keras.Input((9, 9, 8))
    conv = keras.layers.SeparableConv2D(16, 3, depth_multiplier=2, name="sep")
    model = keras.Model(inputs, conv(inputs))
    rng = np.random.default_rng(0)
    pointwise = rng.normal(size=(16, 2)) @ rng.normal(size=(2, 16))
    conv.pointwise_kernel.assign(pointwise[None, None].astype("float32"))
    new_model, report = decompose(model, rank=2, verbose=False)
    assert type(new_model.get_layer("sep")).__name__ == "LowRankSeparableConv2D"
    assert report.rows[0].method == "channel_svd"
    assert report.macs_after == profile(new_model).macs < report.macs_before
    x = rng.normal(size=(2, 9, 9, 8)).astype("float32")
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(new_model.predict(x, verbose=0), expected, atol=1e-4)
    new_model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(
        keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0),
        expected,
        atol=1e-4,
    )
    exported = to_tflite(new_model, tmp_path / "m.tflite", verbose=False)
    np.testing.assert_allclose(
        LiteRTModel(exported).predict(x), expected, rtol=1e-4, atol=1e-4
    )
