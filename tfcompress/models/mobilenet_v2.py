"""A small MobileNetV2-style classifier built from tfcompress layers."""

import keras

from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual


def small_mobilenet_v2(
    input_shape,
    num_classes,
    width=16,
    expansion=4,
    dropout=0.0,
    momentum=0.9,
    name="small_mobilenet_v2",
):
    """Builds a compact MobileNetV2-style classifier for small images.

    A 3x3 stem convolution, one depthwise-separable block, then inverted
    residual blocks at widths `width`, `2 * width` (stride 2) and
    `2 * width`, global average pooling and a Dense classifier that outputs
    logits. Sized for 8x8 to 32x32 inputs (scikit-learn digits,
    Fashion-MNIST) so that it trains in seconds on a laptop CPU.

    Args:
        input_shape: Tuple `(height, width, channels)`.
        num_classes: Positive integer, number of classes.
        width: Positive integer, channels of the first blocks. Defaults to
            `16`.
        expansion: Expansion factor of the inverted residual blocks.
            Defaults to `4`.
        dropout: Dropout rate before the classifier. Defaults to `0.0`.
        momentum: Batch normalization momentum. Defaults to `0.9`, which
            lets the moving statistics settle within the few hundred steps
            of training on a small dataset (Keras's 0.99 needs thousands).
        name: Model name.

    Returns:
        A functional `keras.Model` producing logits.

    Example:

    >>> model = small_mobilenet_v2((8, 8, 1), num_classes=10)
    >>> tuple(model.output.shape)
    (None, 10)
    """
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(
        width, 3, padding="same", use_bias=False, name="stem"
    )(inputs)
    x = keras.layers.BatchNormalization(momentum=momentum, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    x = DepthwiseSeparableConv2D(width, momentum=momentum, name="separable")(x)
    block = dict(expansion=expansion, momentum=momentum)
    x = InvertedResidual(width, **block, name="block1")(x)
    x = InvertedResidual(2 * width, strides=2, **block, name="block2")(x)
    x = InvertedResidual(2 * width, **block, name="block3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
