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
