"""Which weights of a model can be pruned, and which the user chose.

A prunable weight is a kernel that the layer registry lists for its layer
class (`tfcompress.graph.register_layer(..., prunable_kernels=...)`): the
kernels of Dense, EinsumDense, convolution (including transposed),
depthwise and separable convolution layers, found at any depth: inside
nested models and inside composite layers such as tfcompress's
`InvertedResidual`. Each is named by its layer path, e.g. `"block1/expand"`,
so that two sublayers called `"depthwise"` in two blocks stay apart.
"""

import dataclasses
import inspect
import math

from tfcompress.graph import layer_tree
from tfcompress.graph import registry


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


def selects(selector, weight):
    """Whether `weight` is selected by one name, class or predicate."""
    chain = (*weight.ancestors, weight.layer)
    if isinstance(selector, str):
        # A layer's path or name, or that of a layer containing it: "block1"
        # selects every kernel inside block1.
        prefixes = [weight.path]
        path = ""
        for layer in chain:
            path = f"{path}{layer.name}"
            prefixes.append(path)
            path += "/"
        names = {layer.name for layer in chain}
        return selector in prefixes or selector in names
    if inspect.isclass(selector):
        return any(isinstance(layer, selector) for layer in chain)
    return bool(selector(weight.layer))


def select_weights(model, layers=None, min_weights=0):
    """The kernels to prune and those skipped, with the reason.

    Args:
        model: A built Keras model.
        layers: `None` for every prunable layer; otherwise a list whose
            items are layer names or paths (`"dense_1"`, `"block1"`,
            `"block1/expand"`), layer classes (`keras.layers.Conv2D`, or
            `InvertedResidual` for every kernel inside one), or predicates
            `fn(layer) -> bool` called with the layer owning the kernel.
            A single item may be passed without a list.
        min_weights: Kernels with fewer entries are skipped (too small to
            matter, and often the most sensitive, such as a first conv).

    Returns:
        `(selected, skipped)`: a list of `PrunableWeight` and a list of
        `(path, reason)` pairs.

    Raises:
        ValueError: if the model is not built, has nothing to prune, or a
            name in `layers` matches no prunable layer.
    """
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built, so its weights do not exist yet. Call "
            "it on a batch or build it (`model.build(input_shape)`) first."
        )
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
            "of Dense, EinsumDense and convolution layers (also inside "
            "nested models and tfcompress layers)."
        )
    if layers is not None and not isinstance(layers, (list, tuple, set)):
        layers = [layers]
    if layers is not None:
        for selector in layers:
            valid = isinstance(selector, str) or callable(selector)
            if not valid:
                raise ValueError(
                    "Items of `layers` must be layer names, layer classes or "
                    f"predicates `fn(layer) -> bool`. Received: {selector!r}"
                )
            if not isinstance(selector, str):
                continue
            if not any(selects(selector, w) for w in candidates):
                names = ", ".join(w.path for w in candidates)
                raise ValueError(
                    f"No prunable layer is named {selector!r}. Prunable "
                    f"kernels: {names}."
                )
    selected, skipped = [], []
    for weight in candidates:
        if layers is not None and not any(
            selects(s, weight) for s in layers
        ):
            skipped.append((weight.path, "not selected"))
        elif weight.size < min_weights:
            skipped.append(
                (weight.path, f"{weight.size} weights < min_weights")
            )
        else:
            selected.append(weight)
    return selected, skipped
