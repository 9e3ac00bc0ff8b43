"""A plain convolutional classifier: the baseline compression starts from."""

import keras


def plain_cnn(
    input_shape,
    num_classes,
    filters=(32, 64),
    dense_units=128,
    name="plain_cnn",
):
    """Builds a VGG-style CNN: conv 3x3 + ReLU + max-pool blocks, then Dense.

    The kind of model pruning and decomposition papers start from: dense
    3x3 convolutions and a large fully connected layer on the flattened
    features, with the redundancy those methods remove.

    Args:
        input_shape: Tuple `(height, width, channels)`.
        num_classes: Positive integer, number of classes.
        filters: Filters of each conv block (`conv1`, `conv2`, ...), each
            followed by 2x2 max pooling. Defaults to `(32, 64)`.
        dense_units: Units of the hidden Dense layer `fc`. Defaults to
            `128`.
        name: Model name.

    Returns:
        A functional `keras.Model` producing logits (layer `logits`).

    Example:

    >>> model = plain_cnn((28, 28, 1), num_classes=10)
    >>> [layer.name for layer in model.layers[1:4]]
    ['conv1', 'pool1', 'conv2']
    """
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for index, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(
            count, 3, padding="same", activation="relu", name=f"conv{index}"
        )(x)
        x = keras.layers.MaxPooling2D(name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
