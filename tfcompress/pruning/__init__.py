"""Pruning for Keras 3.

So far: the schedules that say when to prune and how much, with tfmot's
arguments and numbers (`ConstantSparsity`, `PolynomialDecay`). The pruning
callback, N:M sparsity and structured channel pruning are in progress.
"""

from tfcompress.pruning.schedules import ConstantSparsity
from tfcompress.pruning.schedules import PolynomialDecay
from tfcompress.pruning.schedules import PruningSchedule

__all__ = ["ConstantSparsity", "PolynomialDecay", "PruningSchedule"]
