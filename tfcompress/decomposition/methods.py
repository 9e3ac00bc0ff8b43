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


# `method="auto"` picks per layer, in this order of preference: Tucker-2
# for a kxk convolution (it keeps the kxk window whole), then SVD (Dense)
# and channel SVD (1x1 and 1-D convolutions): one exact truncated SVD,
# then CP.
AUTO = "auto"
_AUTO_ORDER = ("tucker2", "svd", "channel_svd", "cp")


def method_names():
    """The names of every registered decomposition method, and `"auto"`."""
    names = set()
    for methods in registry.registered_classes("decompositions").values():
        names.update(methods)
    return [AUTO, *sorted(names)]


def method_for(layer, name):
    """The method `name` for `layer`, or `None` if it does not apply."""
    methods = registry.rule_for(layer, "decompositions") or {}
    if name != AUTO:
        return methods.get(name)
    spatial = getattr(layer, "kernel_size", ())
    for candidate in _AUTO_ORDER:
        method = methods.get(candidate)
        if method is None or method.unsupported(layer) is not None:
            continue
        if candidate == "tucker2" and all(k == 1 for k in spatial):
            continue  # A 1x1 kernel: SVD does it in one product fewer.
        return method
    # None applies: the first, so that its reason is reported.
    return next(iter(methods.values()), None)


def layer_description(name):
    """The layer classes method `name` applies to, e.g. `"Dense"`."""
    if name == AUTO:
        name = None
    return " or ".join(
        cls.__name__
        for cls, methods in registry.registered_classes(
            "decompositions"
        ).items()
        if name is None or name in methods
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
