"""Dynamic inference: early exits and staged loading.

- `attach_exits`: exit classifiers on chosen layers of a trained model.
- `train_exits`: train them, jointly with the model or heads only, with
  distillation from the final head (`tfcompress.distillation`).
- `calibrate_exits`: per-exit confidence thresholds (max softmax) for a
  target accuracy or a MACs budget, in an `ExitPolicy`.
- `split_stages`, `export_stages`: one `keras.Model` per stage; one
  `.tflite` with a signature per stage and one file per stage (int8:
  calibrated per stage).
- `EarlyExitRunner`: runs the stages in LiteRT until an exit is confident,
  loading each stage's file only when an example reaches it if asked;
  `measure_peak_memory` measures the resident memory that costs.
"""

from tfcompress.dynamic.exits import ExitReport
from tfcompress.dynamic.exits import ExitRow
from tfcompress.dynamic.exits import attach_exits
from tfcompress.dynamic.exits import pooled_dense_head
from tfcompress.dynamic.stages import split_stages
from tfcompress.dynamic.stages import stage_macs

__all__ = [
    "ExitReport",
    "ExitRow",
    "attach_exits",
    "pooled_dense_head",
    "split_stages",
    "stage_macs",
]
