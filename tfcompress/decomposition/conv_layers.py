"""Which `Conv2D` layers CP and Tucker-2 can decompose, and their weights.

Both replacements (`CPConv2D`, `Tucker2Conv2D`) run channels-last, with
one group and no dilation: a grouped kernel is block-diagonal over the
channels, and a dilated one would need dilated depthwise passes, neither of
which the replacement layers express.
"""

import keras


def unsupported_conv(layer):
    """Why `layer` (a `Conv2D`) cannot be decomposed, or `None`."""
    if getattr(layer, "quantization_mode", None) is not None:
        return f"quantized ({layer.quantization_mode}) Conv2D layer"
    if getattr(layer, "groups", 1) != 1:
        return (
            f"grouped convolution (groups={layer.groups}); only groups=1 "
            "can be decomposed"
        )
    if tuple(layer.dilation_rate) != (1, 1):
        return (
            f"dilated convolution (dilation_rate={tuple(layer.dilation_rate)}"
            "); only dilation_rate=1 can be decomposed"
        )
    if layer.data_format != "channels_last":
        return (
            f"data_format={layer.data_format!r}; only channels_last can be "
            "decomposed"
        )
    return None


def kernel(layer):
    """The kernel `(kh, kw, S, T)` of `layer` as numpy."""
    return keras.ops.convert_to_numpy(layer.kernel)


def bias(layer):
    """The bias `(T,)` of `layer` as numpy, or `None`."""
    if not layer.use_bias:
        return None
    return keras.ops.convert_to_numpy(layer.bias)


def replacement_kwargs(layer):
    """Constructor arguments a replacement layer takes over from `layer`."""
    return {
        "strides": tuple(layer.strides),
        "padding": layer.padding,
        "activation": layer.activation,
        "name": layer.name,
        "dtype": layer.dtype_policy,
    }
