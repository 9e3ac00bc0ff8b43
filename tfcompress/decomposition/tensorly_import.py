"""TensorLy, imported when CP or Tucker-2 first needs it.

TensorLy is an optional dependency (the `decomposition` extra): SVD, every
layer and the rest of tfcompress work without it, so nothing imports it
until a CP or Tucker-2 factorization runs.
"""

import importlib

INSTALL_COMMAND = 'pip install "tfcompress[decomposition]"'


def import_tensorly(feature):
    """Returns the `tensorly` module, with `tensorly.decomposition` loaded.

    Args:
        feature: What needs TensorLy, for the error message (e.g.
            `"cp_factors"`).

    Returns:
        The `tensorly` module; `tensorly.decomposition` is imported too.

    Raises:
        ImportError: If TensorLy is not installed. The message names the
            extra that installs it.

    Example:

    >>> tensorly = import_tensorly("cp_factors")
    >>> callable(tensorly.decomposition.parafac)
    True
    """
    try:
        tensorly = importlib.import_module("tensorly")
        importlib.import_module("tensorly.decomposition")
    except ImportError as error:
        raise ImportError(
            f"{feature} needs TensorLy, which is not installed. Install "
            f"it with: {INSTALL_COMMAND} (SVD works without it)."
        ) from error
    return tensorly
