"""Accuracy of a `.tflite` file, measured through the LiteRT interpreter."""

import numpy as np

from tfcompress.litert.interpreter import LiteRTModel
from tfcompress.litert.tflite_file_path import tflite_file_path


def evaluate_tflite(path, x, y, batch_size=32, num_threads=None):
    """Computes the top-1 accuracy of a `.tflite` classifier on `(x, y)`.

    Runs the file in the LiteRT interpreter, so the number includes every
    effect of conversion and quantization: compare it with the Keras model's
    accuracy to see what the export cost.

    Args:
        path: Path to a `.tflite` file with one input and one output of
            shape `(N, num_classes)` (logits or probabilities), or the
            `TFLiteExport` that `to_tflite()` returned.
        x: Inputs, an array of shape `(N, *input_shape)`.
        y: Labels, either integers of shape `(N,)` (or `(N, 1)`) or one-hot
            of shape `(N, num_classes)`.
        batch_size: Examples per interpreter call, an integer >= 1.
            Defaults to `32`.
        num_threads: CPU threads for the interpreter. Defaults to `None`, the
            runtime's default.

    Returns:
        The top-1 accuracy, a Python float in `[0, 1]`.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If `x` and `y` differ in length, `y` is neither integer
            nor one-hot labels for the model's classes, or the model's
            output is not `(N, num_classes)`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    to_tflite(model, "model.tflite")
    x = np.random.rand(100, 4).astype("float32")
    y = np.random.randint(0, 3, size=100)
    accuracy = evaluate_tflite("model.tflite", x, y)  # e.g. 0.34
    ```
    """
    path = tflite_file_path(path)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            "`x` and `y` must hold the same number of examples. Received: "
            f"x.shape={x.shape}, y.shape={y.shape}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(
            "Expected `y` to be integer labels of shape (N,) or one-hot "
            f"labels of shape (N, num_classes). Received: y.shape={y.shape}"
        )

    predictions = LiteRTModel(path, num_threads=num_threads).predict(
        x, batch_size=batch_size
    )
    if predictions.ndim != 2 or predictions.shape[1] < 2:
        raise ValueError(
            "`evaluate_tflite` computes top-1 accuracy and needs a model "
            "output of shape (N, num_classes) with num_classes >= 2. "
            f"Received: output shape {predictions.shape} from path={path!r}"
        )
    num_classes = predictions.shape[1]
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise ValueError(
                f"One-hot `y` has {y.shape[1]} classes but the model outputs "
                f"{num_classes}. Received: y.shape={y.shape}"
            )
        labels = np.argmax(y, axis=-1)
    else:
        labels = y.astype(np.int64)
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"Integer labels in `y` must lie in [0, {num_classes - 1}] "
                f"for a model with {num_classes} outputs. Received: labels "
                f"from {labels.min()} to {labels.max()}"
            )
    return float(np.mean(np.argmax(predictions, axis=-1) == labels))
