"""AMC-style search for each layer's channel sparsity under a budget.

AMC (He et al. 2018) lets an agent choose every layer's pruning ratio and
bounds its choices so that the pruned model meets the resource budget;
the reward is the pruned model's accuracy. Here the agent is Optuna's TPE
sampler, and the bounding is exact: a trial proposes a sparsity for every
channel group, and `fit_to_budget` moves all of them together, keeping
their order, until `prune_channels` says the model just fits. Every
candidate therefore costs the same, so the accuracy after a short
fine-tune is the whole comparison. Uniform sparsity at the same budget is
scored the same way, in the same run.

With `decompose=`, a trial also picks for each candidate layer whether to
factorize it and at what energy fraction (`decomposition_choices`); the
ranks stay fixed while `fit_to_budget` moves the sparsities, so the
pruned-then-decomposed model just fits.
"""

import math
import os
import tempfile
import time

import numpy as np
import optuna

from tfcompress import argument_validation
from tfcompress.pruning.channels import prunable_channel_groups
from tfcompress.pruning.channels import prune_channels
from tfcompress.search.budget import Budget
from tfcompress.search.budget import Cost
from tfcompress.search.budget import measure_cost
from tfcompress.search.candidate_fine_tuning import check_learning_rate_decay
from tfcompress.search.candidate_fine_tuning import fine_tune
from tfcompress.search.decomposition_choices import ENERGY_CHOICES
from tfcompress.search.decomposition_choices import decomposable_layers
from tfcompress.search.decomposition_choices import decompose_pruned
from tfcompress.search.litert_cost import QUANTIZATIONS
from tfcompress.search.litert_cost import LiteRTCostMeter
from tfcompress.search.search_report import ChannelSearchReport
from tfcompress.search.search_report import SearchTrial
from tfcompress.search.study_storage import completed_trials
from tfcompress.search.study_storage import open_study
from tfcompress.search.worker_processes import load_worker_inputs
from tfcompress.search.worker_processes import run_worker_processes
from tfcompress.search.worker_processes import save_worker_inputs
from tfcompress.search.worker_processes import shared_storage
from tfcompress.search.worker_processes import worker_threads
from tfcompress.search.worker_processes import trial_shares

# Bisection steps of `fit_to_budget`: the shared move is then known to
# 2 / 2**10 of its range, finer than one channel of the layers we search.
_BISECTION_STEPS = 10
# With a budget on the .tflite file every step exports and times a
# candidate (2 to 5 s): at most 6 secant steps (`_fit_measured`).
_LITERT_BISECTION_STEPS = 6
# A measured fit stops once the candidate is within 8% under the limit
# (about the timing noise of a small model on a shared machine).
_MEASURED_TOLERANCE = 0.08


class _UnreachableBudget(ValueError):
    """Even `max_sparsity` everywhere does not fit (see `fit_to_budget`)."""


