import pytest

from tfcompress.models import small_mobilenet_v2


def test_small_mobilenet_v2_shapes_and_layers():
    model = small_mobilenet_v2((8, 8, 1), num_classes=10, width=16)
    assert tuple(model.output.shape) == (None, 10)
    names = [layer.__class__.__name__ for layer in model.layers]
    assert names.count("InvertedResidual") == 3
    assert "DepthwiseSeparableConv2D" in names


def test_small_mobilenet_v2_rejects_flat_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        small_mobilenet_v2((64,), num_classes=10)


def test_plain_cnn_counts():
    from tfcompress.analysis import profile
    from tfcompress.models import plain_cnn

    model = plain_cnn((28, 28, 1), num_classes=10)
    report = profile(model)
    # conv1 28*28*32*9, conv2 14*14*64*32*9, fc 3136*128, logits 128*10
    assert report.macs == 225_792 + 3_612_672 + 401_408 + 1_280
    assert report.params == 320 + 18_496 + 401_536 + 1_290
    with pytest.raises(ValueError, match="input_shape"):
        plain_cnn((28, 28), num_classes=10)
