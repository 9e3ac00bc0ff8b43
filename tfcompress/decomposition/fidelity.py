"""How close a decomposed layer stays to the original.

Two numbers, both relative Frobenius errors `||approx - ref|| / ||ref||`:
the kernel error of the factorization itself, and the output error of the
decomposed layer against the original on probe inputs (real activations
when data is given, random normal values otherwise). The output error is
what the rest of the model sees before any fine-tuning.
"""

import keras
import numpy as np

# Probes are few: a conv layer's input can be large.
RANDOM_PROBES = 8
MAX_DATA_PROBES = 256


def relative_error(approximation, reference):
    """`||approximation - reference|| / ||reference||` (Frobenius).

    Returns `0.0` when both are zero and `inf` when only the reference is.

    Example:

    >>> round(relative_error(np.array([3.0, 4.0]), np.array([3.0, 5.0])), 4)
    0.1715
    """
    approximation = np.asarray(approximation, dtype="float64")
    reference = np.asarray(reference, dtype="float64")
    difference = np.linalg.norm(approximation - reference)
    norm = np.linalg.norm(reference)
    if norm == 0:
        return 0.0 if difference == 0 else float("inf")
    return float(difference / norm)


def random_probes(input_shape, seed=0):
    """Standard normal inputs `(RANDOM_PROBES, *input_shape[1:])`."""
    if any(dim is None for dim in input_shape[1:]):
        raise ValueError(
            "Random probe inputs need a fully known layer input shape; pass "
            "`data=` to measure output errors on real inputs. Received: "
            f"input_shape={tuple(input_shape)}"
        )
    rng = np.random.default_rng(seed)
    shape = (RANDOM_PROBES, *input_shape[1:])
    return rng.standard_normal(shape).astype("float32")


def layer_inputs(model, layers, data):
    """The inputs each layer of `layers` receives when `model` runs `data`.

    Only the first `MAX_DATA_PROBES` examples are used: they measure the
    error well enough, and keep the activations of big layers in memory
    bounded.

    Args:
        model: A functional or Sequential model whose direct layers include
            `layers`.
        layers: List of layers of `model` (first call of each).
        data: Model inputs: an array, or a list of arrays for a model with
            several inputs.

    Returns:
        A list of numpy arrays, one per layer.
    """
    # A single input as a tensor, not a list of one: the structure the
    # data has, so that Keras does not warn about a mismatch.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    extractor = keras.Model(inputs, [layer.input for layer in layers])
    data = keras.tree.map_structure(
        lambda x: np.asarray(x)[:MAX_DATA_PROBES], data
    )
    # A direct call, not `predict`: `predict` traces a new function for
    # every extractor, which TensorFlow warns about when done repeatedly.
    outputs = extractor(data, training=False)
    if len(layers) == 1:
        outputs = [outputs]
    return [keras.ops.convert_to_numpy(output) for output in outputs]


def output_error(original, decomposed, inputs):
    """Relative error of `decomposed(inputs)` against `original(inputs)`."""
    reference = keras.ops.convert_to_numpy(original(inputs, training=False))
    approximation = keras.ops.convert_to_numpy(
        decomposed(inputs, training=False)
    )
    return relative_error(approximation, reference)
