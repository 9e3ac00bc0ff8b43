"""A model as a tree of layers: sublayers at any depth, named by path.

Nested models and composite layers (`InvertedResidual` holds six) make a
model a tree. The tools name a layer by its path from the model, e.g.
`"block1/expand"`, so that two sublayers called `"depthwise"` in two blocks
stay apart.
"""

import dataclasses

from tfcompress.graph import keras_internals


@dataclasses.dataclass(frozen=True)
class LayerPath:
    """A layer and where it sits in a model.

    Attributes:
        path: Names from the model down to the layer, joined by `/`, e.g.
            `"block1/expand"` (the model's own name excluded).
        layer: The layer.
        ancestors: The layers containing it, outermost first (the model
            excluded).
    """

    path: str
    layer: object
    ancestors: tuple


def sublayers(layer):
    """The direct sublayers of `layer` (a model's layers, a block's parts)."""
    return keras_internals.sublayers(layer, recursive=False)


def all_layers(model, include_self=False):
    """Every layer under `model` at any depth, each once, in model order."""
    return keras_internals.sublayers(
        model, recursive=True, include_self=include_self
    )


def layers_of_type(model, layer_type):
    """The layers under `model` that are instances of `layer_type`."""
    return [
        layer for layer in all_layers(model) if isinstance(layer, layer_type)
    ]


def walk_layers(model):
    """Yields a `LayerPath` for every layer under `model`, parents first.

    A layer held in several places (shared) is yielded once, at its first
    path.
    """
    seen = set()

    def visit(layer, prefix, ancestors):
        for child in sublayers(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}{child.name}"
            yield LayerPath(path, child, ancestors)
            yield from visit(child, f"{path}/", (*ancestors, child))

    yield from visit(model, "", ())
