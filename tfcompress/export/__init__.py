"""Export to TFLite (LiteRT), and measure what the export kept.

- `to_tflite`: write a `.tflite` file, float32 or quantized (`"float16"`,
  `"dynamic"`, `"int8"`), builtin ops only by default, atomically.
- `LiteRTModel`: run a `.tflite` file like `model.predict`.
- `evaluate_tflite`: top-1 accuracy through the LiteRT interpreter.
- `benchmark_tflite`: median / p90 latency of `invoke()` on this CPU;
  `compare_latency`: several files measured side by side, for ratios.
"""

from tfcompress.export.benchmark import LatencyResult
from tfcompress.export.benchmark import benchmark_tflite
from tfcompress.export.benchmark import compare_latency
from tfcompress.export.evaluation import evaluate_tflite
from tfcompress.export.interpreter import LiteRTModel
from tfcompress.export.tflite import TFLiteExport
from tfcompress.export.tflite import to_tflite

__all__ = [
    "to_tflite",
    "TFLiteExport",
    "LiteRTModel",
    "evaluate_tflite",
    "benchmark_tflite",
    "compare_latency",
    "LatencyResult",
]
