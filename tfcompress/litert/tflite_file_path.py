"""The one way tfcompress reads a `.tflite` file argument."""

import os


def tflite_file_path(file, argument="path"):
    """Returns the path of an existing `.tflite` file, as a `str`.

    Every tfcompress function that takes a `.tflite` file takes it in
    either form this accepts: a path (`str` or `os.PathLike`), or the
    `TFLiteExport` that `tfcompress.export.to_tflite` returned (an
    `os.PathLike` whose path is its `.path`).

    Args:
        file: A path, or a `TFLiteExport`.
        argument: The name of the caller's argument, for error messages.
            Defaults to `"path"`.

    Returns:
        The path, a `str`.

    Raises:
        ValueError: If `file` is neither a path nor a `TFLiteExport`.
        FileNotFoundError: If there is no file at the path.

    Example:

    ```python
    export = to_tflite(model, "model.tflite")
    tflite_file_path(export)  # "model.tflite"
    tflite_file_path("model.tflite")  # "model.tflite"
    ```
    """
    try:
        path = os.fspath(file)
    except TypeError:
        raise ValueError(
            f"Expected `{argument}` to be the path of a `.tflite` file (a "
            "str or os.PathLike) or the `TFLiteExport` that to_tflite() "
            f"returned. Received: {argument} of type {type(file).__name__}"
        ) from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No `.tflite` file at `{argument}`. Received: {argument}={path!r}"
        )
    return path
