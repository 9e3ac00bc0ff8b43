"""The decomposition methods, found through the layer registry.

Each method knows its ranks, its MACs and how to build the replacement
layer; which layer classes it applies to is the `decompositions` aspect of
the layer registry (`tfcompress.graph.register_layer`). `decompose` and
`rank_selection` only dispatch, so a new method is one new class. A method
has `name`, `stop_grid_at_break_even` and:

- `unsupported(layer)` -> reason or `None`
- `full_rank(layer)`, `resolve_rank(layer, rank, argument)` -> concrete rank
- `exceeds_full_rank(layer, rank)` -> bool
- `candidate_ranks(layer)`, `default_grid(layer)` -> ranks by rising MACs
- `macs(layer, input_shape, output_shape, rank)` -> one call's MACs
- `decompose(layer, rank, options)` -> (built replacement, kernel error)
"""

from tfcompress.graph import registry


def method_names():
    """The names of every registered decomposition method, sorted."""
    names = set()
    for methods in registry.registered_classes("decompositions").values():
        names.update(methods)
    return sorted(names)


def method_for(layer, name):
    """The method `name` for `layer`, or `None` if it does not apply."""
    return (registry.rule_for(layer, "decompositions") or {}).get(name)


def layer_description(name):
    """The layer classes method `name` applies to, e.g. `"Dense"`."""
    return " or ".join(
        cls.__name__
        for cls, methods in registry.registered_classes(
            "decompositions"
        ).items()
        if name in methods
    )


def resolve_method(name, argument):
    """`name` if it is a registered method, else a `ValueError`."""
    names = method_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(
            f"`{argument}` must be one of "
            f"{', '.join(repr(m) for m in names)}, or a dict "
            "{layer_name: method}. Received: "
            f"{argument}={name!r}"
        )
    return name
