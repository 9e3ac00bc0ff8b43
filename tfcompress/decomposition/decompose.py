"""Turns a trained model into its decomposed twin: `decompose`."""

import bisect
import dataclasses
import numbers
import time

import keras

from tfcompress import argument_validation
from tfcompress.analysis import profile
from tfcompress.decomposition import fidelity
from tfcompress.decomposition.report import DecompositionReport
from tfcompress.decomposition.report import LayerDecomposition
from tfcompress.decomposition.report import SkippedLayer
from tfcompress.decomposition.report import format_rank
from tfcompress.graph import cloning
from tfcompress.graph import functional_graph
from tfcompress.graph import registry

# Each method knows its ranks, its MACs and how to build the replacement
# layer; which layer classes it applies to is the `decompositions` aspect of
# the layer registry (`tfcompress.graph.register_layer`). `decompose` and
# `rank_selection` only dispatch, so a new method is one new class. A method
# has `name`, `stop_grid_at_break_even` and:
#   unsupported(layer) -> reason or None
#   full_rank(layer), resolve_rank(layer, rank, argument) -> concrete rank
#   exceeds_full_rank(layer, rank) -> bool
#   candidate_ranks(layer), default_grid(layer) -> ranks by rising MACs
#   macs(layer, input_shape, output_shape, rank) -> one call's MACs
#   decompose(layer, rank, options) -> (built replacement, kernel error)


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