class ChannelSearchProblem:
    """One model, its channel groups, a budget and how candidates score.

    Built by `search_channel_sparsity`; each worker process builds its own.
    """

    def __init__(
        self,
        model,
        budget,
        data,
        validation_data,
        *,
        filters=None,
        importance="l1",
        max_sparsity=0.9,
        fine_tune_epochs=1,
        batch_size=64,
        seed=0,
        quantization="none",
        num_threads=1,
        latency_fn=None,
        decompose=None,
        learning_rate_decay="none",
    ):
        self.model = model
        self.budget = budget
        self.x, self.y = data
        self.x_val, self.y_val = validation_data or (None, None)
        self.filters = filters
        self.importance = importance
        self.max_sparsity = max_sparsity
        self.fine_tune_epochs = fine_tune_epochs
        self.learning_rate_decay = learning_rate_decay
        self.batch_size = batch_size
        self.seed = seed
        self.groups = prunable_channel_groups(model, filters=filters)
        if not self.groups:
            raise ValueError(
                f"Model {model.name!r} has no channel group that "
                "`prune_channels` can prune"
                + (
                    f" among the layers `filters={filters!r}` selects"
                    if filters
                    else ""
                )
                + "; there is nothing to search."
            )
        self.decompose = decompose
        # The layers a trial may decompose (checked here, on the original
        # model: pruning keeps every layer's name and class).
        self.decomposable = (
            [] if decompose is None else decomposable_layers(model, decompose)
        )
        self.quantization = quantization
        self.num_threads = num_threads
        self.latency_fn = latency_fn
        self.meter = None
        self.reference = measure_cost(model)
        if budget.needs_litert:
            self.meter = LiteRTCostMeter(
                model,
                quantization=quantization,
                calibration_data=self.x,
                num_threads=num_threads,
                latency_fn=latency_fn,
                measure_latency=budget.needs_latency,
            )
            self.reference = Cost(
                macs=self.reference.macs,
                params=self.reference.params,
                tflite_bytes=self.meter.reference_bytes,
                latency_ms=self.meter.reference_latency_ms,
                latency_ratio=1.0 if budget.needs_latency else None,
            )
        _, report = prune_channels(
            model, sparsity=self.sparsities([0.0] * len(self.groups)), verbose=0
        )
        self.sizes = [report.row(group[0]).channels_before for group in self.groups]
        self._costs = {}

    def sparsities(self, proposal):
        """`{first name of each group: sparsity}` for a list of floats."""
        return {group[0]: float(s) for group, s in zip(self.groups, proposal)}

    def cost(self, proposal, ranks=None):
        """The `Cost` of the model pruned by `proposal` (then decomposed
        by `ranks`, `{layer: energy fraction}`, if given).

        Cached by the channels each group keeps (what `prune_channels`
        keeps follows from them) and the ranks, so that the bisection's
        nearby proposals rebuild the model once.
        """
        return self._measured(proposal, ranks)[0]

    def applied_ranks(self, proposal, ranks):
        """The part of `ranks` that `decompose` applied after `proposal`'s
        pruning: a layer pruned too small to gain from a rank is skipped."""
        return self._measured(proposal, ranks)[1]

    def _measured(self, proposal, ranks):
        ranks = dict(ranks or {})
        kept = tuple(
            size - math.floor(s * size + 1e-9) for size, s in zip(self.sizes, proposal)
        )
        key = (kept, tuple(sorted(ranks.items())))
        if (
            kept == tuple(self.sizes)
            and not ranks
            and self.meter is not None
            and self.quantization == "none"
        ):
            return self.reference, {}  # Nothing pruned: the reference file.
        if key not in self._costs:
            candidate, applied, macs, params = self._build(proposal, ranks)
            measured = (None, None, None)
            if self.meter is not None:
                measured = self.meter.measure(candidate)
            self._costs[key] = (Cost(macs, params, *measured), applied)
        return self._costs[key]

    def _build(self, proposal, ranks):
        """`(model, applied ranks, MACs, params)` of one candidate: pruned
        by `proposal`, then decomposed by `ranks`; compiled like `model`."""
        pruned, report = self._prune(proposal)
        if not ranks:
            return pruned, {}, int(report.macs_after), int(report.params_after)
        # `decompose` compiles its result like `pruned`, which
        # `prune_channels` compiled like the original: the fine-tune sees
        # the original's loss and optimizer settings either way.
        decomposed, applied, report = decompose_pruned(pruned, ranks)
        return decomposed, applied, int(report.macs_after), int(report.params_after)

    def _prune(self, proposal):
        return prune_channels(
            self.model,
            sparsity=self.sparsities(proposal),
            importance=self.importance,
            verbose=0,
            # Taylor importance is computed on a few batches of the data.
            data=(
                (self.x[:256], self.y[:256]) if self.importance == "taylor" else None
            ),
        )

    def fit_to_budget(self, proposal, ranks=None):
        """Moves every sparsity of `proposal` until the model just fits.

        With `ranks` (`{layer: energy fraction}`) every candidate is also
        decomposed by them; the ranks stay fixed, only the sparsities move
        (if the decomposition alone fits, the sparsities are all 0).

        `t` in `[-1, 1]` moves them together: below 0 toward no pruning
        (`s * (1 + t)`), above 0 toward `max_sparsity`
        (`s + t * (max_sparsity - s)`); the cost falls as `t` grows. The
        smallest `t` within the budget (to the bisection's precision) is
        chosen: the least pruning that fits, in the proposal's proportions.

        Returns:
            The fitted sparsities (a list) and their `Cost`.

        Raises:
            ValueError: If even `max_sparsity` everywhere does not fit.
        """
        proposal = [min(max(float(s), 0.0), self.max_sparsity) for s in proposal]

        def moved(t):
            if t <= 0:
                return [s * (1 + t) for s in proposal]
            return [s + t * (self.max_sparsity - s) for s in proposal]

        def cost(t):
            return self.cost(moved(t), ranks)

        def fits(t):
            return self.budget.allows(cost(t), self.reference)

        if fits(-1.0):
            return moved(-1.0), cost(-1.0)
        if not fits(1.0):
            reached = cost(1.0)
            ratios = reached.ratio_to(self.reference)
            measured = (
                f" (measured on {self.meter.setting})" if self.meter else ""
            )
            decomposed = f" and layers decomposed ({ranks})" if ranks else ""
            raise _UnreachableBudget(
                f"The budget ({self.budget}) is not reachable by channel "
                f"pruning: with every channel group at max_sparsity="
                f"{self.max_sparsity}{decomposed} the model keeps "
                + ", ".join(
                    f"{ratios[k]:.3f} of its {_NAMES.get(k, k)}" for k in ratios
                )
                + _absolute(reached)
                + measured
                + ". Allow a larger budget or a larger `max_sparsity`, or "
                "prune more layers (`filters`)."
            )
        if self.meter is not None:
            return self._fit_measured(moved, ranks)
        low, high = -1.0, 1.0
        for _ in range(_BISECTION_STEPS):
            middle = (low + high) / 2
            if fits(middle):
                high = middle
            else:
                low = middle
        return moved(high), cost(high)

    def _fit_measured(self, moved, ranks):
        """`fit_to_budget` when every candidate is exported and timed.

        Regula falsi (Illinois variant) on the excess `max(cost / limit) -
        1` between `t = -1` (too costly) and `t = 1` (fits): the excess
        falls smoothly with `t`, so the secant lands near the limit in 2 to
        4 measurements where bisection needs 6. The bracket is kept, so a
        noisy timing cannot lose it; the fitting end is returned once it is
        within `_MEASURED_TOLERANCE` of the limit or the bracket is narrow.
        """

        def excess(t):
            cost = self.cost(moved(t), ranks)
            return 1.0 / self.budget.slack(cost, self.reference) - 1.0

        low, high = -1.0, 1.0
        f_low, f_high = excess(low), excess(high)
        weight_low = weight_high = 1.0  # Illinois: halve a stale end.
        last = 0
        for _ in range(_LITERT_BISECTION_STEPS):
            if f_high > -_MEASURED_TOLERANCE or high - low < 2.0 / 64:
                break
            a, b = f_low * weight_low, f_high * weight_high
            t = high - b * (high - low) / (b - a)
            margin = (high - low) / 16  # Progress even when the secant stalls.
            t = min(max(t, low + margin), high - margin)
            f = excess(t)
            if f <= 0:
                high, f_high, weight_high = t, f, 1.0
                weight_low = weight_low / 2 if last == 1 else 1.0
                last = 1
            else:
                low, f_low, weight_low = t, f, 1.0
                weight_high = weight_high / 2 if last == -1 else 1.0
                last = -1
        return moved(high), self.cost(moved(high), ranks)

    def score(self, proposal, ranks=None):
        """Prunes by `proposal` (and decomposes by `ranks`), fine-tunes,
        returns `(model, accuracy)`.

        With `fine_tune_epochs=0` the accuracy is measured right after
        pruning (a cheap proxy of the fine-tuned accuracy).
        """
        pruned, _, _, _ = self._build(proposal, dict(ranks or {}))
        if self.fine_tune_epochs:
            fine_tune(
                pruned,
                self.x,
                self.y,
                epochs=self.fine_tune_epochs,
                batch_size=self.batch_size,
                seed=self.seed,
                learning_rate_decay=self.learning_rate_decay,
            )
        return pruned, top1_accuracy(pruned, self.x_val, self.y_val)

    def objective(self, trial):
        """Optuna objective: accuracy of a trial's fitted proposal."""
        start = time.perf_counter()
        proposal = [
            trial.suggest_float(f"group_{i}", 0.0, self.max_sparsity)
            for i in range(len(self.groups))
        ]
        chosen = {
            name: trial.suggest_categorical(f"energy_{name}", ENERGY_CHOICES)
            for name in self.decomposable
        }
        chosen = {name: f for name, f in chosen.items() if f is not None}
        try:
            fitted, cost = self.fit_to_budget(proposal, chosen)
        except _UnreachableBudget as error:
            if not chosen:
                raise
            # Uniform pruning fits (it ran first), so these ranks are the
            # cause (a decomposed model can be slower in LiteRT): the
            # trial is dropped, the search goes on.
            raise optuna.TrialPruned(str(error)) from None
        ranks = self.applied_ranks(fitted, chosen)
        _, accuracy = self.score(fitted, ranks)
        ratios = cost.ratio_to(self.reference)
        trial.set_user_attr("sparsity", self.sparsities(fitted))
        trial.set_user_attr("ranks", ranks)
        trial.set_user_attr("macs_ratio", ratios["macs"])
        trial.set_user_attr("params_ratio", ratios["params"])
        trial.set_user_attr("tflite_bytes_ratio", ratios.get("tflite_bytes"))
        trial.set_user_attr("latency_ratio", ratios.get("latency_ms"))
        trial.set_user_attr("seconds", time.perf_counter() - start)
        return accuracy


