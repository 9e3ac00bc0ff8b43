"""Per-exit confidence thresholds for a target accuracy or a MACs budget.

An example leaves at the first exit whose confidence (its largest softmax
probability) reaches that exit's threshold; one that none reaches gets the
final head's answer. Thresholds are chosen on validation data, greedily
from the first exit on: each exit gets the lowest threshold (the most
examples leaving there) that keeps the accuracy of the whole policy at the
target, given the thresholds already chosen and no later exit taken.
Early exits are the cheap ones, so filling them first saves the most MACs
per point of accuracy given up.

With measured latencies (`measure_stage_latency`), every subset of the
exits is tried: stages end only at the exits kept (the layers in between
run as one stage, without the dropped exits' heads), thresholds are
chosen for the kept exits as above, and the subset with the lowest
expected latency per example wins. An exit whose head and extra call cost
more than the examples leaving there save is dropped; if no subset beats
the model without exits, none is kept.
"""

import dataclasses
import itertools
import math

import numpy as np

from tfcompress.dynamic.exit_naming import exit_names
from tfcompress.dynamic.runner import confidence
from tfcompress.dynamic.stages import stage_costs
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

# Candidate thresholds per exit: at most this many quantiles of its
# confidences (every distinct value would be exact, and slow on large sets).
CANDIDATES = 400


@dataclasses.dataclass(frozen=True)
class ExitDecision(Row):
    """What one exit does under a policy.

    Attributes:
        name: `"exit_K"`, or `"final"`.
        threshold: Confidence (max softmax) at which examples leave here;
            `None` for the final head (all remaining leave) and for an exit
            that is never taken.
        exit_rate: Fraction of the examples that leave here.
        accuracy: Top-1 of the examples that leave here (`None` if none).
        macs: MACs per example spent by an example that leaves here (the
            backbone up to here, the heads of the kept exits before it and
            its own).
        seconds: Measured latency of an example that leaves here, when the
            policy was calibrated with `latency` (else `None`).
    """

    name: str
    threshold: float | None
    exit_rate: float
    accuracy: float | None
    macs: int
    seconds: float | None = None


@dataclasses.dataclass(frozen=True, repr=False)
class ExitPolicy(Report):
    """Result of `calibrate_exits`: thresholds and what they cost.

    Attributes:
        rows: One `ExitDecision` per exit, then `"final"`.
        thresholds: One threshold per exit (`math.inf`: never taken), for
            `EarlyExitRunner`.
        accuracy: Top-1 of the policy on the data it was chosen on.
        full_accuracy: Top-1 of the final head alone on the same data.
        average_macs: MACs per example under the policy, averaged.
        full_macs: MACs per example of the backbone and final head alone
            (the model without exits).
        target: What the thresholds were chosen for, as text.
        exits: Indices of the exits the stages end at under this policy:
            every exit, unless it was calibrated with `latency`, which
            drops the exits that do not pay for themselves. Export with
            `export_stages(..., exits=policy.exits)` and run with
            `stage_thresholds`.
        average_seconds: Expected latency per example from the measured
            segment latencies (`None` without `latency`).
        full_seconds: Measured latency of the model without exits (`None`
            without `latency`).
    """

    rows: tuple
    thresholds: tuple
    accuracy: float
    full_accuracy: float
    average_macs: float
    full_macs: int
    target: str
    exits: tuple | None = None
    average_seconds: float | None = None
    full_seconds: float | None = None

    summary = ("macs_ratio", "latency_ratio", "stage_thresholds")

    def __post_init__(self):
        if self.exits is None:
            object.__setattr__(
                self, "exits", tuple(range(len(self.thresholds)))
            )

    @property
    def macs_ratio(self):
        """Average MACs under the policy / the model without exits."""
        return self.average_macs / self.full_macs

    @property
    def latency_ratio(self):
        """Expected latency under the policy / the model without exits
        (`None` without measured latencies)."""
        if self.average_seconds is None or not self.full_seconds:
            return None
        return self.average_seconds / self.full_seconds

    @property
    def stage_thresholds(self):
        """The thresholds of the kept exits (`exits`), for an
        `EarlyExitRunner` over stages exported with `exits=policy.exits`."""
        return tuple(self.thresholds[index] for index in self.exits)

    def table(self):
        def number(value, pattern):
            return "-" if value is None else format(value, pattern)

        timed = self.average_seconds is not None
        kept = {*self.exits, len(self.thresholds)}
        lines = format_table(
            ["exit", "kept", "threshold", "exit rate", "top-1", "MACs"]
            + (["latency"] if timed else []),
            [
                [
                    row.name,
                    "yes" if index in kept else "no",
                    number(row.threshold, ".4f"),
                    f"{row.exit_rate:.3f}",
                    number(row.accuracy, ".4f"),
                    f"{row.macs:,}",
                ]
                + ([f"{1e6 * row.seconds:.1f} us"] if timed else [])
                for index, row in enumerate(self.rows)
            ],
        )
        lines.append(
            f"target {self.target}: top-1 {self.accuracy:.4f} (final head "
            f"alone {self.full_accuracy:.4f}); average MACs "
            f"{self.average_macs:,.0f} = {self.macs_ratio:.3f} x "
            f"{self.full_macs:,}"
        )
        if timed:
            lines.append(
                f"expected latency {1e6 * self.average_seconds:.1f} us = "
                f"{self.latency_ratio:.3f} x {1e6 * self.full_seconds:.1f} "
                "us (model without exits), from measured segments"
            )
        return "\n".join(lines)


