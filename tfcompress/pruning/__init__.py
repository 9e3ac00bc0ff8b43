"""Pruning for Keras 3.

- Schedules that say when to prune and how much, with tfmot's arguments and
  numbers: `ConstantSparsity`, `PolynomialDecay`.
- Pruning during `fit`: `tfcompress.callbacks.MagnitudePruning`, then
  `strip` for a plain copy and a `SparsityReport`.
- The mask maths on their own: `magnitude_mask`, `m_by_n_mask`.
"""

from tfcompress.pruning.masks import m_by_n_mask
from tfcompress.pruning.masks import magnitude_mask
from tfcompress.pruning.schedules import ConstantSparsity
from tfcompress.pruning.schedules import PolynomialDecay
from tfcompress.pruning.schedules import PruningSchedule
from tfcompress.pruning.sparsity_report import KernelSparsity
from tfcompress.pruning.sparsity_report import SparsityReport
from tfcompress.pruning.sparsity_report import sparsity_report
from tfcompress.pruning.strip import strip

__all__ = [
    "ConstantSparsity",
    "KernelSparsity",
    "PolynomialDecay",
    "PruningSchedule",
    "SparsityReport",
    "m_by_n_mask",
    "magnitude_mask",
    "sparsity_report",
    "strip",
]