_NAMES = {"tflite_bytes": "file bytes", "latency_ms": "latency"}


def _absolute(cost):
    parts = []
    if cost.tflite_bytes is not None:
        parts.append(f"{cost.tflite_bytes:,} bytes")
    if cost.latency_ms is not None:
        parts.append(f"{cost.latency_ms:.3f} ms")
    return f" ({', '.join(parts)})" if parts else ""


def top1_accuracy(model, x, y):
    """Top-1 accuracy of `model` on `(x, y)` (integer labels)."""
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y)))


def search_channel_sparsity(
    model,
    *,
    budget,
    data,
    validation_data,
    trials=20,
    fine_tune_epochs=1,
    learning_rate_decay="none",
    batch_size=64,
    max_sparsity=0.9,
    filters=None,
    importance="l1",
    storage=None,
    study_name=None,
    workers=1,
    seed=0,
    quantization="none",
    num_threads=1,
    latency_fn=None,
    decompose=None,
    verbose=1,
):
    """Searches each layer's channel sparsity for a budget (AMC-style).

    Each trial proposes a sparsity per channel group (the groups
    `prunable_channel_groups` lists; tied layers share one), scaled
    together until the pruned model just fits `budget` (every candidate
    costs the same), then prunes with `prune_channels`, fine-tunes
    `fine_tune_epochs` on `data` and scores top-1 accuracy on
    `validation_data`. Optuna's TPE sampler proposes the next trial from
    the scores so far. Uniform sparsity fitted to the same budget is
    scored the same way first, as the baseline. The best proposal is
    pruned and fine-tuned again and returned; when no trial scores above
    the baseline, uniform sparsity is what is returned.

    With `decompose`, each trial also picks, for each layer it selects,
    whether to factorize that layer (`tfcompress.decomposition.decompose`,
    `method="auto"`) and at which fraction of its kernel's energy (one of
    0.99, 0.95, 0.9, 0.8, 0.6). A candidate is pruned, then decomposed:
    the ranks stay fixed while the sparsities are fitted, so the
    decomposition buys less pruning; if it alone fits, nothing is pruned.
    A layer that pruning leaves too small for a rank to save MACs is kept
    whole (`SearchTrial.ranks` lists only the decomposed layers). The
    uniform baseline is not decomposed.

    Args:
        model: A compiled `Sequential` or functional `keras.Model` (the
            fine-tune uses its loss and optimizer settings). Not modified.
        budget: A `tfcompress.search.Budget`, e.g. `Budget(macs_ratio=0.5)`.
        data: `(x, y)` arrays to fine-tune each candidate on.
        validation_data: `(x, y)` arrays (integer labels) to score on.
        trials: Number of searched trials (the uniform baseline is extra).
            A resumed study runs only the trials it lacks. Defaults to 20.
        fine_tune_epochs: Epochs of fine-tuning per candidate; `0` scores
            right after pruning (a cheap proxy). Defaults to `1`.
        learning_rate_decay: The fine-tune's learning rate: `"none"` (the
            model's compiled rate throughout) or `"cosine"` (from the
            compiled rate to 0 over the fine-tune, so that each candidate's
            score does not depend on where its last steps left it; needs a
            constant compiled rate). Defaults to `"none"`.
        batch_size: Fine-tuning batch size. Defaults to `64`.
        max_sparsity: The most any group may lose, in `(0, 1)`.
            Defaults to `0.9`.
        filters: Which layers to search, as in `prune_channels`.
        importance: Channel ranking, as in `prune_channels`.
        storage: Where the trials are kept: `None` (memory), a journal file
            path, a `.db` path (SQLite) or a database URL (see
            `storage_from`). With a storage and a `study_name`, a search
            resumes where it stopped.
        study_name: The Optuna study's name. Defaults to `None` (a new
            study; required to resume or share one).
        workers: Processes that run trials of the one study at the same
            time (each with its share of the CPU threads). With
            `workers > 1` and no `storage`, a temporary journal file is
            used. Defaults to `1`.
        seed: Seeds the sampler (worker `i` uses `seed + i`) and each
            fine-tune. Defaults to `0`.
        quantization: For a budget on the `.tflite` file (bytes, latency):
            how each candidate is exported to be measured, `"none"`
            (float32) or `"int8"` (when the model will ship int8). Ratios
            are always to the original model's float32 file, timed in the
            same run. Defaults to `"none"`.
        num_threads: LiteRT threads for latency timing. Defaults to `1`.
        latency_fn: `fn(tflite_path) -> seconds` to time candidates
            elsewhere (a phone) instead of `benchmark_tflite` here; must
            be picklable with `workers > 1`. Defaults to `None`.
        decompose: Also search which layers to decompose and at what
            rank: `"auto"` (every layer `decompose` takes by default:
            `Dense`, `Conv1D`, `Conv2D`, `SeparableConv2D`) or which of
            them, as `decompose`'s `filters` (a regular expression, a list
            of them, a layer class, a callable; picklable with
            `workers > 1`). Defaults to `None`: channel pruning only.
        verbose: `0` silent, `1` a line per trial. Defaults to `1`.

    Returns:
        `(pruned_model, report)`: the best candidate (pruned, decomposed
        as its trial chose; uniform sparsity when no trial beat it),
        fine-tuned, and a
        `ChannelSearchReport` (every trial, the uniform baseline, the
        gain over it, wall time).

    Raises:
        ValueError: On bad arguments (the message says which), a model
            without prunable channels, a `decompose` that names a layer
            `decompose` cannot factorize (with the reason) or selects
            none, or a budget that even `max_sparsity` everywhere cannot
            meet (with how close it got).

    Example:

    ```python
    pruned, report = search_channel_sparsity(
        model, budget=Budget(macs_ratio=0.5),
        data=(x_train, y_train), validation_data=(x_val, y_val), trials=20)
    print(report)
    # Pruning and decomposition searched together:
    compressed, report = search_channel_sparsity(
        model, budget=Budget(macs_ratio=0.3),
        data=(x_train, y_train), validation_data=(x_val, y_val), trials=20,
        decompose="auto")
    print(report.row(report.best).ranks)  # e.g. {"fc": 0.9, "conv2": 0.95}
    ```
    """
    _check_arguments(model, budget, data, validation_data, max_sparsity)
    _check_quantization(quantization)
    trials = argument_validation.positive_int("trials", trials)
    workers = argument_validation.positive_int("workers", workers)
    fine_tune_epochs = argument_validation.integer_at_least(
        "fine_tune_epochs", fine_tune_epochs, 0
    )
    check_learning_rate_decay(learning_rate_decay, model)
    start = time.perf_counter()
    problem = ChannelSearchProblem(
        model,
        budget,
        data,
        validation_data,
        filters=filters,
        importance=importance,
        max_sparsity=max_sparsity,
        fine_tune_epochs=fine_tune_epochs,
        batch_size=batch_size,
        seed=seed,
        quantization=quantization,
        num_threads=num_threads,
        latency_fn=latency_fn,
        decompose=decompose,
        learning_rate_decay=learning_rate_decay,
    )
    say = print if verbose else (lambda *_: None)
    decomposed = (
        f", {len(problem.decomposable)} layers to decompose or not"
        if problem.decomposable
        else ""
    )
    say(
        f"Channel search on {model.name!r}: {len(problem.groups)} groups"
        f"{decomposed}, budget {budget}, {trials} trials, {workers} worker(s)"
    )
    uniform_start = time.perf_counter()
    fitted, cost = problem.fit_to_budget([0.0] * len(problem.groups))
    _, uniform_accuracy = problem.score(fitted)
    uniform = _row(
        "uniform",
        problem,
        fitted,
        cost,
        uniform_accuracy,
        time.perf_counter() - uniform_start,
    )
    say(f"  uniform {fitted[0]:.1%}: {_describe(uniform)}")

    with tempfile.TemporaryDirectory() as scratch:
        if workers > 1 and storage is None:
            storage = os.path.join(scratch, "study.log")
        if workers > 1 and study_name is None:
            study_name = "channel_search"
        study = open_study(storage, study_name, seed)
        remaining = trials - completed_trials(study)
        if remaining > 0 and workers == 1:
            study.optimize(
                problem.objective,
                n_trials=remaining,
                callbacks=[_Progress(trials, say)],
            )
        elif remaining > 0:
            _run_workers(
                problem,
                storage,
                study_name,
                (trials, remaining),
                workers,
                seed,
                scratch,
                verbose,
            )
            study = open_study(storage, study_name, seed)
        rows = tuple(
            _trial_row(trial)
            for trial in study.trials
            if trial.state == optuna.trial.TrialState.COMPLETE
        )
    if not rows:
        raise ValueError(
            f"None of the {trials} trials completed: with the layers each "
            "decomposed, not even max_sparsity everywhere met the budget "
            f"({budget}). Decompose fewer layers (`decompose`)."
        )
    # A search that finds nothing better than uniform sparsity returns
    # uniform sparsity: on a budget where the layers' sensitivities are
    # alike (MobileNetV2-style at 0.5x latency, results/budget_search*.md)
    # the best of a few trials often scores below it.
    best = max(rows, key=lambda row: row.accuracy)
    if best.accuracy <= uniform.accuracy:
        best = uniform
    proposal = [best.sparsity[group[0]] for group in problem.groups]
    pruned, accuracy = problem.score(proposal, best.ranks)
    report = ChannelSearchReport(
        model=model.name,
        budget=str(budget),
        rows=rows,
        uniform=uniform,
        best=best.name,
        final_accuracy=accuracy,
        fine_tune_epochs=fine_tune_epochs,
        workers=workers,
        seconds=time.perf_counter() - start,
    )
    say(
        f"Returned: {best.name}, accuracy {best.accuracy:.4f} (uniform "
        f"{uniform.accuracy:.4f}, best trial {report.best_trial_accuracy:.4f}); "
        f"fine-tuned again: {accuracy:.4f}; {report.seconds:.0f} s"
    )
    return pruned, report


