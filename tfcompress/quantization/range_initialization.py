"""Activation ranges of a quantization-aware model, set from data.

`quantize_model(model, data=...)` starts each `ActivationQuantizer` at the
range of the tensor it rounds on real inputs, instead of `[-6, 6]`.
"""

import keras

from tfcompress.graph import layer_tree
from tfcompress.quantization.activation_quantizer import ActivationQuantizer


def initialize_ranges(qat_model, data):
    """Sets every activation range from one pass over `data`.

    Runs the model in training mode with rounding off, so each quantizer
    sees the float tensor and takes its min / max as its first range, then
    restores batch-norm statistics the pass moved.

    Args:
        qat_model: A model made by `quantize_model`.
        data: Model inputs (an array, or a list of arrays for a model with
            several inputs).
    """
    quantizers = layer_tree.layers_of_type(qat_model, ActivationQuantizer)
    norms = layer_tree.layers_of_type(
        qat_model, keras.layers.BatchNormalization
    )
    saved_norms = [
        [v.numpy() for v in (n.moving_mean, n.moving_variance)] for n in norms
    ]
    decays = [quantizer.ema_decay for quantizer in quantizers]
    for quantizer in quantizers:
        quantizer.quantize_enabled.assign(0.0)
        quantizer.range_initialized.assign(0.0)
        quantizer.range_frozen.assign(0.0)
        quantizer.ema_decay = 0.0  # The range of the whole batch.
    try:
        qat_model(data, training=True)
    finally:
        for quantizer, decay in zip(quantizers, decays):
            quantizer.ema_decay = decay
            quantizer.quantize_enabled.assign(1.0)
        for norm, (mean, variance) in zip(norms, saved_norms):
            norm.moving_mean.assign(mean)
            norm.moving_variance.assign(variance)
