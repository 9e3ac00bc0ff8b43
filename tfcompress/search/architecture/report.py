"""The result of an architecture search: every trial and the Pareto front."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class ArchitectureTrial(Row):
    """One trained and measured candidate.

    Attributes:
        name: `"trial N"` (Optuna's trial number).
        choices: The candidate's choices (`SearchSpace.sample`).
        description: The choices in one line (`SearchSpace.describe`).
        accuracy: Top-1 on the validation data after the short training.
        latency_ms: Median LiteRT latency of its file (batch 1), timed
            side by side with the reference's file.
        latency_ratio: That latency / the reference's, in the same run.
        estimated_latency_ms: `latency_ratio` times the reference's
            latency measured at the start of the search: what the
            constraint compares with the target, steadier than
            `latency_ms` when the machine's speed drifts.
        macs: MACs per example (`tfcompress.analysis.profile`).
        params: Parameters.
        tflite_bytes: Bytes of the measured `.tflite` file.
        reward: MnasNet's reward `accuracy * (latency / target) ** w`.
        within_target: Whether `estimated_latency_ms <= target`.
        seconds: Wall time of the trial (build, training, export, timing).
    """

    name: str
    choices: dict = dataclasses.field(hash=False)
    description: str
    accuracy: float
    latency_ms: float
    latency_ratio: float
    estimated_latency_ms: float
    macs: int
    params: int
    tflite_bytes: int
    reward: float
    within_target: bool
    seconds: float


@dataclasses.dataclass(frozen=True)
class ArchitectureSearchReport(Report):
    """Result of `search_architecture`.

    Attributes:
        strategy: `"mnasnet"` or `"pareto"` (see `search_architecture`).
        latency_target_ms: The latency target.
        latency_weight: MnasNet's exponent `w`, or `(alpha, beta)` for
            within / over the target.
        reference_latency_ms: The reference model's latency, measured at
            the start of the search (the scale of the estimated latencies).
        measurement: How latency was measured, in words.
        space_size: Architectures in the search space.
        rows: `ArchitectureTrial`s, in trial order.
        pareto: Names of the trials no other trial beats on both accuracy
            and estimated latency, fastest first.
        best: Name of the returned candidate: the most accurate within the
            target, or, when none is, the one of highest reward.
        final_accuracy: The returned model's validation accuracy: the
            best trial's own, or, when a worker process or an earlier run
            trained it, that of the model trained again.
        path: The returned model's `.keras` file.
        epochs: Training epochs per candidate.
        train_examples: Training examples per candidate.
        workers: Processes that ran the trials.
        seconds: Wall time of the whole search.
    """

    strategy: str
    latency_target_ms: float
    latency_weight: float | tuple
    reference_latency_ms: float
    measurement: str
    space_size: int
    rows: tuple
    pareto: tuple
    best: str
    final_accuracy: float
    path: str
    epochs: int
    train_examples: int
    workers: int
    seconds: float

    summary = ("best_accuracy", "best_latency_ms", "trials_within_target")

    @property
    def best_row(self):
        """The `ArchitectureTrial` of the returned candidate."""
        return self.row(self.best)

    @property
    def best_accuracy(self):
        """Validation accuracy of the returned candidate's trial."""
        return self.best_row.accuracy

    @property
    def best_latency_ms(self):
        """Estimated latency of the returned candidate."""
        return self.best_row.estimated_latency_ms

    @property
    def trials_within_target(self):
        """How many trials met the latency target."""
        return sum(row.within_target for row in self.rows)

    def table(self):
        """Every trial, Pareto front (`P`) and best (`*`) marked."""
        lines = [
            f"Architecture search ({self.strategy}): target "
            f"{self.latency_target_ms:.4f} ms (reference "
            f"{self.reference_latency_ms:.4f} ms; {self.measurement}), "
            f"{len(self.rows)} trials of {self.space_size:,} architectures, "
            f"{self.epochs} epoch(s) on {self.train_examples:,} examples each, "
            f"{self.workers} worker(s), {self.seconds:.0f} s",
        ]
        pareto = set(self.pareto)
        lines += format_table(
            (
                "Trial",
                "Accuracy",
                "Latency ms",
                "x ref",
                "MACs",
                "Params",
                "Reward",
                "Architecture",
            ),
            [
                (
                    row.name
                    + (" *" if row.name == self.best else "")
                    + (" P" if row.name in pareto else ""),
                    f"{row.accuracy:.4f}",
                    f"{row.estimated_latency_ms:.4f}"
                    + ("" if row.within_target else " >"),
                    f"{row.latency_ratio:.3f}",
                    f"{row.macs:,}",
                    f"{row.params:,}",
                    f"{row.reward:.4f}",
                    row.description,
                )
                for row in self.rows
            ],
            right_aligned=[False] + [True] * 6 + [False],
        )
        within = "" if self.best_row.within_target else " (none met the target)"
        lines.append(
            f"Best {self.best}{within}: accuracy {self.best_accuracy:.4f}, "
            f"{self.best_latency_ms:.4f} ms; returned model: "
            f"{self.final_accuracy:.4f}, saved to {self.path}"
        )
        return "\n".join(lines)


def pareto_front(rows):
    """Names of the rows that no other row beats on both accuracy (higher)
    and estimated latency (lower), fastest first."""
    front = [
        row
        for row in rows
        if not any(
            other.accuracy >= row.accuracy
            and other.estimated_latency_ms <= row.estimated_latency_ms
            and (
                other.accuracy > row.accuracy
                or other.estimated_latency_ms < row.estimated_latency_ms
            )
            for other in rows
        )
    ]
    return tuple(r.name for r in sorted(front, key=lambda r: r.estimated_latency_ms))