def fit_channel_sparsity(
    model,
    *,
    budget,
    data=None,
    sparsity=None,
    max_sparsity=0.9,
    filters=None,
    importance="l1",
    quantization="none",
    num_threads=1,
    latency_fn=None,
):
    """Scales a sparsity per channel group until the model just fits.

    The search's bounding step on its own: no training, no scoring. With
    `sparsity=None` every group gets the same sparsity (uniform), the
    least that fits `budget`; with a dict `{group: sparsity}` those are
    moved together, in their proportions (AMC's bounding). A budget on the
    `.tflite` file measures every candidate visited (see
    `LiteRTCostMeter`).

    Args:
        model: A built Keras model. Not modified.
        budget: A `tfcompress.search.Budget`.
        data: `(x, y)` arrays or an array `x`: inputs to calibrate int8
            candidates (`quantization="int8"`) and for Taylor importance.
            Defaults to `None`.
        sparsity: `{first layer of each group: sparsity}` to scale, or
            `None` for uniform. Defaults to `None`.
        max_sparsity, filters, importance, quantization, num_threads,
        latency_fn: As in `search_channel_sparsity`.

    Returns:
        `(sparsity, cost, reference)`: the fitted `{group: sparsity}` (to
        pass to `prune_channels`), its `Cost` and the original model's
        (`cost.ratio_to(reference)` gives the ratios).

    Raises:
        ValueError: On a bad budget or arguments, or a budget that even
            `max_sparsity` everywhere cannot meet (with how close it got).
    """
    if not isinstance(budget, Budget):
        raise ValueError(
            "`budget` must be a tfcompress.search.Budget, e.g. "
            f"Budget(macs_ratio=0.5). Received: budget={budget!r}"
        )
    _check_sparsity_range(max_sparsity)
    _check_quantization(quantization)
    if data is None:
        x = y = None
    elif isinstance(data, (tuple, list)):
        x, y = data
    else:
        x, y = data, None
    if x is not None and len(x) == 0:
        raise ValueError("`data` is empty: give at least one example.")
    if x is None and (quantization == "int8" or importance == "taylor"):
        raise ValueError(
            f"`data` is needed with quantization={quantization!r} and "
            f"importance={importance!r} (calibration / channel ranking)."
        )
    problem = ChannelSearchProblem(
        model,
        budget,
        (x, y),
        None,
        filters=filters,
        importance=importance,
        max_sparsity=max_sparsity,
        quantization=quantization,
        num_threads=num_threads,
        latency_fn=latency_fn,
    )
    if sparsity is None:
        proposal = [0.0] * len(problem.groups)
    else:
        unknown = set(sparsity) - {group[0] for group in problem.groups}
        if unknown:
            raise ValueError(
                f"`sparsity` names no channel group: {sorted(unknown)}. "
                f"Groups: {[group[0] for group in problem.groups]}"
            )
        proposal = [sparsity.get(group[0], 0.0) for group in problem.groups]
    fitted, cost = problem.fit_to_budget(proposal)
    return problem.sparsities(fitted), cost, problem.reference


