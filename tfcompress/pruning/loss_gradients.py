"""The gradients that Taylor importance weighs weights by.

`MagnitudePruning(importance="taylor")` ranks a weight by `|w * dL/dw|`,
with `dL/dw` summed over a few batches of labelled examples; a custom
training loop can compute the same sums with `summed_loss_gradients`.
"""

import keras
import numpy as np

# The gradients need a tape; tfcompress runs on Keras's TensorFlow backend
# (the one TFLite export needs).
import tensorflow as tf

# Arrays are cut into batches of this many examples.
ARRAY_BATCH_SIZE = 128


def labelled_batches(data):
    """Yields `(x, y)` batches: from `(x, y)` arrays (cut into batches of
    `ARRAY_BATCH_SIZE`) or from an iterable of batches, such as a
    `tf.data.Dataset`."""
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        if isinstance(x, np.ndarray) or hasattr(x, "shape"):
            size = ARRAY_BATCH_SIZE
            for start in range(0, len(x), size):
                yield x[start : start + size], y[start : start + size]
            return
    yield from data


def summed_loss_gradients(model, variables, data, max_batches):
    """Sums of `dL/dw` over at most `max_batches` batches of `data`.

    The loss is the model's compiled loss, in inference mode.

    Args:
        model: A compiled Keras model.
        variables: The variables to differentiate the loss by.
        data: `(x, y)` arrays or an iterable of `(x, y)` batches.
        max_batches: Integer >= 1: how many batches to sum over.

    Returns:
        One NumPy array per variable, of its shape (zeros where the loss
        does not depend on it).

    Raises:
        ValueError: If `data` yields no batch.
    """
    totals = [np.zeros(v.shape) for v in variables]
    count = 0
    for batch in labelled_batches(data):
        if count == max_batches:
            break
        x, y = batch[0], batch[1]
        with tf.GradientTape() as tape:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        grads = tape.gradient(loss, variables)
        for total, grad in zip(totals, grads):
            if grad is not None:
                total += keras.ops.convert_to_numpy(grad)
        count += 1
    if count == 0:
        raise ValueError(
            "`importance_data` yielded no batch; pass (x, y) arrays or "
            "a non-empty dataset of (x, y) batches."
        )
    return totals
