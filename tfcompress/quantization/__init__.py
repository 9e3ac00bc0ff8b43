"""Quantization-aware training for Keras 3, exported to int8 TFLite.

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

Post-training quantization (calibrated int8, int16x8, mixed precision) is
`tfcompress.export.to_tflite`; the training schedule (delay, batch-norm
freezing, range freezing) is `tfcompress.callbacks.QuantizationAwareTraining`.
"""

from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.bit_widths import is_quantization_aware
from tfcompress.quantization.bit_widths import simulated_bits
from tfcompress.quantization.bit_widths import with_bit_widths
from tfcompress.quantization.freezable_batch_normalization import (
    FreezableBatchNormalization,
)
from tfcompress.quantization.quantize_model import QuantizationReport
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
from tfcompress.quantization.rounded_kernels import RoundedKernels

__all__ = [
    "quantize_model",
    "QuantizationReport",
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
]
