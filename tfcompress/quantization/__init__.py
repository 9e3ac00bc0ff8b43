"""Quantization for Keras 3 and TFLite: quantization-aware training, and
the post-training pieces behind `to_tflite`'s integer modes.

- `quantize_model`: a copy of a model that simulates TFLite's int8
  arithmetic (per-channel int8 kernels, per-tensor int8 activations at the
  points TFLite gives a scale), for training with `model.fit`; the learned
  ranges reach the `.tflite` file through fake-quant ops.
- `QuantizationReport`: what `quantize_model` quantized and what it left in
  float, and why.
- `with_bit_widths`, `simulated_bits`, `is_quantization_aware`: the bit widths a quantization-aware
  model simulates (2 to 8 in training; the exported file is int8).
- `QuantizeRule`: how `quantize_model` rewrites a layer class, registered
  with `tfcompress.graph.register_layer(..., quantize=...)`.
- The layers it builds, registered for `.keras` files:
  `ActivationQuantizer`, `QuantizedConv2D`, `QuantizedDepthwiseConv2D`,
  `QuantizedDense`, `QuantizedEinsumDense`, `QuantizedEmbedding`,
  `QuantizedLayerNormalization`, `FreezableBatchNormalization`, and
  `RoundedKernels` (for layers of your own); attention layers are inlined
  through `MultiHeadAttentionInOps` and `GroupedQueryAttentionInOps`.

Post-training quantization, which `tfcompress.export.to_tflite` drives
(it stays the entry point: `quantization="int8"`, `calibration=`,
`keep_float=`):

- `calibration`: activation ranges by percentile or MSE clipping
  (`ActivationHistogram`), written into the converter's calibrated float
  model and quantized with the converter's own quantizer
  (`quantize_with_ranges`).
- `keep_float`: layers left in float32 inside an int8 file.
- `layer_quantization_error`: the float and the quantized file side by
  side, op by op: which layers lose the most, in a
  `QuantizationErrorReport` of `OpQuantizationError` rows.
- `layer_ops`: which Keras layers each op of a file comes from
  (`op_layers`), which the two above name layers with.

This package reads and runs files through `tfcompress.litert` and never
imports `tfcompress.export`, which builds on it. The training schedule
(delay, batch-norm freezing, range freezing) is
`tfcompress.callbacks.QuantizationAwareTraining`.
"""

from tfcompress.quantization.activation_histogram import ActivationHistogram
from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.bit_widths import is_quantization_aware
from tfcompress.quantization.bit_widths import simulated_bits
from tfcompress.quantization.bit_widths import with_bit_widths
from tfcompress.quantization.freezable_batch_normalization import (
    FreezableBatchNormalization,
)
from tfcompress.quantization.calibration import CALIBRATION_METHODS
from tfcompress.quantization.calibration import quantize_with_ranges
from tfcompress.quantization.keep_float import check_keep_float
from tfcompress.quantization.keep_float import keep_float_nodes
from tfcompress.quantization.layer_ops import layer_scopes
from tfcompress.quantization.layer_ops import op_layers
from tfcompress.quantization.qat_parity import OpParity
from tfcompress.quantization.qat_parity import QATParityReport
from tfcompress.quantization.qat_parity import qat_parity
from tfcompress.quantization.quantization_error import (
    layer_quantization_error,
)
from tfcompress.quantization.quantization_error_report import (
    OpQuantizationError,
)
from tfcompress.quantization.quantization_error_report import (
    QuantizationErrorReport,
)
from tfcompress.quantization.quantization_report import QuantizationReport
from tfcompress.quantization.quantization_report import QuantizationRow
from tfcompress.quantization.quantize_model import quantize_model
from tfcompress.quantization.quantized_attention import (
    GroupedQueryAttentionInOps,
)
from tfcompress.quantization.quantized_attention import (
    MultiHeadAttentionInOps,
)
from tfcompress.quantization.quantized_einsum_dense import (
    QuantizedEinsumDense,
)
from tfcompress.quantization.quantized_embedding import QuantizedEmbedding
from tfcompress.quantization.quantized_layers import QuantizedConv2D
from tfcompress.quantization.quantized_layers import QuantizedDense
from tfcompress.quantization.quantized_layers import QuantizedDepthwiseConv2D
from tfcompress.quantization.quantized_normalization import (
    QuantizedLayerNormalization,
)
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.recurrent_in_ops import LSTMInOps
from tfcompress.quantization.rounded_kernels import RoundedKernels

__all__ = [
    "LSTMInOps",
    "quantize_model",
    "QuantizationReport",
    "QuantizationRow",
    "with_bit_widths",
    "simulated_bits",
    "is_quantization_aware",
    "ActivationQuantizer",
    "QuantizedConv2D",
    "QuantizedDepthwiseConv2D",
    "QuantizedDense",
    "QuantizedEinsumDense",
    "QuantizedEmbedding",
    "QuantizedLayerNormalization",
    "MultiHeadAttentionInOps",
    "GroupedQueryAttentionInOps",
    "FreezableBatchNormalization",
    "QuantizeRule",
    "RoundedKernels",
    "layer_quantization_error",
    "qat_parity",
    "QATParityReport",
    "OpParity",
    "QuantizationErrorReport",
    "OpQuantizationError",
    "CALIBRATION_METHODS",
    "ActivationHistogram",
    "quantize_with_ranges",
    "check_keep_float",
    "keep_float_nodes",
    "op_layers",
    "layer_scopes",
]