class _Progress:
    """Optuna callback: one line per finished trial."""

    def __init__(self, trials, say, prefix=""):
        self.trials, self.say, self.prefix = trials, say, prefix

    def __call__(self, study, trial):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        row = _trial_row(trial)
        self.say(
            f"  {self.prefix}trial {trial.number + 1}/{self.trials}: "
            f"{_describe(row)} (best {study.best_value:.4f})"
        )


def _describe(row):
    litert = ""
    if row.tflite_bytes_ratio is not None:
        litert += f", file {row.tflite_bytes_ratio:.3f}x"
    if row.latency_ratio is not None:
        litert += f", latency {row.latency_ratio:.3f}x"
    return (
        f"MACs {row.macs_ratio:.3f}x, params {row.params_ratio:.3f}x{litert}, "
        f"accuracy {row.accuracy:.4f}, {row.seconds:.1f} s"
        + (f", decomposed {row.ranks}" if row.ranks else "")
    )


def _row(name, problem, fitted, cost, accuracy, seconds):
    ratios = cost.ratio_to(problem.reference)
    return SearchTrial(
        name=name,
        sparsity=problem.sparsities(fitted),
        macs_ratio=ratios["macs"],
        params_ratio=ratios["params"],
        accuracy=accuracy,
        seconds=seconds,
        tflite_bytes_ratio=ratios.get("tflite_bytes"),
        latency_ratio=ratios.get("latency_ms"),
    )


