"""Knowledge distillation, built on `keras.distillation`.

- `distillation_loss`: Hinton et al.'s loss as a function, for a custom
  training loop; equal to what Keras's Distiller computes with
  `LogitsDistillation(T, loss=keras.losses.KLDivergence())` and
  `student_loss_weight = 1 - alpha`.
- `Distiller`: `keras.distillation.Distiller` with its temperature and
  student loss weight in variables (so `tfcompress.callbacks.
  DistillationScheduler` can anneal them during `fit`), and able to read
  cached teacher outputs.
- `cache_teacher_outputs`: runs a frozen teacher once over a training set
  that fits in memory.
- `LinearSchedule`, `CosineSchedule`: start-to-end schedules for the
  temperature or the weight.
"""

from tfcompress.distillation.distiller import Distiller
from tfcompress.distillation.losses import distillation_loss
from tfcompress.distillation.schedules import CosineSchedule
from tfcompress.distillation.schedules import LinearSchedule
from tfcompress.distillation.teacher_cache import cache_teacher_outputs

__all__ = [
    "CosineSchedule",
    "Distiller",
    "LinearSchedule",
    "cache_teacher_outputs",
    "distillation_loss",
]