def decompose(
    model,
    method="svd",
    rank=None,
    layers=None,
    target_macs_ratio=None,
    data=None,
    n_iter_max=100,
    init="svd",
    random_state=0,
    verbose=True,
):
    """Returns a copy of `model` whose big layers are low-rank factorized.

    Chosen `Dense` layers become `LowRankDense` (truncated SVD, method
    `"svd"`); chosen `Conv2D` layers become `CPConv2D` (CP by alternating
    least squares, method `"cp"`, Lebedev et al. 2015) or `Tucker2Conv2D`
    (Tucker-2 by higher-order orthogonal iteration, method `"tucker2"`,
    Kim et al. 2016). The factors come from the trained weights, so the new
    model computes nearly what the original does before any fine-tuning;
    compile it and fine-tune it with `fit` to win back the accuracy the
    truncation cost. Every other layer is a copy with the same weights, and
    the input model is never modified.

    A layer is left unchanged, and listed in `report.skipped` with the
    reason, when the decomposition would not reduce its MACs (the rank is
    too large for a small layer), or, when the layers were not named, when
    the method cannot handle it (grouped, dilated or channels-first
    convolutions, quantized layers) or the rank exceeds its full rank. A
    layer named explicitly raises instead.

    Only the direct layers of a functional or Sequential model are
    candidates (not those inside nested models or composite layers). The
    replacement keeps the layer's name, activation, bias, strides, padding,
    dtype policy and `trainable` flag; its regularizers and constraints are
    not carried over, since they were meant for the full kernel, not for
    its factors.

    Args:
        model: A built functional or Sequential `keras.Model` with known
            input shapes.
        method: `"svd"` (`Dense` layers), `"cp"` or `"tucker2"` (`Conv2D`
            layers), or a dict `{layer_name: method}`, which also chooses
            the layers. Defaults to `"svd"`.
        rank: The rank of every chosen layer, or a dict
            `{layer_name: rank}` (which also chooses the layers when
            `layers` is `None`). A rank is an integer >= 1; for `"svd"` and
            `"tucker2"` also a float in `(0, 1]`, the fraction of the
            kernel's energy (sum of squared singular values) to keep; for
            `"tucker2"` also a pair `(r_in, r_out)` (an integer or float
            sets both). Exactly one of `rank` and `target_macs_ratio` must
            be given. Defaults to `None`.
        layers: Which layers to decompose: a list of layer names, or a
            callable `fn(layer) -> bool` applied to the layers the method
            handles. Defaults to `None`: every layer the method handles (or
            the keys of a `method` or `rank` dict).
        target_macs_ratio: Float in `(0, 1)`: choose the ranks so that the
            whole model's MACs are at most this fraction of the original's.
            Every chosen layer keeps the same fraction of its MACs (as far
            as the ranks allow), the largest fraction that meets the
            target. Defaults to `None`.
        data: Optional model inputs on which to measure each layer's
            output error (the first 256 examples are used). Defaults to
            `None`: random normal inputs of each layer's input shape.
        n_iter_max: Maximum iterations of CP's ALS and Tucker-2's HOOI.
            Defaults to `100`.
        init: Initialization of CP and Tucker-2, `"svd"` or `"random"`.
            Defaults to `"svd"`.
        random_state: Seed of CP and Tucker-2. Defaults to `0`.
        verbose: Whether to print one line per decomposed layer as it is
            done (CP of a large kernel takes a while). Defaults to `True`.

    Returns:
        `(new_model, report)`: an uncompiled `keras.Model` of the same kind
        and a `DecompositionReport` with, per layer, the rank, MACs and
        parameters before and after, and the kernel and output errors, plus
        the skipped layers and the whole model's MACs ratio.

    Raises:
        ValueError: For a subclassed or unbuilt model, an unknown method, a
            bad rank (0, not an integer or fraction, larger than a named
            layer's full rank), a layer name the model does not have, a
            named layer the method cannot handle (e.g. a grouped
            convolution), or an unreachable `target_macs_ratio`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((64,)),
    ...     keras.layers.Dense(64, activation="relu", name="hidden"),
    ...     keras.layers.Dense(10, name="logits"),
    ... ])
    >>> new_model, report = decompose(model, "svd", rank=8, verbose=False)
    >>> type(new_model.get_layer("hidden")).__name__
    'LowRankDense'
    >>> [(row.name, row.rank) for row in report.layers]
    [('hidden', 8), ('logits', 8)]
    >>> report.macs_before == 64 * 64 + 64 * 10
    True
    >>> report.macs_after == (64 + 64) * 8 + (64 + 10) * 8
    True
    """
    _check_model(model)
    if (rank is None) == (target_macs_ratio is None):
        raise ValueError(
            "Pass exactly one of `rank` and `target_macs_ratio`. Received: "
            f"rank={rank!r}, target_macs_ratio={target_macs_ratio!r}"
        )
    if target_macs_ratio is not None:
        _check_target(target_macs_ratio)
    options = iteration_options(n_iter_max, init, random_state)
    candidates, skipped = choose_layers(model, method, rank, layers)
    before = profile(model)
    measure(candidates, before)
    if target_macs_ratio is not None:
        candidates, more_skipped = _ranks_for_target(
            candidates, before.macs, target_macs_ratio
        )
    else:
        candidates, more_skipped = _ranks_from_argument(candidates, rank)
    skipped.extend(more_skipped)

    probes = probe_inputs(model, candidates, data)
    replacements = {}
    results = []
    for candidate, probe in zip(candidates, probes):
        start = time.perf_counter()
        new_layer, kernel_error = candidate.method.decompose(
            candidate.layer, candidate.rank, options
        )
        new_layer.trainable = candidate.layer.trainable
        output_error = fidelity.output_error(candidate.layer, new_layer, probe)
        replacements[candidate.layer.name] = new_layer
        results.append((candidate, new_layer, kernel_error, output_error))
        if verbose:
            print(
                f"{candidate.layer.name}: {candidate.method.name} rank "
                f"{format_rank(candidate.rank)}, kernel error "
                f"{kernel_error:.4f}, output error {output_error:.4f} "
                f"({time.perf_counter() - start:.1f} s)"
            )

    new_model = _rebuild(model, replacements)
    after = profile(new_model)
    after_rows = {row.name: row for row in after.rows if row.depth == 0}
    rows = [
        LayerDecomposition(
            name=candidate.layer.name,
            method=candidate.method.name,
            rank=candidate.rank,
            layer_type=type(new_layer).__name__,
            macs_before=candidate.macs_before,
            macs_after=after_rows[candidate.layer.name].macs,
            params_before=candidate.layer.count_params(),
            params_after=new_layer.count_params(),
            kernel_error=kernel_error,
            output_error=output_error,
        )
        for candidate, new_layer, kernel_error, output_error in results
    ]
    report = DecompositionReport(
        model_name=model.name,
        layers=rows,
        skipped=skipped,
        macs_before=before.macs,
        macs_after=after.macs,
        params_before=before.params,
        params_after=after.params,
        probe="random normal" if data is None else "data",
    )
    return new_model, report


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


