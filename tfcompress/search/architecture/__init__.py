"""Hardware-aware architecture search over tfcompress layers.

- `SearchSpace` / `Stage`: per stage a block type (depthwise-separable,
  inverted residual, shuffle, partial convolution), kernel size,
  expansion, width and depth; `build(choices)` gives a plain functional
  Keras model of those layers.
- `search_architecture`: Optuna TPE on MnasNet's reward (or
  multi-objective), each candidate trained briefly and timed in LiteRT.
"""

from tfcompress.search.architecture.report import ArchitectureSearchReport
from tfcompress.search.architecture.report import ArchitectureTrial
from tfcompress.search.architecture.search import mnasnet_reward
from tfcompress.search.architecture.search import search_architecture
from tfcompress.search.architecture.space import BLOCK_TYPES
from tfcompress.search.architecture.space import DEFAULT_STAGES
from tfcompress.search.architecture.space import SearchSpace
from tfcompress.search.architecture.space import Stage

__all__ = [
    "ArchitectureSearchReport",
    "ArchitectureTrial",
    "BLOCK_TYPES",
    "DEFAULT_STAGES",
    "SearchSpace",
    "Stage",
    "mnasnet_reward",
    "search_architecture",
]