def _trial_row(trial):
    return SearchTrial(
        name=f"trial {trial.number}",
        sparsity=dict(trial.user_attrs["sparsity"]),
        macs_ratio=trial.user_attrs["macs_ratio"],
        params_ratio=trial.user_attrs["params_ratio"],
        accuracy=float(trial.value),
        seconds=trial.user_attrs["seconds"],
        tflite_bytes_ratio=trial.user_attrs.get("tflite_bytes_ratio"),
        latency_ratio=trial.user_attrs.get("latency_ratio"),
        ranks=dict(trial.user_attrs.get("ranks", {})),
    )


# Worker processes.


def _run_workers(problem, storage, study_name, trials, workers, seed, scratch, verbose):
    """Runs `workers` processes on the one study.

    `trials` is `(total, remaining)`: the `remaining` trials are shared out
    (one process may run one more than another), so the study ends with
    exactly `total` however the processes interleave.
    """
    total, remaining = trials
    storage = shared_storage(storage)
    model_path, data_path = save_worker_inputs(scratch, problem.model, problem)
    settings = dict(
        filters=problem.filters,
        importance=problem.importance,
        max_sparsity=problem.max_sparsity,
        fine_tune_epochs=problem.fine_tune_epochs,
        batch_size=problem.batch_size,
        seed=seed,
        quantization=problem.quantization,
        num_threads=problem.num_threads,
        latency_fn=problem.latency_fn,
        decompose=problem.decompose,
        learning_rate_decay=problem.learning_rate_decay,
    )
    threads = worker_threads(workers)
    arguments = [
        (
            index,
            model_path,
            data_path,
            problem.budget,
            settings,
            storage,
            study_name,
            share,
            threads,
            verbose,
        )
        for index, share in enumerate(
            trial_shares(total, remaining, workers)
        )
    ]
    run_worker_processes(_worker_main, arguments)