def calibrate_exits(
    model,
    validation_data,
    *,
    max_accuracy_drop=None,
    target_accuracy=None,
    macs_budget=None,
    latency=None,
    batch_size=256,
):
    """Chooses each exit's confidence threshold on validation data.

    Give at most one of the three targets; with none, the thresholds keep
    the accuracy at most half a point below the final head's
    (`max_accuracy_drop=0.005`). For a MACs budget, the accuracy target is
    bisected: the highest target whose thresholds average at most
    `macs_budget` MACs per example.

    MACs per stage come from `tfcompress.analysis.profile` of each stage
    (`split_stages`); an example that goes on past an exit has paid for
    that exit's head too.

    With `latency` (`measure_stage_latency`), the policy minimizes the
    measured latency per example instead: it tries every subset of the
    exits (stages fused between kept exits), chooses thresholds for each
    as above, and keeps the subset with the lowest expected latency
    (`ExitPolicy.exits`; possibly none, when no exit pays for its head and
    its extra call).

    Args:
        model: A model from `attach_exits`, its exits trained.
        validation_data: `(x_val, y_val)`, integer labels.
        max_accuracy_drop: Largest accepted drop below the final head's
            top-1, a fraction (0.005 is half a point).
        target_accuracy: Lowest accepted top-1, a fraction.
        macs_budget: Largest accepted average MACs per example.
        latency: A `StageLatency` of this model (`measure_stage_latency`):
            choose which exits to keep by measured latency. Not with
            `macs_budget`.
        batch_size: Examples per prediction batch. Defaults to `256`.

    Returns:
        An `ExitPolicy`.

    Raises:
        ValueError: If more than one target is given, a target is out of
            range, the budget is below what the first exit costs, or
            `latency` was measured on a model with other exits or comes
            with `macs_budget`.

    Example:

    ```python
    latency = measure_stage_latency(with_exits, x_val[:200])
    policy = calibrate_exits(with_exits, (x_val, y_val),
                             max_accuracy_drop=0.005, latency=latency)
    print(policy)  # kept exits, thresholds, exit rates, MACs, latency
    export = export_stages(with_exits, "stages", exits=policy.exits)
    runner = EarlyExitRunner(export.paths, policy.stage_thresholds)
    ```
    """
    given = {
        key: value
        for key, value in dict(
            max_accuracy_drop=max_accuracy_drop,
            target_accuracy=target_accuracy,
            macs_budget=macs_budget,
        ).items()
        if value is not None
    }
    if len(given) > 1:
        raise ValueError(
            "Give at most one of `max_accuracy_drop`, `target_accuracy`, "
            f"`macs_budget`. Received: {given}"
        )
    if not given:
        given = {"max_accuracy_drop": 0.005}
    ((key, value),) = given.items()
    if key == "macs_budget":
        if isinstance(value, bool) or not value > 0:
            raise ValueError(
                "`macs_budget` must be a positive number. Received: "
                f"macs_budget={value!r}"
            )
    else:
        _check_fraction(key, value)
    count = len(exit_names(model))
    if latency is not None:
        if key == "macs_budget":
            raise ValueError(
                "`latency` chooses exits by measured time; a MACs budget "
                "chooses them by MACs. Give one. Received: "
                f"macs_budget={value!r} and latency"
            )
        if getattr(latency, "num_exits", None) != count:
            raise ValueError(
                "`latency` must be `measure_stage_latency` of this model "
                f"({count} exits). Received: "
                f"{getattr(latency, 'num_exits', type(latency).__name__)}"
                " exits"
            )
    x_val, y_val = validation_data
    y_val = np.asarray(y_val).reshape(-1)
    outputs = model.predict(np.asarray(x_val), batch_size=batch_size,
                            verbose=0)
    confidences = np.stack([confidence(o) for o in outputs[:-1]])
    correct = np.stack([np.argmax(o, axis=-1) == y_val for o in outputs])
    per_stage, heads = stage_costs(model)
    cumulative = np.cumsum(per_stage)
    full_macs = int(sum(per_stage) - sum(heads))
    full_accuracy = float(correct[-1].mean())

    if key == "macs_budget":
        thresholds = _for_budget(value, confidences, correct, cumulative)
        target = f"macs_budget={value:,}"
    else:
        accuracy_target = value
        if key == "max_accuracy_drop":
            accuracy_target = full_accuracy - value
        target = f"{key}={value}"
        if latency is not None:
            return _fastest_policy(
                model, latency, accuracy_target, confidences, correct,
                full_macs, full_accuracy, target,
            )
        thresholds = _greedy(accuracy_target, confidences, correct)
    return _policy(
        model, thresholds, confidences, correct, cumulative, full_macs,
        full_accuracy, target,
    )


