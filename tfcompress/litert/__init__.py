"""`.tflite` (LiteRT) files: read them, run them, time them.

- `inspect_tflite`: the ops of a file, their fused activations, tensor
  dtypes, shapes, quantization and weight bytes, in a `TFLiteInspection`.
- `tflite_precision`: what the file's weighted ops compute in (integer,
  hybrid or float) and their weights' types, in a `Precision` report.
- `LiteRTModel`: run a file like `model.predict`; `TensorTracer`: run it
  and keep every intermediate tensor.
- `evaluate_tflite`: top-1 accuracy through the LiteRT interpreter.
- `benchmark_tflite`: median / p90 latency of `invoke()` on this CPU;
  `compare_latency`: several files measured side by side, for ratios.
- `tflite_weights`: the stored values of a file's constants (the int8
  integers of its kernels); `value_compression`: their size
  Huffman-coded (a real code per tensor) and their entropy, beside the
  file's own size.
- `tflite_file_path`: the one conversion of a file argument (a path or a
  `TFLiteExport`) that every function above, and every tfcompress function
  that takes a `.tflite` file, goes through.

Why a package of its own: these pieces only read and run files that
already exist, and two packages build on them. `tfcompress.quantization`
runs files in LiteRT (calibration histograms the converter's float model;
`layer_quantization_error` traces two files side by side), and
`tfcompress.export` writes files with `to_tflite` and reads them back
(`verify`, the precision check after an integer export). With the runtime
here, the layering is one way: `litert` imports neither of them,
`quantization` imports `litert`, and `export` imports both. The names
users reach for (`LiteRTModel`, `inspect_tflite`, `evaluate_tflite`,
`benchmark_tflite`, ...) are re-exported from `tfcompress.export` too,
where they were before this package existed.
"""

from tfcompress.litert.benchmark import LatencyResult
from tfcompress.litert.benchmark import benchmark_tflite
from tfcompress.litert.benchmark import compare_latency
from tfcompress.litert.evaluation import evaluate_tflite
from tfcompress.litert.inspection import TFLiteInspection
from tfcompress.litert.inspection import inspect_tflite
from tfcompress.litert.inspection import inspect_tflite_content
from tfcompress.litert.interpreter import LiteRTModel
from tfcompress.litert.precision import FloatOp
from tfcompress.litert.precision import Precision
from tfcompress.litert.precision import tflite_precision
from tfcompress.litert.tensor_tracer import TensorTracer
from tfcompress.litert.tflite_model import TensorQuantization
from tfcompress.litert.tflite_model import TFLiteOp
from tfcompress.litert.tflite_model import TFLiteTensor
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.litert.value_compression import ValueCompression
from tfcompress.litert.value_compression import entropy_bits
from tfcompress.litert.value_compression import huffman_bits
from tfcompress.litert.value_compression import huffman_code_lengths
from tfcompress.litert.value_compression import value_compression
from tfcompress.litert.weight_values import TFLiteWeight
from tfcompress.litert.weight_values import kernels
from tfcompress.litert.weight_values import tflite_weights

__all__ = [
    "LiteRTModel",
    "TensorTracer",
    "evaluate_tflite",
    "benchmark_tflite",
    "compare_latency",
    "LatencyResult",
    "inspect_tflite",
    "inspect_tflite_content",
    "TFLiteInspection",
    "TFLiteOp",
    "TFLiteTensor",
    "TensorQuantization",
    "tflite_precision",
    "Precision",
    "FloatOp",
    "tflite_file_path",
    "tflite_weights",
    "kernels",
    "TFLiteWeight",
    "value_compression",
    "ValueCompression",
    "huffman_code_lengths",
    "huffman_bits",
    "entropy_bits",
]
