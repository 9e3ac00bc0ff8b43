"""Which weights of a model can be pruned, and which the user chose.

A prunable weight is a kernel that the layer registry lists for its layer
class (`tfcompress.graph.register_layer(..., prunable_kernels=...)`): the
kernels of Dense, EinsumDense, convolution (including transposed),
depthwise and separable convolution layers, Embedding tables, and the
`kernel` and `recurrent_kernel` of LSTM, GRU and SimpleRNN cells, found at
any depth: inside nested models, inside composite layers such as
tfcompress's `InvertedResidual`, and inside recurrent layers (their cells).
Each is named by its layer path, e.g. `"block1/expand"` or
`"lstm/lstm_cell/recurrent_kernel"`, so that two sublayers called
`"depthwise"` in two blocks stay apart.
"""

import dataclasses
import math

from tfcompress.graph import layer_tree
from tfcompress.graph import registry
from tfcompress.graph.filters import LayerFilter


@dataclasses.dataclass(frozen=True)
class PrunableWeight:
    """One kernel that pruning may sparsify.

    Args:
        path: Unique name: the layer path (`"block1/expand"`), followed by
            `/<attribute>` for a kernel not called `kernel` (e.g.
            `/pointwise_kernel` of a separable convolution).
        layer: The layer owning the kernel.
        variable: The kernel variable.
        ancestors: Layers containing `layer`, outermost first (the model
            excluded).
        input_channel_axis: Axis of the input channels, where N:M groups
            are formed; `None` for kernels without a reduction over input
            channels (depthwise kernels) or with another layout.
    """

    path: str
    layer: object
    variable: object
    ancestors: tuple
    input_channel_axis: int | None = None

    @property
    def size(self):
        return math.prod(self.variable.shape)


def _prunable_kernels(layer):
    return registry.rule_for(layer, "prunable_kernels") or ()


def walk_layers(model):
    """Yields `(path, layer, ancestors)` for every layer under `model`.

    Shared layers are yielded once, at their first path.
    """
    for entry in layer_tree.walk_layers(model):
        yield entry.path, entry.layer, entry.ancestors


def all_prunable_weights(model):
    """Every prunable kernel under `model`, in layer order."""
    found = []
    for path, layer, ancestors in walk_layers(model):
        for kernel in _prunable_kernels(layer):
            variable = getattr(layer, kernel.attribute, None)
            if variable is None:
                continue
            name = path if kernel.attribute == "kernel" else (
                f"{path}/{kernel.attribute}"
            )
            axis = kernel.input_axis
            if axis is not None:
                axis %= len(variable.shape)
            found.append(PrunableWeight(name, layer, variable, ancestors, axis))
    return found


def select_weights(model, filters=None, min_weights=0):
    """The kernels to prune and those skipped, with the reason.

    Args:
        model: A built Keras model.
        filters: Which kernels: `None` for every prunable kernel, or a
            `filters` argument (see `tfcompress.graph.LayerFilter`): a
            regular expression searched in the name of the layer owning
            the kernel and in the kernel's path (`"dense_1"`, `"block1"`
            for every kernel inside block1, `"block1/expand"`,
            `"pointwise_kernel"`), a layer class (`keras.layers.Conv2D`,
            or `InvertedResidual` for every kernel inside one), a callable
            `fn(layer) -> bool` called with the layer owning the kernel, or
            a list of them.
        min_weights: Kernels with fewer entries are skipped (too small to
            matter, and often the most sensitive, such as a first conv).

    Returns:
        `(selected, skipped)`: a list of `PrunableWeight` and a list of
        `(path, reason)` pairs.

    Raises:
        ValueError: if the model is not built, has nothing to prune, or a
            string or class in `filters` matches no prunable kernel.
    """
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built, so its weights do not exist yet. Call "
            "it on a batch or build it (`model.build(input_shape)`) first."
        )
    layer_filter = LayerFilter.get(filters)
    candidates = all_prunable_weights(model)
    unbuilt = [
        path
        for path, layer, _ in walk_layers(model)
        if _prunable_kernels(layer) and not layer.built
    ]
    if unbuilt:
        raise ValueError(
            f"Layers {', '.join(unbuilt)} are not built, so their kernels do "
            "not exist yet. Call the model on a batch of inputs first (a "
            "subclassed model's `build()` does not build its sublayers)."
        )
    if not candidates:
        raise ValueError(
            "The model has no prunable layer: pruning applies to the kernels "
            "of Dense, EinsumDense, convolution and recurrent layers and to "
            "Embedding tables (also inside nested models and tfcompress "
            "layers)."
        )
    layer_filter.check_matches(
        [_entry(weight) for weight in candidates], "magnitude pruning"
    )
    selected, skipped = [], []
    for weight in candidates:
        if not layer_filter(weight.layer, weight.path, weight.ancestors):
            skipped.append((weight.path, "not selected by filters"))
        elif weight.size < min_weights:
            skipped.append(
                (weight.path, f"{weight.size} weights < min_weights")
            )
        else:
            selected.append(weight)
    return selected, skipped


def _entry(weight):
    """`weight` as a `(path, layer, ancestors)` entry for a `LayerFilter`."""
    return (weight.path, weight.layer, weight.ancestors)
