"""Pruning for Keras 3.

- Schedules that say when to prune and how much, with tfmot's arguments and
  numbers: `ConstantSparsity`, `PolynomialDecay`.
- Pruning during `fit`: `tfcompress.callbacks.MagnitudePruning`, then
  `strip` for a plain copy and a `SparsityReport`.
- The mask maths on their own: `magnitude_mask`, `m_by_n_mask`; a mask
  kept on a kernel through training (what the callback drives, usable in a
  custom training loop): `KernelMask`, `release_mask`, `is_masked`;
  `hold_zeros` to keep a pruned model's zeros through more training
  (quantization-aware training keeps them this way).
- Structured pruning that physically removes channels: `prune_channels`,
  and `sensitivity_analysis` to see which layers tolerate it.
"""

from tfcompress.pruning.channels import IMPORTANCE_CRITERIA
from tfcompress.pruning.channels import ChannelPruningReport
from tfcompress.pruning.channels import ChannelPruningRow
from tfcompress.pruning.channels import prunable_channel_groups
from tfcompress.pruning.channels import prune_channels
from tfcompress.pruning.kernel_masks import KernelMask
from tfcompress.pruning.kernel_masks import is_masked
from tfcompress.pruning.kernel_masks import release_mask
from tfcompress.pruning.masks import m_by_n_mask
from tfcompress.pruning.masks import magnitude_mask
from tfcompress.pruning.schedules import ConstantSparsity
from tfcompress.pruning.schedules import PolynomialDecay
from tfcompress.pruning.schedules import PruningSchedule
from tfcompress.pruning.sensitivity import SensitivityReport
from tfcompress.pruning.sensitivity import sensitivity_analysis
from tfcompress.pruning.sparsity_report import KernelSparsity
from tfcompress.pruning.sparsity_report import SparsityReport
from tfcompress.pruning.sparsity_report import sparsity_report
from tfcompress.pruning.strip import strip
from tfcompress.pruning.zero_masks import HeldZeros
from tfcompress.pruning.zero_masks import hold_zeros

__all__ = [
    "IMPORTANCE_CRITERIA",
    "ChannelPruningReport",
    "ChannelPruningRow",
    "ConstantSparsity",
    "KernelMask",
    "HeldZeros",
    "KernelSparsity",
    "PolynomialDecay",
    "PruningSchedule",
    "SensitivityReport",
    "SparsityReport",
    "hold_zeros",
    "is_masked",
    "m_by_n_mask",
    "magnitude_mask",
    "prunable_channel_groups",
    "prune_channels",
    "release_mask",
    "sensitivity_analysis",
    "sparsity_report",
    "strip",
]
