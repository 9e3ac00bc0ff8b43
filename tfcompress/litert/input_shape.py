"""Input shape signatures of a `.tflite` file: how they read, what fits."""


def format_signature(signature):
    """Formats a shape signature as a Python tuple, `-1` as `None`.

    Args:
        signature: Dimensions, `-1` for one known only at run time (the
            interpreter's `shape_signature`).

    Returns:
        A string such as `"(None, 8, 8, 1)"` or `"(16,)"`.

    Example:

    ```python
    format_signature([-1, 28, 28, 1])  # "(None, 28, 28, 1)"
    ```
    """
    dims = ["None" if int(d) == -1 else str(int(d)) for d in signature]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(dims) + ")"


def check_input_shape(x, signature):
    """Checks that a batch `x` fits an input's shape signature.

    The batch dimension may be anything; the others must match where the
    signature fixes them.

    Args:
        x: An array of shape `(N, *input_shape)`.
        signature: The input's shape signature, batch first, `-1` for a
            dimension known only at run time.

    Raises:
        ValueError: If `x` has the wrong rank or a wrong per-example
            dimension; the message names both shapes.

    Example:

    ```python
    check_input_shape(np.zeros((5, 8, 8, 1)), [-1, 8, 8, 1])  # passes
    check_input_shape(np.zeros((5, 8, 8)), [-1, 8, 8, 1])  # ValueError
    ```
    """
    expected = signature[1:]
    received = list(x.shape[1:])
    matches = x.ndim == len(signature) and all(
        e == -1 or e == r for e, r in zip(expected, received)
    )
    if not matches:
        raise ValueError(
            "`x` does not match the model input: expected per-example shape "
            f"{format_signature(expected)} (model input shape "
            f"{format_signature(signature)}). "
            f"Received: x.shape={tuple(x.shape)}"
        )