def exit_indices(confidences, thresholds):
    """Index of the exit each example leaves at (`len(thresholds)`: final).

    Args:
        confidences: Array `(exits, N)` of each exit's max softmax.
        thresholds: One threshold per exit.
    """
    taken = confidences >= np.asarray(thresholds, np.float64)[:, None]
    # The first exit taken; examples taking none go to the final head.
    first = np.argmax(taken, axis=0)
    return np.where(taken.any(axis=0), first, len(thresholds))


def _evaluate(thresholds, confidences, correct, cumulative=None):
    exits = exit_indices(confidences, thresholds)
    columns = np.arange(correct.shape[1])
    accuracy = correct[exits, columns].mean()
    macs = None if cumulative is None else cumulative[exits].mean()
    return accuracy, macs


def _greedy(accuracy_target, confidences, correct):
    thresholds = [math.inf] * len(confidences)
    for index, values in enumerate(confidences):
        quantiles = np.quantile(values, np.linspace(0.0, 1.0, CANDIDATES))
        for candidate in np.unique(quantiles):
            trial = list(thresholds)
            trial[index] = float(candidate)
            accuracy, _ = _evaluate(trial, confidences, correct)
            # Round off float noise so that a target equal to an accuracy
            # reached is met.
            if accuracy >= accuracy_target - 1e-12:
                thresholds = trial
                break
    return thresholds


def _for_budget(budget, confidences, correct, cumulative):
    cheapest = float(cumulative[0])
    if budget < cheapest:
        raise ValueError(
            "`macs_budget` is below what the first exit costs, the least "
            f"any example can spend. Received: macs_budget={budget:,}; "
            f"first exit: {cheapest:,.0f} MACs"
        )
    low, high = 0.0, float(correct[-1].mean())
    best = _greedy(low, confidences, correct)
    for _ in range(30):
        middle = (low + high) / 2
        thresholds = _greedy(middle, confidences, correct)
        _, macs = _evaluate(thresholds, confidences, correct, cumulative)
        if macs <= budget:
            best, low = thresholds, middle
        else:
            high = middle
    return best


