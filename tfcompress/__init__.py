"""tfcompress: model compression for Keras 3, exported to TFLite (LiteRT).

Subpackages:
- `tfcompress.layers`: drop-in efficient Keras layers.
- `tfcompress.analysis`: `profile()`, per-layer parameters, MACs and bytes.
- `tfcompress.export`: `to_tflite()` and the LiteRT runner, evaluation and
  benchmark.
- `tfcompress.pruning`: magnitude and N:M pruning (with
  `tfcompress.callbacks.MagnitudePruning`), structured channel pruning,
  sensitivity analysis.
- `tfcompress.decomposition`: SVD, CP and Tucker-2 decomposition of trained
  layers.
- `tfcompress.callbacks`: callbacks for `model.fit`.
- `tfcompress.models`, `tfcompress.datasets`: reference models and bundled
  data for examples, tests and benchmarks.
"""

from tfcompress import analysis
from tfcompress import callbacks
from tfcompress import datasets
from tfcompress import decomposition
from tfcompress import export
from tfcompress import layers
from tfcompress import models
from tfcompress import pruning
from tfcompress.analysis import profile
from tfcompress.export import to_tflite

__version__ = "0.1.0"

__all__ = [
    "analysis",
    "callbacks",
    "datasets",
    "decomposition",
    "export",
    "layers",
    "models",
    "pruning",
    "profile",
    "to_tflite",
]
