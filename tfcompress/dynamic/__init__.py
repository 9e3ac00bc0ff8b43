"""Dynamic inference: early exits and staged loading.

- `attach_exits`: exit classifiers on chosen layers of a trained model
  (`ExitReport`: MACs up to each exit, from `tfcompress.analysis`).
- `train_exits`: train them, jointly with the model or heads only, each
  distilled from the final head (`tfcompress.distillation`).
- `calibrate_exits`: per-exit confidence thresholds (max softmax) for a
  target accuracy or a MACs budget, in an `ExitPolicy` (exit rates,
  average MACs per example); with `latency` from `measure_stage_latency`
  (every segment between exits exported and timed in LiteRT), the subset
  of exits with the lowest measured latency, the others dropped.
- `split_stages`, `export_stages`: one `keras.Model` per stage (stages
  end only at the kept exits, `exits=`); one `.tflite` file per stage and
  one with a signature per stage, int8 calibrated per stage in both; each
  stage computes its exit's confidence in its graph.
- `EarlyExitRunner`: runs the stages in LiteRT until an exit is confident,
  loading each stage's file only when an example reaches it if asked
  (`staged=True`); `measure_peak_memory` measures the peak resident memory
  of each way, in a fresh process.
"""

from tfcompress.dynamic.exit_training import ExitAccuracy
from tfcompress.dynamic.exit_training import ExitTrainingReport
from tfcompress.dynamic.exit_training import train_exits
from tfcompress.dynamic.exits import ExitReport
from tfcompress.dynamic.exits import ExitRow
from tfcompress.dynamic.exits import attach_exits
from tfcompress.dynamic.exits import pooled_dense_head
from tfcompress.dynamic.peak_memory import PeakMemory
from tfcompress.dynamic.peak_memory import PeakMemoryReport
from tfcompress.dynamic.peak_memory import measure_peak_memory
from tfcompress.dynamic.runner import EarlyExitRunner
from tfcompress.dynamic.stage_latency import SegmentLatency
from tfcompress.dynamic.stage_latency import StageLatency
from tfcompress.dynamic.stage_latency import measure_stage_latency
from tfcompress.dynamic.stage_export import StageExport
from tfcompress.dynamic.stage_export import StageFile
from tfcompress.dynamic.stage_export import export_stages
from tfcompress.dynamic.stages import split_stages
from tfcompress.dynamic.stages import stage_macs
from tfcompress.dynamic.thresholds import ExitDecision
from tfcompress.dynamic.thresholds import ExitPolicy
from tfcompress.dynamic.thresholds import calibrate_exits

__all__ = [
    "EarlyExitRunner",
    "ExitAccuracy",
    "ExitDecision",
    "ExitPolicy",
    "ExitReport",
    "ExitRow",
    "ExitTrainingReport",
    "PeakMemory",
    "PeakMemoryReport",
    "SegmentLatency",
    "StageExport",
    "StageFile",
    "StageLatency",
    "attach_exits",
    "calibrate_exits",
    "export_stages",
    "measure_peak_memory",
    "measure_stage_latency",
    "pooled_dense_head",
    "split_stages",
    "stage_macs",
    "train_exits",
]
