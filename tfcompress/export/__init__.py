"""Export to TFLite (LiteRT), and measure what the export kept.

- `to_tflite`: write a `.tflite` file, float32 or quantized (`"float16"`,
  `"dynamic"`, `"int8"`, `"int16x8"`), builtin ops only by default,
  atomically. Integer modes calibrate activation ranges by min/max,
  percentile or MSE (`calibration=`), can take integer inputs and outputs
  (`input_type=`, `output_type=`), and can keep chosen layers in float32
  (`keep_float=`).
- `LiteRTModel`: run a `.tflite` file like `model.predict`.
- `evaluate_tflite`: top-1 accuracy through the LiteRT interpreter.
- `verify`: run the Keras model and its file on the same inputs; top-1
  agreement and output error in a `ParityReport`.
- `inspect_tflite`: the ops of a file, their fused activations, tensor
  dtypes, shapes, quantization and weight bytes, in a `TFLiteInspection`.
- `layer_quantization_error`: the float and the quantized file side by
  side, op by op: which layers lose the most, in a
  `QuantizationErrorReport`.
- `benchmark_tflite`: median / p90 latency of `invoke()` on this CPU;
  `compare_latency`: several files measured side by side, for ratios.
"""

from tfcompress.export.benchmark import LatencyResult
from tfcompress.export.benchmark import benchmark_tflite
from tfcompress.export.benchmark import compare_latency
from tfcompress.export.evaluation import evaluate_tflite
from tfcompress.export.inspection import TFLiteInspection
from tfcompress.export.inspection import inspect_tflite
from tfcompress.export.interpreter import LiteRTModel
from tfcompress.export.quantization_error import OpQuantizationError
from tfcompress.export.quantization_error import QuantizationErrorReport
from tfcompress.export.quantization_error import layer_quantization_error
from tfcompress.export.tflite import TFLiteExport
from tfcompress.export.tflite import to_tflite
from tfcompress.export.verification import ParityReport
from tfcompress.export.verification import verify

__all__ = [
    "to_tflite",
    "TFLiteExport",
    "LiteRTModel",
    "evaluate_tflite",
    "benchmark_tflite",
    "compare_latency",
    "LatencyResult",
    "verify",
    "ParityReport",
    "inspect_tflite",
    "TFLiteInspection",
    "layer_quantization_error",
    "QuantizationErrorReport",
    "OpQuantizationError",
]
