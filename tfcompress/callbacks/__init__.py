"""Callbacks to add to `model.fit`.

Magnitude pruning, quantization-aware training and distillation callbacks
will live here; none ships yet (see the README's roadmap).
"""

__all__ = []
