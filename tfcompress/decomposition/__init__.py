"""Low-rank and tensor decomposition of trained models.

- `decompose`: a trained model's chosen `Dense` layers become
  `LowRankDense` (truncated SVD) and its chosen `Conv2D` layers `CPConv2D`
  (CP) or `Tucker2Conv2D` (Tucker-2), with factors computed from the
  trained weights; returns the new model and a `DecompositionReport`.
- `rank_selection`: per layer, error vs rank vs MACs (table and plot).
- `svd_factors`, `cp_factors`, `tucker2_factors`: the factorizations
  themselves, for one kernel; CP and Tucker-2 run in TensorLy.
"""

from tfcompress.decomposition.cp import cp_factors
from tfcompress.decomposition.cp import cp_full_rank
from tfcompress.decomposition.cp import cp_kernel
from tfcompress.decomposition.decompose import decompose
from tfcompress.decomposition.rank_selection import RankSelectionReport
from tfcompress.decomposition.rank_selection import RankSelectionRow
from tfcompress.decomposition.rank_selection import rank_selection
from tfcompress.decomposition.report import DecompositionReport
from tfcompress.decomposition.report import LayerDecomposition
from tfcompress.decomposition.report import SkippedLayer
from tfcompress.decomposition.svd import energy_rank
from tfcompress.decomposition.svd import svd_factors
from tfcompress.decomposition.tucker2 import tucker2_factors
from tfcompress.decomposition.tucker2 import tucker2_full_ranks
from tfcompress.decomposition.tucker2 import tucker2_kernel

__all__ = [
    "decompose",
    "DecompositionReport",
    "LayerDecomposition",
    "SkippedLayer",
    "rank_selection",
    "RankSelectionReport",
    "RankSelectionRow",
    "svd_factors",
    "energy_rank",
    "cp_factors",
    "cp_full_rank",
    "cp_kernel",
    "tucker2_factors",
    "tucker2_full_ranks",
    "tucker2_kernel",
]
