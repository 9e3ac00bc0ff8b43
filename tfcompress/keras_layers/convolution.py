"""Keras's convolutions: plain, transposed, depthwise and separable."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.decomposition.conv_svd import ConvSVDMethod
from tfcompress.decomposition.conv_svd import SeparableSVDMethod
from tfcompress.decomposition.cp import CPMethod
from tfcompress.decomposition.tucker2 import Tucker2Method
from tfcompress.graph.registry import PrunableKernel
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.quantized_layers import QuantizedConv1D
from tfcompress.quantization.quantized_layers import QuantizedConv2D
from tfcompress.quantization.quantized_layers import QuantizedConv2DTranspose
from tfcompress.quantization.quantized_layers import QuantizedDepthwiseConv1D
from tfcompress.quantization.quantized_layers import QuantizedDepthwiseConv2D
from tfcompress.quantization.separable_in_layers import SeparableConv2DInLayers

register_layer(
    (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D),
    prunable_kernels=[PrunableKernel("kernel", input_axis=-2)],
    macs=layer_costs.convolution_macs,
    channels=channel_rules.convolution,
)
register_layer(
    keras.layers.Conv2D,
    quantize=QuantizeRule.kernel(QuantizedConv2D),
    decompositions={
        "channel_svd": ConvSVDMethod(),
        "cp": CPMethod(),
        "tucker2": Tucker2Method(),
    },
)
register_layer(
    keras.layers.Conv1D, decompositions={"channel_svd": ConvSVDMethod()}
)
register_layer(
    (
        keras.layers.Conv1DTranspose,
        keras.layers.Conv2DTranspose,
        keras.layers.Conv3DTranspose,
    ),
    # The kernel is (..., out, in): N:M groups would run along outputs.
    prunable_kernels=[PrunableKernel("kernel", input_axis=None)],
    macs=layer_costs.convolution_transpose_macs,
)
register_layer(
    (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D),
    # No reduction over input channels: N:M sparsity does not apply.
    prunable_kernels=[PrunableKernel("kernel", input_axis=None)],
    macs=layer_costs.depthwise_convolution_macs,
    channels=channel_rules.depthwise_convolution,
)
register_layer(
    keras.layers.DepthwiseConv2D,
    quantize=QuantizeRule.kernel(QuantizedDepthwiseConv2D),
)
register_layer(
    keras.layers.Conv2DTranspose,
    quantize=QuantizeRule.kernel(QuantizedConv2DTranspose),
)
# 1-D convolutions are CONV_2D / DEPTHWISE_CONV_2D over a height of 1.
register_layer(
    keras.layers.Conv1D, quantize=QuantizeRule.kernel(QuantizedConv1D)
)
register_layer(
    keras.layers.DepthwiseConv1D,
    quantize=QuantizeRule.kernel(QuantizedDepthwiseConv1D),
)
register_layer(
    (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D),
    prunable_kernels=[
        PrunableKernel("depthwise_kernel", input_axis=None),
        PrunableKernel("pointwise_kernel", input_axis=-2),
    ],
    macs=layer_costs.separable_convolution_macs,
    channels=channel_rules.separable_convolution,
)
# Quantization: a separable convolution is a DEPTHWISE_CONV_2D and a 1x1
# CONV_2D in TFLite, with an int8 tensor between them: inlined as the two
# layers, each with its rounded kernel.
register_layer(
    keras.layers.SeparableConv2D,
    quantize=QuantizeRule.inline(twin=SeparableConv2DInLayers),
    decompositions={"channel_svd": SeparableSVDMethod()},
)
