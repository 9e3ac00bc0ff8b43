"""Changing the bit widths a quantization-aware model simulates."""

from tfcompress.graph import cloning
from tfcompress.graph import layer_tree
from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.fake_quant import check_bits
from tfcompress.quantization.quantized_layers import has_quantized_kernel
from tfcompress.quantization.quantized_layers import quantized_kernel_layers


def simulated_bits(model):
    """Returns `(weight_bits, activation_bits)` of a quantize_model model.

    Each is the set of bit widths found, e.g. `({4}, {8})`.
    """
    layers = layer_tree.all_layers(model)
    weight_bits = {layer.weight_bits for layer in quantized_kernel_layers(layers)}
    activation_bits = {
        layer.num_bits
        for layer in layers
        if isinstance(layer, ActivationQuantizer)
    }
    return weight_bits, activation_bits


def is_quantization_aware(model):
    """Whether `model` holds layers made by `quantize_model`."""
    weight_bits, activation_bits = simulated_bits(model)
    return bool(weight_bits or activation_bits)


def with_bit_widths(model, *, weight_bits=8, activation_bits=8):
    """Returns a copy of a `quantize_model` model simulating other bit widths.

    The weights, learned activation ranges and switches are copied; only
    the rounding grid changes. TFLite's kernels are int8, so a model trained
    at 2 to 7 bits is exported through its 8-bit twin: the ranges it
    learned stay, and its values, already on a coarser grid, lose at most
    half an 8-bit step. `tfcompress.export.to_tflite` does this itself.

    Args:
        model: A model returned by `quantize_model` (and trained).
        weight_bits: Bits for kernels, 2 to 8. Defaults to `8`.
        activation_bits: Bits for activations, 2 to 8. Defaults to `8`.

    Returns:
        A new functional model, compiled like `model` (with a fresh
        optimizer) when `model` is compiled and uncompiled otherwise (see
        `tfcompress.graph.compile_like`); `model` is not modified.

    Raises:
        ValueError: For bit widths outside 2 to 8, or a model without
            quantization-aware layers.

    Example:

    ```python
    qat_4bit, _ = quantize_model(model, weight_bits=4)
    ...  # train it
    twin = with_bit_widths(qat_4bit, weight_bits=8, activation_bits=8)
    ```
    """
    check_bits("weight_bits", weight_bits)
    check_bits("activation_bits", activation_bits)
    if not is_quantization_aware(model):
        raise ValueError(
            f"The model {model.name!r} has no quantization-aware layers. "
            "Pass a model returned by tfcompress.quantization.quantize_model."
        )

    def clone(layer):
        config = layer.get_config()
        if has_quantized_kernel(layer):
            config["weight_bits"] = weight_bits
        if isinstance(layer, ActivationQuantizer):
            config["num_bits"] = activation_bits
        if "activation_bits" in config:
            # A twin rounding its own intermediate tensors.
            config["activation_bits"] = activation_bits
        return type(layer).from_config(config)

    copy = cloning.clone_model(model, clone, copy_weights=False)
    copy.set_weights(model.get_weights())
    return cloning.compile_like(copy, model)
