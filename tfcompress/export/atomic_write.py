"""Writing a file so that a failure leaves the old one as it was."""

import os
import uuid


def write_atomically(path, write, check=None):
    """Runs `write(tmp_path)` and `check(tmp_path)`, then renames to `path`.

    The temporary file is a unique sibling of `path` (not `mkstemp`, whose
    0600 mode would stick to the final file), so that `os.replace` is an
    atomic rename on one filesystem. If `write` or `check` raises, the
    temporary file is removed and `path` is left as it was: the old file
    if there was one, no file otherwise.

    Args:
        path: The file to write.
        write: A callable that writes the file at the path it is given.
        check: A callable that reads the written file at the path it is
            given, and raises to refuse it. Defaults to `None`.

    Returns:
        `(content, checked)`: the file's bytes, and what `check` returned
        (`None` without `check`).

    Raises:
        Whatever `write` or `check` raises.

    Example:

    ```python
    def write(tmp_path):
        with open(tmp_path, "wb") as f:
            f.write(b"TFL3...")

    content, _ = write_atomically("model.tflite", write)
    ```
    """
    directory, basename = os.path.split(os.path.abspath(path))
    # The same extension as `path`: writers check it (Keras's `save` only
    # writes a path ending in `.keras`).
    extension = os.path.splitext(basename)[1] or ".tflite"
    tmp_path = os.path.join(
        directory, f".{basename}.{uuid.uuid4().hex}.tmp{extension}"
    )
    try:
        write(tmp_path)
        checked = check(tmp_path) if check is not None else None
        with open(tmp_path, "rb") as f:
            content = f.read()
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return content, checked
