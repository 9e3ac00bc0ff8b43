"""Sample data for calibration: batches in, single examples out, checked
against the model's inputs."""

import itertools

import numpy as np
import tensorflow as tf


def _model_inputs(model):
    """Returns the model's symbolic inputs, or `None` if it has none."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def calibration_examples(model, data, calibration_steps):
    """Normalizes `to_tflite`'s `data` for the TFLite converter.

    The first batch is read and checked here, before any conversion
    starts; later batches are checked as the converter reads them.

    Args:
        model: The built Keras model to export.
        data: Calibration inputs: an array of shape `(N, *input_shape)`
            (a list or tuple of arrays, one per input, for a multi-input
            model); a `tf.data.Dataset` of batches of `x` or of `(x, y)`;
            or an iterable, or a callable returning one, that yields
            batches of `x` or `(x, y)` (or single examples).
        calibration_steps: The number of examples to yield at most.

    Returns:
        A zero-argument callable (the converter's `representative_dataset`)
        that yields one example at a time, as a list with one
        `(1, *input_shape)` array per input (a dict keyed by input name for
        multi-input models: the converter's input order is not the
        model's), stopping after `calibration_steps` examples.

    Raises:
        ValueError: If `data` is of an unsupported type, empty, or does not
            match the model's inputs; the message shows the shapes.

    Example:

    ```python
    examples = calibration_examples(model, x_train[:500], 100)
    first = next(examples())  # [array of shape (1, *input_shape)]
    ```
    """
    inputs = _model_inputs(model)
    if inputs is None:
        names, dtypes, shapes = None, ["float32"], None
    else:
        names = [t.name for t in inputs]
        dtypes = [t.dtype for t in inputs]
        shapes = [tuple(t.shape[1:]) for t in inputs]
    num_inputs = len(dtypes)

    batches = _batches(data, num_inputs)
    try:
        first = next(batches)
    except StopIteration:
        raise ValueError(
            "`data` is empty: it yielded no examples. Pass a few hundred "
            "training examples. Received: data of type "
            f"{type(data).__name__}"
        ) from None
    first = _to_arrays(first, num_inputs, shapes, names)
    if len(first[0]) == 0:
        raise ValueError(
            "`data` is empty: its first batch has 0 examples. "
            "Pass a few hundred training examples. Received: "
            f"data with shape {first[0].shape}"
        )

    def generator():
        count = 0
        for batch in itertools.chain([first], batches):
            if batch is not first:
                batch = _to_arrays(batch, num_inputs, shapes, names)
            for i in range(len(batch[0])):
                example = [
                    np.asarray(x[i : i + 1], dtype=dtype)
                    for x, dtype in zip(batch, dtypes)
                ]
                if names is not None and num_inputs > 1:
                    yield dict(zip(names, example))
                else:
                    yield example
                count += 1
                if count >= calibration_steps:
                    return

    return generator


def _batches(data, num_inputs):
    """Returns an iterator over the batches of `data`."""
    if isinstance(data, tf.data.Dataset):
        return iter(data.as_numpy_iterator())
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        return iter([[data]])
    if isinstance(data, (list, tuple)) and all(
        isinstance(x, np.ndarray) or tf.is_tensor(x) for x in data
    ):
        # One array per model input.
        if len(data) != num_inputs:
            raise ValueError(
                "A list or tuple of arrays as `data` is read as one array "
                f"per model input, and the model has "
                f"{num_inputs} input(s). Received: {len(data)} arrays of "
                f"shapes {[tuple(np.shape(x)) for x in data]}. For a "
                "single-input model, pass one array (not `(x, y)`); to pass "
                "batches, pass a generator."
            )
        return iter([list(data)])
    if callable(data):
        data = data()
    try:
        return iter(data)
    except TypeError:
        raise ValueError(
            "Expected `data` to be an array, a list of arrays "
            "(one per input), a `tf.data.Dataset`, or an iterable (or a "
            "callable returning one) of batches. Received: "
            f"data of type {type(data).__name__}"
        ) from None


def _to_arrays(batch, num_inputs, shapes, names):
    """Turns one batch (`x` or `(x, y)`) into a list of input arrays."""
    if isinstance(batch, (tuple, list)):
        if num_inputs == 1 or isinstance(batch[0], (tuple, list, dict)):
            batch = batch[0]  # (x, y), (x, y, w), or [x].
    if isinstance(batch, dict) and names is not None:
        missing = [name for name in names if name not in batch]
        if missing:
            raise ValueError(
                "`data` yielded a dict without the model "
                f"input(s) {missing}. Expected keys {names}. Received keys: "
                f"{list(batch)}"
            )
        batch = [batch[name] for name in names]
    if not isinstance(batch, (tuple, list)):
        batch = [batch]
    arrays = [np.asarray(x) for x in batch]
    if len(arrays) != num_inputs:
        raise ValueError(
            f"The model has {num_inputs} inputs, so each batch of "
            f"`data` must hold {num_inputs} arrays (or be an "
            f"`(x, y)` pair with such an `x`). Received: {len(arrays)} "
            f"array(s) of shapes {[a.shape for a in arrays]}"
        )
    if shapes is not None:
        if all(
            _shape_matches(a.shape, shape) for a, shape in zip(arrays, shapes)
        ):
            # Single examples (e.g. an unbatched dataset): add a batch axis.
            arrays = [a[None] for a in arrays]
        for i, (array, shape) in enumerate(zip(arrays, shapes)):
            _check_example_shape(array, shape, i, num_inputs)
    if any(a.ndim == 0 for a in arrays) or len({len(a) for a in arrays}) > 1:
        raise ValueError(
            "Each batch of `data` must hold arrays with a "
            "batch axis and the same number of examples. Received shapes: "
            f"{[a.shape for a in arrays]}"
        )
    return arrays


def _shape_matches(received, expected):
    """Whether `received` matches `expected`, where `None` matches any."""
    return len(received) == len(expected) and all(
        e is None or e == r for e, r in zip(expected, received)
    )


def _check_example_shape(array, shape, index, num_inputs):
    received = array.shape[1:]
    if not _shape_matches(received, shape):
        where = f"model input {index}" if num_inputs > 1 else "the model input"
        raise ValueError(
            "The examples in `data` do not match the shape of "
            f"{where}: expected per-example shape {shape} (batches of shape "
            f"{(None,) + tuple(shape)}). Received: a batch of shape "
            f"{array.shape}, i.e. per-example shape {received}. Pass "
            "training inputs as the model sees them."
        )
