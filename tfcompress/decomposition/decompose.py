"""Turns a trained model into its decomposed twin: `decompose`."""

import time

import keras

from tfcompress import argument_validation
from tfcompress.analysis import profile
from tfcompress.decomposition import fidelity
from tfcompress.decomposition import layer_choice
from tfcompress.decomposition import rank_choice
from tfcompress.decomposition.blas_threads import single_blas_thread
from tfcompress.decomposition.report import DecompositionReport
from tfcompress.decomposition.report import LayerDecomposition
from tfcompress.decomposition.report import format_rank
from tfcompress.graph import cloning
from tfcompress.graph import functional_graph


def decompose(
    model,
    *,
    method="auto",
    rank=None,
    target_macs_ratio=None,
    filters=None,
    data=None,
    n_iter_max=100,
    init="svd",
    random_state=0,
    verbose="auto",
):
    """Returns a copy of `model` whose big layers are low-rank factorized.

    Chosen `Dense` layers become `LowRankDense` (truncated SVD, method
    `"svd"`); chosen `Conv1D`/`Conv2D` layers `LowRankConv1D`/
    `LowRankConv2D` (truncated SVD of the kernel as a matrix, Zhang et al.
    2015, method `"channel_svd"`), `CPConv2D` (CP by alternating
    least squares, method `"cp"`, Lebedev et al. 2015) or `Tucker2Conv2D`
    (Tucker-2 by higher-order orthogonal iteration, method `"tucker2"`,
    Kim et al. 2016). The factors come from the trained weights, so the new
    model computes nearly what the original does before any fine-tuning;
    compile it and fine-tune it with `fit` to win back the accuracy the
    truncation cost. Every other layer is a copy with the same weights, and
    the input model is never modified.

    A layer is left unchanged, and listed in `report.skipped` with the
    reason, when the decomposition would not reduce its MACs (the rank is
    too large for a small layer), or, when it was chosen by `filters`
    (or by default), when the method cannot handle it (another layer
    class, grouped, dilated or channels-first convolutions, quantized
    layers) or the rank exceeds its full rank. A layer named explicitly
    (a key of a `method` or `rank` dict) raises instead.

    Only the direct layers of a functional or Sequential model are
    candidates (not those inside nested models or composite layers). The
    replacement keeps the layer's name, activation, bias, strides, padding,
    dtype policy and `trainable` flag; its regularizers and constraints are
    not carried over, since they were meant for the full kernel, not for
    its factors.

    Args:
        model: A built functional or Sequential `keras.Model` with known
            input shapes.
        method: `"auto"`, `"svd"` (`Dense` layers), `"channel_svd"`
            (`Conv1D` and `Conv2D` as `LowRankConv1D`/`LowRankConv2D`,
            the kernel read as a `(k * S, T)` matrix), `"cp"` or
            `"tucker2"` (`Conv2D` layers), or a dict `{layer_name:
            method}`, which also chooses the layers (by exact name).
            `"auto"` picks per layer: Tucker-2 for a kxk `Conv2D`, SVD for
            `Dense`, channel SVD for 1x1 and 1-D convolutions. Defaults to
            `"auto"`.
        rank: The rank of every chosen layer, or a dict
            `{layer_name: rank}`, which also chooses the layers (by exact
            name). A rank is an integer >= 1; for `"svd"` and
            `"tucker2"` also a float in `(0, 1]`, the fraction of the
            kernel's energy (sum of squared singular values) to keep; for
            `"tucker2"` also a pair `(r_in, r_out)` (an integer or float
            sets both). Exactly one of `rank` and `target_macs_ratio` must
            be given. Defaults to `None`.
        target_macs_ratio: Float in `(0, 1)`: choose the ranks so that the
            whole model's MACs are at most this fraction of the original's.
            Every chosen layer keeps the same fraction of its MACs (as far
            as the ranks allow), the largest fraction that meets the
            target. Defaults to `None`.
        filters: Which of the model's direct layers to decompose, as
            Keras's `Model.quantize(filters=...)` chooses layers: a regular
            expression searched in each layer's name, a list of them, a
            layer class or a callable `fn(layer) -> bool` (see
            `tfcompress.graph.LayerFilter`). Selected layers the method
            cannot handle (and that have weights) are skipped and listed
            in `report.skipped` with the reason; a string that selects no
            layer the method can handle is an error. Not with a `method`
            or `rank` dict, which name their layers. Defaults to `None`:
            every layer the method handles.
        data: Optional model inputs on which to measure each layer's
            output error (the first 256 examples are used). Defaults to
            `None`: random normal inputs of each layer's input shape.
        n_iter_max: Maximum iterations of CP's ALS and Tucker-2's HOOI.
            Defaults to `100`.
        init: Initialization of CP and Tucker-2, `"svd"` or `"random"`.
            Defaults to `"svd"`.
        random_state: Seed of CP and Tucker-2. Defaults to `0`.
        verbose: `0` is silent; `1`, `2` and `"auto"` print one line per
            decomposed layer as it is done (CP of a large kernel takes a
            while), Keras's `verbose` convention (`True` / `False` mean
            `1` / `0`). Defaults to `"auto"`.

    Returns:
        `(new_model, report)`: a `keras.Model` of the same kind, compiled
        like `model` (with a fresh optimizer) when `model` is compiled and
        uncompiled otherwise (see `tfcompress.graph.compile_like`), and a
        `DecompositionReport` with, per decomposed layer, the rank, MACs
        and parameters before and after, and the kernel and output errors,
        plus the skipped layers and the whole model's MACs ratio.

    Raises:
        ValueError: For a subclassed or unbuilt model, an unknown method, a
            bad rank (0, not an integer or fraction, larger than a named
            layer's full rank), a layer name the model does not have, a
            named layer the method cannot handle (e.g. a grouped
            convolution), a string filter that selects no layer the method
            can handle, or an unreachable `target_macs_ratio`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((64,)),
    ...     keras.layers.Dense(64, activation="relu", name="hidden"),
    ...     keras.layers.Dense(10, name="logits"),
    ... ])
    >>> new_model, report = decompose(model, method="svd", rank=8,
    ...                               verbose=0)
    >>> type(new_model.get_layer("hidden")).__name__
    'LowRankDense'
    >>> [(row.name, row.rank) for row in report.rows]
    [('hidden', 8), ('logits', 8)]
    >>> report.macs_before == 64 * 64 + 64 * 10
    True
    >>> report.macs_after == (64 + 64) * 8 + (64 + 10) * 8
    True
    """
    _check_model(model)
    verbose = argument_validation.verbosity(verbose)
    if (rank is None) == (target_macs_ratio is None):
        raise ValueError(
            "Pass exactly one of `rank` and `target_macs_ratio`. Received: "
            f"rank={rank!r}, target_macs_ratio={target_macs_ratio!r}"
        )
    if target_macs_ratio is not None:
        rank_choice.check_target(target_macs_ratio)
    options = iteration_options(n_iter_max, init, random_state)
    candidates, skipped = layer_choice.choose_layers(model, method, rank, filters)
    before = profile(model)
    layer_choice.measure(candidates, before)
    with single_blas_thread():  # Energy-fraction ranks take SVDs too.
        if target_macs_ratio is not None:
            candidates, more_skipped = rank_choice.ranks_for_target(
                candidates, before.macs, target_macs_ratio
            )
        else:
            candidates, more_skipped = rank_choice.ranks_from_argument(
                candidates, rank
            )
    skipped.extend(more_skipped)

    probes = probe_inputs(model, candidates, data)
    replacements = {}
    results = []
    for candidate, probe in zip(candidates, probes):
        start = time.perf_counter()
        with single_blas_thread():
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
        rows=rows,
        skipped=skipped,
        macs_before=before.macs,
        macs_after=after.macs,
        params_before=before.params,
        params_after=after.params,
        probe="random normal" if data is None else "data",
    )
    return cloning.compile_like(new_model, model), report


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


def _rebuild(model, replacements):
    """A copy of `model` with `replacements` (by name) swapped in."""
    return cloning.clone_model(
        model, lambda layer: replacements.get(layer.name)
    )
