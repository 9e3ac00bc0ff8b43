"""Export to TFLite (LiteRT), and measure what the export kept.

- `to_tflite`: write a `.tflite` file, float32 or quantized (`"float16"`,
  `"dynamic"`, `"int8"`, `"int16x8"`), builtin ops only by default,
  atomically. Integer modes calibrate activation ranges on `data` by
  min/max, percentile or MSE (`calibration=`), can take integer inputs and
  outputs (`input_type=`, `output_type=`), and can keep chosen layers in
  float32 (`keep_float=`). The file is read back: `TFLiteExport.precision`
  says what its weighted ops compute in, and an integer export that left
  some in float warns (or, with `strict=True`, fails).
- `verify`: run the Keras model and its file on the same inputs; top-1
  agreement and output error in a `ParityReport`.

Re-exported, so that everything about a `.tflite` file is found here:

- from `tfcompress.litert`: `LiteRTModel` (run a file like
  `model.predict`), `evaluate_tflite` (top-1 accuracy through LiteRT),
  `inspect_tflite` (ops, activations, tensors, weight bytes, in a
  `TFLiteInspection`), `tflite_precision` (`Precision`),
  `benchmark_tflite` and `compare_latency` (latency on this CPU),
  `tflite_file_path`;
- from `tfcompress.quantization`: `layer_quantization_error` (the float
  and the quantized file side by side, op by op, in a
  `QuantizationErrorReport`).

Every function that takes a `.tflite` file takes a path or the
`TFLiteExport` that `to_tflite` returned.
"""

from tfcompress.export.tflite import to_tflite
from tfcompress.export.tflite_export import TFLiteExport
from tfcompress.export.verification import ParityMetric
from tfcompress.export.verification import ParityReport
from tfcompress.export.verification import verify
from tfcompress.litert import FloatOp
from tfcompress.litert import LatencyResult
from tfcompress.litert import LiteRTModel
from tfcompress.litert import Precision
from tfcompress.litert import TFLiteInspection
from tfcompress.litert import benchmark_tflite
from tfcompress.litert import compare_latency
from tfcompress.litert import evaluate_tflite
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_file_path
from tfcompress.litert import tflite_precision
from tfcompress.quantization import OpQuantizationError
from tfcompress.quantization import QuantizationErrorReport
from tfcompress.quantization import layer_quantization_error

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
    "ParityMetric",
    "inspect_tflite",
    "TFLiteInspection",
    "tflite_precision",
    "Precision",
    "FloatOp",
    "tflite_file_path",
    "layer_quantization_error",
    "QuantizationErrorReport",
    "OpQuantizationError",
]
