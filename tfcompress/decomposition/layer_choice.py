"""Which layers `decompose` and `rank_selection` work on.

A layer is chosen by name (the keys of a `method` or `rank` dict: exact
names, and anything wrong with one raises) or by `filters` (Keras's
`Model.quantize(filters=...)` semantics, see `tfcompress.graph.filters`:
layers the method cannot handle are skipped, with the reason).
"""

import dataclasses

import keras

from tfcompress.decomposition import methods
from tfcompress.decomposition.report import SkippedLayer
from tfcompress.graph.filters import LayerFilter
from tfcompress.graph.filters import direct_layers


@dataclasses.dataclass
class Candidate:
    """A layer chosen for decomposition, and what is known of it."""

    layer: keras.layers.Layer
    method: object
    explicit: bool
    rank: object = None
    macs_before: int = 0
    calls: int = 1
    input_shape: tuple = ()
    output_shape: tuple = ()

    def macs_after(self, rank):
        """MACs per example of the replacement at `rank`, all calls."""
        return self.calls * self.method.macs(
            self.layer, self.input_shape, self.output_shape, rank
        )


def choose_layers(model, method, rank, filters):
    """The candidate layers (explicit ones checked), and those skipped.

    See `decompose` for the meaning of the arguments.

    Returns:
        `(candidates, skipped)`: lists of `Candidate` and `SkippedLayer`.
    """
    explicit = None
    if isinstance(method, dict):
        if filters is not None:
            raise ValueError(
                "A dict `method` already chooses the layers; do not pass "
                f"`filters` too. Received: filters={filters!r}"
            )
        named_methods = {
            name: methods.resolve_method(value, f"method[{name!r}]")
            for name, value in method.items()
        }
        explicit = list(method)
        default = None
    else:
        default = methods.resolve_method(method, "method")
        named_methods = None
    if isinstance(rank, dict):
        if filters is not None:
            raise ValueError(
                "A dict `rank` names its layers; do not pass `filters` too "
                "(give the ranks of the layers you want). Received: "
                f"filters={filters!r}"
            )
        if explicit is None:
            explicit = list(rank)
        extra = [name for name in rank if name not in explicit]
        missing = [name for name in explicit if name not in rank]
        if extra or missing:
            raise ValueError(
                "A dict `rank` must give a rank for each chosen layer "
                f"and no other. Chosen layers: {explicit}. Received: "
                f"rank={rank!r}"
            )
    if explicit is not None:
        return _named_layers(model, explicit, named_methods, default), []
    return _filtered_layers(model, default, filters)


def _named_layers(model, names, named_methods, default):
    """Candidates for layers named in a dict; anything wrong raises."""
    by_name = {layer.name: layer for layer in model.layers}
    candidates = []
    for name in names:
        method_name = named_methods[name] if named_methods else default
        layer = by_name.get(name)
        if layer is None:
            raise ValueError(
                f"Model {model.name!r} has no layer named {name!r} "
                "among its direct layers. Layers that method "
                f"{method_name!r} can decompose: "
                f"{_handled_names(model, method_name)}"
            )
        candidates.append(named_candidate(model, layer, method_name))
    return candidates


def named_candidate(model, layer, method_name):
    """The `Candidate` of `layer` (of `model`), which the user named.

    Raises:
        ValueError: If `method_name` cannot decompose it, saying why.
    """
    layer_method = methods.method_for(layer, method_name)
    if layer_method is None:
        raise ValueError(
            f"Method {method_name!r} decomposes "
            f"{methods.layer_description(method_name)} layers; layer "
            f"{layer.name!r} is a {type(layer).__name__}. Such layers "
            f"in the model: {_handled_names(model, method_name)}"
        )
    reason = layer_method.unsupported(layer)
    if reason is not None:
        raise ValueError(
            f"Layer {layer.name!r} cannot be decomposed with "
            f"{method_name!r}: {reason}."
        )
    return Candidate(layer, layer_method, explicit=True)


def _handled_names(model, method_name):
    return [
        layer.name
        for layer in model.layers
        if methods.method_for(layer, method_name) is not None
    ]


def _handles(layer_method, layer):
    return layer_method is not None and layer_method.unsupported(layer) is None


def _filtered_layers(model, method_name, filters):
    """Candidates among the layers `filters` selects, and those skipped."""
    layer_filter = LayerFilter.get(filters)
    handled = [
        entry
        for entry in direct_layers(model)
        if _handles(methods.method_for(entry.layer, method_name), entry.layer)
    ]
    layer_filter.check_matches(handled, f"method {method_name!r}")
    candidates, skipped = [], []
    for entry in direct_layers(model):
        layer = entry.layer
        if not layer_filter(layer):
            continue
        layer_method = methods.method_for(layer, method_name)
        if layer_method is None:
            if not layer_filter.selects_all and layer.weights:
                skipped.append(
                    SkippedLayer(
                        layer.name,
                        f"method {method_name!r} decomposes "
                        f"{methods.layer_description(method_name)} layers, "
                        f"not {type(layer).__name__}",
                    )
                )
            continue
        reason = layer_method.unsupported(layer)
        if reason is not None:
            skipped.append(SkippedLayer(layer.name, reason))
            continue
        candidates.append(Candidate(layer, layer_method, explicit=False))
    return candidates, skipped


def measure(candidates, report):
    """Fills in the MACs, calls and shapes of each candidate."""
    rows = {row.name: row for row in report.rows if row.depth == 0}
    for candidate in candidates:
        layer = candidate.layer
        row = rows[layer.name]
        candidate.macs_before = row.macs
        candidate.calls = max(row.calls, 1)
        candidate.input_shape = (1, *layer.input.shape[1:])
        candidate.output_shape = (1, *layer.output.shape[1:])
