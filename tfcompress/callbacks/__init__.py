"""Callbacks to add to `model.fit`.

- `MagnitudePruning`: unstructured or N:M pruning following a schedule,
  on an ordinary Keras 3 model (nothing wrapped); on a Distiller, the
  student is pruned.
- `DistillationScheduler`: anneals the temperature and the student loss
  weight of a `tfcompress.distillation.Distiller`, by epoch or by step.
- `QuantizationAwareTraining`: the schedule of quantization-aware training
  (delay, batch-norm freezing, range freezing) for a model from
  `tfcompress.quantization.quantize_model`; it keeps a pruned model's
  zeros (pruning-preserving QAT).
- `WeightClustering`: weight sharing with trained centroids, nothing
  wrapped; beside `QuantizationAwareTraining`, cluster-preserving QAT.
"""

from tfcompress.callbacks.distillation_scheduler import DistillationScheduler
from tfcompress.callbacks.magnitude_pruning import MagnitudePruning
from tfcompress.callbacks.quantization_aware_training import (
    QuantizationAwareTraining,
)
from tfcompress.callbacks.weight_clustering import WeightClustering

__all__ = [
    "DistillationScheduler",
    "MagnitudePruning",
    "QuantizationAwareTraining",
    "WeightClustering",
]