def iteration_options(n_iter_max, init, random_state):
    """The checked settings of CP's ALS and Tucker-2's HOOI, as a dict."""
    argument_validation.positive_int("n_iter_max", n_iter_max)
    if init not in ("svd", "random"):
        raise ValueError(
            f'`init` must be "svd" or "random". Received: init={init!r}'
        )
    return {
        "n_iter_max": n_iter_max,
        "init": init,
        "random_state": random_state,
    }


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a functional or Sequential `keras.Model`. "
            f"Received: model={model!r} (of type {type(model).__name__})"
        )
    functional_graph.functional_graph(
        model,
        "decompose",
        hint="Or decompose its layers one by one with `svd_factors`, "
        "`cp_factors` or `tucker2_factors` and the layers' `from_factors`.",
    )
    if not model.built or not _inputs(model):
        raise ValueError(
            "`model` must be built with known inputs: start it with "
            "`keras.Input(shape)`. Received: model "
            f"{model.name!r} (not built)"
        )


def _inputs(model):
    try:
        return model.inputs
    except (AttributeError, ValueError):
        return None


def _resolve_method(name, argument):
    names = method_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(
            f"`{argument}` must be one of "
            f"{', '.join(repr(m) for m in names)}, or a dict "
            "{layer_name: method}. Received: "
            f"{argument}={name!r}"
        )
    return name


def choose_layers(model, method, rank, layers):
    """The candidate layers (explicit ones checked), and those skipped.

    See `decompose` for the meaning of the arguments.

    Returns:
        `(candidates, skipped)`: lists of `Candidate` and `SkippedLayer`.
    """
    by_name = {layer.name: layer for layer in model.layers}
    explicit = None
    if isinstance(method, dict):
        if layers is not None:
            raise ValueError(
                "A dict `method` already chooses the layers; do not pass "
                f"`layers` too. Received: layers={layers!r}"
            )
        methods = {
            name: _resolve_method(value, f"method[{name!r}]")
            for name, value in method.items()
        }
        explicit = list(method)
        default = None
    else:
        default = _resolve_method(method, "method")
        methods = None
    if layers is not None and not callable(layers):
        if not isinstance(layers, (list, tuple)) or not all(
            isinstance(name, str) for name in layers
        ):
            raise ValueError(
                "`layers` must be a list of layer names or a callable "
                f"`fn(layer) -> bool`. Received: layers={layers!r}"
            )
        explicit = list(dict.fromkeys(layers))
    if isinstance(rank, dict):
        if callable(layers):
            raise ValueError(
                "A dict `rank` names its layers; pass `layers` as a list of "
                "the same names or leave it `None`. Received: "
                f"layers={layers!r}"
            )
        if explicit is None and layers is None:
            explicit = list(rank)
        if explicit is not None:
            extra = [name for name in rank if name not in explicit]
            missing = [name for name in explicit if name not in rank]
            if extra or missing:
                raise ValueError(
                    "A dict `rank` must give a rank for each chosen layer "
                    f"and no other. Chosen layers: {explicit}. Received: "
                    f"rank={rank!r}"
                )

    if explicit is not None:
        candidates = []
        for name in explicit:
            method_name = methods[name] if methods else default
            layer = by_name.get(name)
            handled = [
                layer.name
                for layer in model.layers
                if method_for(layer, method_name) is not None
            ]
            if layer is None:
                raise ValueError(
                    f"Model {model.name!r} has no layer named {name!r} "
                    "among its direct layers. Layers that method "
                    f"{method_name!r} can decompose: {handled}"
                )
            layer_method = method_for(layer, method_name)
            if layer_method is None:
                raise ValueError(
                    f"Method {method_name!r} decomposes "
                    f"{layer_description(method_name)} layers; layer "
                    f"{name!r} is a {type(layer).__name__}. Such layers "
                    f"in the model: {handled}"
                )
            reason = layer_method.unsupported(layer)
            if reason is not None:
                raise ValueError(
                    f"Layer {name!r} cannot be decomposed with "
                    f"{method_name!r}: {reason}."
                )
            candidates.append(Candidate(layer, layer_method, explicit=True))
        return candidates, []

    candidates, skipped = [], []
    for layer in model.layers:
        layer_method = method_for(layer, default)
        if layer_method is None:
            continue
        if callable(layers) and not layers(layer):
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