def _fastest_policy(model, latency, accuracy_target, confidences, correct,
                    full_macs, full_accuracy, target):
    """The subset of exits, and its thresholds, with the lowest expected
    measured latency at the accuracy target."""
    count = len(confidences)
    best = None
    for size in range(count + 1):
        for kept in itertools.combinations(range(count), size):
            rows = list(kept)
            chosen = _greedy(accuracy_target, confidences[rows],
                             correct[[*rows, count]])
            thresholds = [math.inf] * count
            for index, threshold in zip(rows, chosen):
                thresholds[index] = threshold
            thresholds = _refine(
                thresholds, kept, accuracy_target, confidences, correct,
                _chain_costs(latency.chain(kept)[0], kept, count),
            )
            # An exit no example may take costs time for nothing.
            kept = tuple(i for i in kept if math.isfinite(thresholds[i]))
            costs = _chain_costs(latency.chain(kept)[0], kept, count)
            average = costs[exit_indices(confidences, thresholds)].mean()
            # Ties go to fewer exits (tried first): fewer files, same time.
            if best is None or average < best[0]:
                best = (average, kept, thresholds)
    average, kept, thresholds = best
    seconds, macs = latency.chain(kept)
    return _policy(
        model, thresholds, confidences, correct,
        _chain_costs(macs, kept, count, latency, 1), full_macs,
        full_accuracy, target, exits=kept,
        seconds=_chain_costs(seconds, kept, count, latency, 0),
        full_seconds=latency.full_seconds,
    )


def _refine(thresholds, kept, accuracy_target, confidences, correct, costs,
            passes=4):
    """Coordinate descent from the greedy thresholds: each kept exit's
    threshold in turn is set to the candidate with the lowest expected
    cost that keeps the accuracy target. Greedy fills the earliest exit
    first, which minimizes MACs when cost grows with depth; by measured
    latency a later exit can save more per point of accuracy given up."""
    def cost_and_accuracy(trial):
        exits = exit_indices(confidences, trial)
        columns = np.arange(correct.shape[1])
        return costs[exits].mean(), correct[exits, columns].mean()

    candidates = {
        index: [*np.unique(np.quantile(
            confidences[index], np.linspace(0.0, 1.0, CANDIDATES))),
            math.inf]
        for index in kept
    }
    best, _ = cost_and_accuracy(thresholds)
    for _ in range(passes):
        improved = False
        for index in kept:
            for candidate in candidates[index]:
                trial = list(thresholds)
                trial[index] = float(candidate)
                cost, accuracy = cost_and_accuracy(trial)
                if accuracy >= accuracy_target - 1e-12 and cost < best - 1e-12:
                    thresholds, best, improved = trial, cost, True
        if not improved:
            break
    return thresholds


def _chain_costs(chain, kept, count, latency=None, index_of=0):
    """Per exit index (and the final, `count`): the cost of an example
    leaving there when stages end at `kept`, from `StageLatency.chain`
    (`index_of`: 0 for seconds, 1 for MACs). A dropped exit gets what
    leaving there would cost were it kept too (no example leaves there),
    or, without `latency`, infinity."""
    points = [*kept, count]
    costs = np.empty(count + 1)
    for index in range(count + 1):
        if index in points:
            costs[index] = chain[points.index(index)]
        elif latency is None:
            costs[index] = math.inf  # never left at; not reported
        else:
            with_it = tuple(sorted({*kept, index}))
            costs[index] = latency.chain(with_it)[index_of][
                with_it.index(index)
            ]
    return costs


def _policy(model, thresholds, confidences, correct, cumulative, full_macs,
            full_accuracy, target, exits=None, seconds=None,
            full_seconds=None):
    exit_of = exit_indices(confidences, thresholds)
    columns = np.arange(correct.shape[1])
    names = [*exit_names(model), "final"]
    rows = []
    for index, name in enumerate(names):
        leaving = exit_of == index
        threshold = None
        if index < len(thresholds) and math.isfinite(thresholds[index]):
            threshold = float(thresholds[index])
        rows.append(
            ExitDecision(
                name=name,
                threshold=threshold,
                exit_rate=float(leaving.mean()),
                accuracy=(
                    float(correct[index, leaving].mean())
                    if leaving.any() else None
                ),
                macs=int(cumulative[index]),
                seconds=None if seconds is None else float(seconds[index]),
            )
        )
    return ExitPolicy(
        rows=tuple(rows),
        thresholds=tuple(float(t) for t in thresholds),
        accuracy=float(correct[exit_of, columns].mean()),
        full_accuracy=full_accuracy,
        average_macs=float(cumulative[exit_of].mean()),
        full_macs=full_macs,
        target=target,
        exits=exits,
        average_seconds=(
            None if seconds is None else float(seconds[exit_of].mean())
        ),
        full_seconds=full_seconds,
    )


def _check_fraction(name, value):
    if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(
            f"`{name}` must be a fraction in [0, 1]. Received: "
            f"{name}={value!r}"
        )
