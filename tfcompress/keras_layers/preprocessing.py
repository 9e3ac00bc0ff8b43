"""Keras's preprocessing layers that can sit inside a model."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.quantized_input_normalization import (
    QuantizedNormalization,
)
from tfcompress.quantization.quantized_input_normalization import (
    QuantizedRescaling,
)

L = keras.layers

# Element-wise, and foldable into the input quantization: 0 MACs.
register_layer((L.Rescaling, L.Normalization), macs=layer_costs.no_macs)
# Lookups, hashing, binning and encodings: no multiply-accumulates.
register_layer(
    (
        L.StringLookup,
        L.IntegerLookup,
        L.TextVectorization,
        L.Hashing,
        L.HashedCrossing,
        L.CategoryEncoding,
        L.Discretization,
    ),
    macs=layer_costs.no_macs,
)
register_layer(L.Resizing, macs=layer_costs.resizing_macs)
register_layer(L.CenterCrop, macs=layer_costs.center_crop_macs)
# Per-image minimum and maximum (comparisons) and an element-wise rescale;
# applied at inference too.
register_layer(L.AutoContrast, macs=layer_costs.no_macs)
# Random augmentations, and layers that act on training only: `profile`
# runs the model with `training=False`.
register_layer(
    (
        L.AugMix,
        L.CutMix,
        L.Equalization,
        L.MaxNumBoundingBoxes,
        L.MixUp,
        L.RandAugment,
        L.RandomBrightness,
        L.RandomColorDegeneration,
        L.RandomColorJitter,
        L.RandomContrast,
        L.RandomCrop,
        L.RandomElasticTransform,
        L.RandomErasing,
        L.RandomFlip,
        L.RandomGaussianBlur,
        L.RandomGrayscale,
        L.RandomHue,
        L.RandomInvert,
        L.RandomPerspective,
        L.RandomPosterization,
        L.RandomRotation,
        L.RandomSaturation,
        L.RandomSharpness,
        L.RandomShear,
        L.RandomTranslation,
        L.RandomZoom,
        L.Solarization,
    ),
    macs=layer_costs.identity_at_inference,
)
register_layer(
    L.ContrastLimitedAdaptiveHistogramEqualization,
    macs=layer_costs.unknown("histogram equalization"),
)
register_layer(
    (L.MelSpectrogram, L.STFTSpectrogram),
    macs=layer_costs.unknown("spectrogram: no FFT convention"),
)

# Quantization: a per-channel affine with constants, TFLite's int8 MUL and
# ADD (see `QuantizedNormalization`). `invert=True` stays float.
def _normalization_rule(layer):
    if layer.invert:
        return QuantizeRule.keep_float(
            "Normalization(invert=True) has no quantization-aware rewrite"
        )
    return QuantizeRule.lowered(QuantizedNormalization)


register_layer(
    L.Normalization, quantize=QuantizeRule.per_layer(_normalization_rule)
)


def _rescaling_rule(layer):
    # Without an offset it is one MUL, rounded after it like any op.
    if isinstance(layer.offset, (int, float)) and layer.offset == 0:
        return QuantizeRule.own_scale()
    return QuantizeRule.lowered(QuantizedRescaling)


register_layer(L.Rescaling, quantize=QuantizeRule.per_layer(_rescaling_rule))
