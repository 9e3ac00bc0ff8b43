"""What every tfcompress tool knows about Keras's own layers.

One module per family of Keras layers; each registers, for its classes,
every aspect the tools read from the layer registry
(`tfcompress.graph.register_layer`): prunable kernels, MACs, channel rule,
quantization rule and decompositions. To teach tfcompress a new Keras
layer, add it to its family's module (or a new module imported here).
`tfcompress/__init__.py` imports this package, so the rules are in place
before any tool runs.
"""

from tfcompress.keras_layers import activations
from tfcompress.keras_layers import applications
from tfcompress.keras_layers import attention
from tfcompress.keras_layers import convolution
from tfcompress.keras_layers import core
from tfcompress.keras_layers import merging
from tfcompress.keras_layers import normalization
from tfcompress.keras_layers import ops
from tfcompress.keras_layers import pooling
from tfcompress.keras_layers import preprocessing
from tfcompress.keras_layers import recurrent
from tfcompress.keras_layers import regularization
from tfcompress.keras_layers import reshaping

__all__ = [
    "activations",
    "applications",
    "attention",
    "convolution",
    "core",
    "merging",
    "normalization",
    "ops",
    "pooling",
    "preprocessing",
    "recurrent",
    "regularization",
    "reshaping",
]
