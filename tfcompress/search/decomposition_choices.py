"""Decomposition as a per-layer choice of the channel search.

With `search_channel_sparsity(..., decompose=...)` every trial also picks,
for each candidate layer, whether to factorize it and how much of its
kernel's energy to keep. A candidate model is pruned first and decomposed
second (`decompose(pruned, rank={layer: fraction})`), so the ranks are
measured on the kernels that pruning left.
"""

from tfcompress.decomposition.decompose import decompose
from tfcompress.decomposition import layer_choice
from tfcompress.decomposition import methods
from tfcompress.graph.filters import LayerFilter

# The energy fractions a trial picks from, per layer; `None` keeps it whole.
# Energy fractions rather than integer ranks so that one grid fits layers
# of every size, and also after pruning has shrunk them. 0.99 is nearly
# lossless, and a tiny layer often has no 0.99 rank below its break-even
# (it is then skipped); 0.6 still recovers in a short fine-tune, below it
# the truncation error of a trained kernel needs more than that.
ENERGY_CHOICES = (None, 0.99, 0.95, 0.9, 0.8, 0.6)
# Every method `method="auto"` picks (Tucker-2, SVD, channel SVD) takes an
# energy fraction.
METHOD = "auto"


def decomposable_layers(model, decompose_layers):
    """The names of the layers a search may decompose, in model order.

    Args:
        model: The model to search.
        decompose_layers: `"auto"` (every layer `decompose` takes by
            default) or a `filters` value of `decompose` (a regular
            expression, a list of them, a layer class, a callable).

    Raises:
        ValueError: For a layer named exactly that `decompose` cannot
            handle (with the reason), a filter that selects no layer it
            can handle, or no candidate at all.
    """
    filters = None if decompose_layers == METHOD else decompose_layers
    if filters is None and decompose_layers != METHOD or isinstance(filters, bool):
        raise ValueError(
            '`decompose` must be "auto", a layer name (a regular '
            "expression), a list of them, a layer class or a callable "
            "`fn(layer) -> bool`. Received: "
            f"decompose={decompose_layers!r}"
        )
    layer_filter = LayerFilter.get(filters, argument="decompose")
    if filters is not None:
        _check_named_layers(model, filters)
    candidates, _ = layer_choice.choose_layers(model, METHOD, None, layer_filter)
    if not candidates:
        raise ValueError(
            f"`decompose={decompose_layers!r}` selects no layer of model "
            f"{model.name!r} that `decompose` can factorize (it handles "
            f"{methods.layer_description(METHOD)} layers)."
        )
    return [candidate.layer.name for candidate in candidates]


def _check_named_layers(model, filters):
    """Raises for a string that is exactly the name of a layer `decompose`
    cannot handle: naming it means wanting it, so skipping would mislead."""
    items = filters if isinstance(filters, (list, tuple)) else [filters]
    by_name = {layer.name: layer for layer in model.layers}
    for item in items:
        layer = by_name.get(item) if isinstance(item, str) else None
        if layer is None:
            continue
        try:
            layer_choice.named_candidate(model, layer, METHOD)
        except ValueError as error:
            raise ValueError(
                f"`decompose` names layer {item!r}, which cannot be "
                f"decomposed: {error} Received: decompose={filters!r}"
            ) from None


def decompose_pruned(pruned, ranks):
    """`pruned` with the layers of `ranks` ({name: energy fraction})
    factorized, compiled like `pruned`.

    Returns:
        `(model, applied, report)`: the model, the `{name: fraction}` of the
        layers actually decomposed (one that pruning left too small for a
        rank to save MACs is skipped, as `decompose` skips it), and the
        `DecompositionReport`.
    """
    model, report = decompose(pruned, method=METHOD, rank=dict(ranks), verbose=0)
    applied = {row.name: ranks[row.name] for row in report.rows}
    return model, applied, report

