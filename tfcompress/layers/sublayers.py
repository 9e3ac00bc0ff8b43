"""Building the sublayers of a composite tfcompress layer."""


def build_in_sequence(layers, input_shape):
    """Builds `layers` as a chain fed with `input_shape`.

    Composite layers build their sublayers in `build()`, so that the
    weights exist before a `.keras` file's values are loaded into them.

    Returns:
        The output shape of the last layer.
    """
    shape = input_shape
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape
