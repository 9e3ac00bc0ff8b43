"""tfcompress: model compression for Keras 3, exported to TFLite (LiteRT).

Subpackages:
- `tfcompress.graph`: the graph core every tool is built on, and the layer
  registry (`register_layer`): what each tool knows about each layer
  class, in one place.
- `tfcompress.keras_layers`: those rules for Keras's own layers.
- `tfcompress.layers`: drop-in efficient Keras layers.
- `tfcompress.analysis`: `profile()`, per-layer parameters, MACs and bytes.
- `tfcompress.export`: `to_tflite()` and `verify()`; it re-exports the
  tools of `tfcompress.litert`.
- `tfcompress.litert`: `.tflite` files: the LiteRT runner, inspection,
  precision, evaluation and benchmark.
- `tfcompress.pruning`: magnitude and N:M pruning (with
  `tfcompress.callbacks.MagnitudePruning`), structured channel pruning,
  sensitivity analysis.
- `tfcompress.decomposition`: SVD, CP and Tucker-2 decomposition of trained
  layers.
- `tfcompress.distillation`: knowledge distillation on
  `keras.distillation.Distiller`: the Hinton et al. loss as a function,
  a Distiller whose temperature and weight can be annealed during `fit`
  (with `tfcompress.callbacks.DistillationScheduler`), cached teacher
  outputs.
- `tfcompress.quantization`: quantization-aware training (`quantize_model`
  with `tfcompress.callbacks.QuantizationAwareTraining`) that exports to
  int8 TFLite, and the post-training pieces behind `to_tflite` (percentile
  / MSE calibration, `keep_float`, `layer_quantization_error`).
- `tfcompress.clustering`: weight clustering (weight sharing) with trained
  centroids (`cluster_weights`, `tfcompress.callbacks.WeightClustering`),
  cluster- and sparsity-preserving QAT.
- `tfcompress.search`: compression under a budget: each layer's channel
  sparsity searched (AMC-style, on Optuna) so that the model fits a MACs
  or parameter budget with the best accuracy (the `search` extra).
<<<<<<< HEAD
- `tfcompress.dynamic`: early exits (attach, train, calibrate thresholds),
  stages exported to LiteRT and run until an exit is confident, with
  staged loading.
=======
- `tfcompress.pipeline`: `compress` (also `tfcompress.compress`): a
  trained model to an int8 LiteRT file under a budget (MACs, bytes,
  measured latency) in one call: search, prune, distill, QAT, int8,
  verify, with a report per step.
>>>>>>> compress
- `tfcompress.callbacks`: callbacks for `model.fit`.
- `tfcompress.models`, `tfcompress.datasets`: reference models and bundled
  data for examples, tests and benchmarks.
"""

# First: the `tfcompress` command imports TensorFlow with its C++ start-up
# lines hidden; any other program imports it as usual (see native_stderr).
from tfcompress import native_stderr

native_stderr.import_tensorflow()

from tfcompress import analysis
from tfcompress import callbacks
from tfcompress import clustering
from tfcompress import datasets
from tfcompress import decomposition
from tfcompress import distillation
from tfcompress import dynamic
from tfcompress import export
from tfcompress import graph
from tfcompress import litert
from tfcompress import layers
from tfcompress import models
from tfcompress import pipeline
from tfcompress import pruning
from tfcompress import quantization
from tfcompress.analysis import profile
from tfcompress.export import to_tflite
from tfcompress.graph import register_layer
from tfcompress.pipeline import compress

# Last: the rules for Keras's layers reference every tool's building blocks.
from tfcompress import keras_layers  # noqa: E402

# The one place the version is written: pyproject.toml reads it from here
# (as text, without importing TensorFlow).
__version__ = "0.1.0"

__all__ = [
    "analysis",
    "callbacks",
    "clustering",
    "datasets",
    "decomposition",
    "distillation",
    "dynamic",
    "export",
    "graph",
    "keras_layers",
    "layers",
    "litert",
    "models",
    "pipeline",
    "pruning",
    "quantization",
    "profile",
    "to_tflite",
    "register_layer",
    "compress",
]
