"""Callbacks to add to `model.fit`.

- `MagnitudePruning`: unstructured or N:M pruning following a schedule,
  on an ordinary Keras 3 model (nothing wrapped).
"""

from tfcompress.callbacks.magnitude_pruning import MagnitudePruning

__all__ = ["MagnitudePruning"]