def _worker_main(
    index,
    model_path,
    data_path,
    budget,
    settings,
    storage,
    study_name,
    trials,
    threads,
    verbose,
):
    """Entry point of one worker process (spawned: a fresh interpreter)."""
    model, data, validation_data = load_worker_inputs(
        model_path, data_path, threads
    )
    problem = ChannelSearchProblem(
        model, budget, data, validation_data, **settings
    )
    study = open_study(storage, study_name, settings["seed"] + 1 + index)

    def say(line):
        if verbose:
            print(line, flush=True)

    total, share = trials
    study.optimize(
        problem.objective,
        n_trials=share,
        callbacks=[_Progress(total, say, f"worker {index}: ")],
    )


# Argument checks.


def _check_arguments(model, budget, data, validation_data, max_sparsity):
    if not isinstance(budget, Budget):
        raise ValueError(
            "`budget` must be a tfcompress.search.Budget, e.g. "
            f"Budget(macs_ratio=0.5). Received: budget={budget!r}"
        )
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"Model {model.name!r} is not compiled: each candidate is "
            "fine-tuned with the model's loss and optimizer settings. Call "
            "`model.compile(...)` first."
        )
    for name, value in (("data", data), ("validation_data", validation_data)):
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError(
                f"`{name}` must be a tuple `(x, y)` of arrays. Received: "
                f"{type(value).__name__}"
            )
        x, y = value
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(
                f"`{name}` must hold as many labels as examples, at least "
                f"one. Received: {len(x)} examples, {len(y)} labels"
            )
    _check_sparsity_range(max_sparsity)


def _check_sparsity_range(max_sparsity):
    if isinstance(max_sparsity, bool) or not (
        isinstance(max_sparsity, (int, float)) and 0 < max_sparsity < 1
    ):
        raise ValueError(
            f"`max_sparsity` must be a float in (0, 1). Received: "
            f"max_sparsity={max_sparsity!r}"
        )
    if math.isnan(max_sparsity):
        raise ValueError("`max_sparsity` must not be NaN.")


def _check_quantization(quantization):
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "`quantization` (how candidates are exported to be measured) "
            f"must be one of {QUANTIZATIONS}. Received: "
            f"quantization={quantization!r}"
        )