def probe_inputs(model, candidates, data):
    """Inputs of each candidate: from `data` if given, else random."""
    if data is not None:
        return fidelity.layer_inputs(
            model, [candidate.layer for candidate in candidates], data
        )
    return [
        fidelity.random_probes(candidate.layer.input.shape)
        for candidate in candidates
    ]


def _ranks_from_argument(candidates, rank):
    """Candidates with their rank set, and those skipped."""
    kept, skipped = [], []
    for candidate in candidates:
        name = candidate.layer.name
        method = candidate.method
        if isinstance(rank, dict):
            value, argument = rank[name], f"rank[{name!r}]"
        else:
            value, argument = rank, "rank"
        concrete = method.resolve_rank(candidate.layer, value, argument)
        full = method.full_rank(candidate.layer)
        if method.exceeds_full_rank(candidate.layer, concrete):
            message = (
                f"`{argument}` of layer {name!r} must be at most its full "
                f"rank {format_rank(full)} for {method.name!r}. Received: "
                f"{argument}={value!r}"
            )
            if candidate.explicit:
                raise ValueError(message)
            skipped.append(
                SkippedLayer(
                    name,
                    f"rank {format_rank(concrete)} exceeds the full rank "
                    f"{format_rank(full)}",
                )
            )
            continue
        macs = candidate.macs_after(concrete)
        if macs >= candidate.macs_before:
            skipped.append(
                SkippedLayer(
                    name,
                    f"{method.name} rank {format_rank(concrete)} needs "
                    f"{macs:,} MACs, not fewer than the original's "
                    f"{candidate.macs_before:,}",
                )
            )
            continue
        candidate.rank = concrete
        kept.append(candidate)
    return kept, skipped


def _check_target(target):
    if (
        not isinstance(target, numbers.Real)
        or isinstance(target, bool)
        or not 0 < target < 1
    ):
        raise ValueError(
            "`target_macs_ratio` must be a float in (0, 1), the fraction of "
            "the model's MACs to keep. Received: "
            f"target_macs_ratio={target!r}"
        )


def _ranks_for_target(candidates, total_macs, target):
    """Ranks that bring the model's MACs to at most `target * total_macs`.

    Every candidate keeps the same fraction f of its MACs (its largest rank
    within `f * macs_before`, at least its smallest rank); f is the
    largest fraction that meets the target, found by bisection, since the
    total grows with f.
    """
    options, skipped = [], []
    for candidate in candidates:
        ranks = [
            rank
            for rank in candidate.method.candidate_ranks(candidate.layer)
            if candidate.macs_after(rank) < candidate.macs_before
        ]
        if not ranks:
            skipped.append(
                SkippedLayer(
                    candidate.layer.name,
                    f"no {candidate.method.name} rank needs fewer MACs than "
                    f"the original's {candidate.macs_before:,}",
                )
            )
            continue
        options.append((candidate, ranks, [candidate.macs_after(r) for r in ranks]))
    kept_macs = total_macs - sum(c.macs_before for c, _, _ in options)

    def choose(fraction):
        chosen = []
        for candidate, ranks, macs in options:
            index = bisect.bisect_right(macs, fraction * candidate.macs_before)
            chosen.append(max(index - 1, 0))
        total = kept_macs + sum(
            macs[i] for (_, _, macs), i in zip(options, chosen)
        )
        return chosen, total

    budget = target * total_macs
    chosen, total = choose(0.0)
    if total > budget:
        raise ValueError(
            f"`target_macs_ratio` {target} is not reachable: with every "
            "chosen layer at its smallest rank the model keeps "
            f"{total / total_macs:.3f} of its MACs. Choose more layers or a "
            f"larger ratio. Received: target_macs_ratio={target!r}"
        )
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if choose(middle)[1] <= budget:
            low = middle
        else:
            high = middle
    chosen, _ = choose(low)
    kept = []
    for (candidate, ranks, _), index in zip(options, chosen):
        candidate.rank = ranks[index]
        kept.append(candidate)
    return kept, skipped


def _rebuild(model, replacements):
    """A copy of `model` with `replacements` (by name) swapped in."""
    return cloning.clone_model(
        model, lambda layer: replacements.get(layer.name)
    )
