"""Keras's core layers: Dense, EinsumDense, Embedding, Lambda, wrappers of
foreign models, Identity, inputs."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.decomposition.svd import SVDMethod
from tfcompress.graph.registry import PrunableKernel
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.quantized_einsum_dense import QuantizedEinsumDense
from tfcompress.quantization.quantized_embedding import QuantizedEmbedding
from tfcompress.quantization.quantized_layers import QuantizedDense

register_layer(
    keras.layers.Dense,
    prunable_kernels=[PrunableKernel("kernel", input_axis=-2)],
    macs=layer_costs.dense_macs,
    channels=channel_rules.dense,
    quantize=QuantizeRule.kernel(QuantizedDense),
    decompositions={"svd": SVDMethod()},
)
register_layer(
    keras.layers.EinsumDense,
    # The equation decides which axis reads input channels.
    prunable_kernels=[PrunableKernel("kernel", input_axis=None)],
    macs=layer_costs.einsum_dense_macs,
)
register_layer(
    (keras.layers.InputLayer, keras.layers.Identity, keras.layers.Masking),
    macs=layer_costs.no_macs,
)
register_layer(
    keras.layers.Identity,
    channels=channel_rules.elementwise,
    quantize=QuantizeRule.keeps_input_scale(),
)
# A lookup: no MACs, and TFLite has no sparse lookup to gain from pruning.
register_layer(keras.layers.Embedding, macs=layer_costs.no_macs)
# Prunable all the same: pruned entries are zeros in the file's table,
# which compresses smaller. No input-channel axis for N:M sparsity.
register_layer(
    keras.layers.Embedding,
    prunable_kernels=[PrunableKernel("embeddings", input_axis=None)],
)
# `reverse=True` multiplies by the transposed table (tied output logits).
register_layer(
    keras.layers.ReversibleEmbedding,
    macs=layer_costs.reversible_embedding_macs,
)
# Arbitrary code or foreign models: nothing to count them by.
register_layer(
    keras.layers.Lambda, macs=layer_costs.unknown("Lambda: arbitrary function")
)
register_layer(
    (
        keras.layers.TFSMLayer,
        keras.layers.JaxLayer,
        keras.layers.FlaxLayer,
        keras.layers.TorchModuleWrapper,
    ),
    macs=layer_costs.unknown("wraps a model from outside Keras"),
)

# Quantization: EinsumDense is a FULLY_CONNECTED with per-channel int8
# weights (one scale per element of the kernel's output axes); Embedding a
# GATHER on a per-tensor int8 table, its rows keeping the table's scale.
register_layer(
    keras.layers.EinsumDense,
    quantize=QuantizeRule.kernel(QuantizedEinsumDense),
)
register_layer(
    keras.layers.Embedding, quantize=QuantizeRule.lookup(QuantizedEmbedding)
)
