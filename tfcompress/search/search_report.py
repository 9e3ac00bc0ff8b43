"""The result of a budget search: every trial, the baseline, the gain."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class SearchTrial(Row):
    """One scored candidate.

    Attributes:
        name: `"trial N"` (Optuna's trial number) or `"uniform"`.
        sparsity: `{first layer of each channel group: sparsity}`.
        macs_ratio: The pruned model's MACs / the original's.
        params_ratio: Its parameters / the original's.
        accuracy: Top-1 on the validation data after the fine-tune.
        seconds: Wall time of the trial (fitting, pruning, fine-tune).
        tflite_bytes_ratio: Its `.tflite` file's bytes / the original
            model's float32 file's, when the budget bounds the file.
        latency_ratio: Its LiteRT latency / the original float32 file's,
            timed side by side, when the budget bounds latency.
        ranks: `{layer: energy fraction}` of the layers decomposed after
            pruning (`search_channel_sparsity(decompose=...)`); empty when
            none was.
    """

    name: str
    sparsity: dict = dataclasses.field(hash=False)
    macs_ratio: float
    params_ratio: float
    accuracy: float
    seconds: float
    tflite_bytes_ratio: float | None = None
    latency_ratio: float | None = None
    ranks: dict = dataclasses.field(default_factory=dict, hash=False)


@dataclasses.dataclass(frozen=True)
class ChannelSearchReport(Report):
    """Result of `search_channel_sparsity`.

    Attributes:
        model: The searched model's name.
        budget: The budget, as text.
        rows: `SearchTrial`s of the searched trials, in trial order.
        uniform: The `SearchTrial` of uniform sparsity at the same budget.
        best: Name of the returned candidate: the best trial, or
            `"uniform"` when no trial scored above the baseline.
        final_accuracy: That candidate's accuracy when pruned and
            fine-tuned again for the returned model.
        fine_tune_epochs: Epochs of fine-tuning per candidate.
        workers: Processes that ran the trials.
        seconds: Wall time of the whole search.
    """

    model: str
    budget: str
    rows: tuple
    uniform: SearchTrial
    best: str
    final_accuracy: float
    fine_tune_epochs: int
    workers: int
    seconds: float

    summary = ("best_accuracy", "best_trial_accuracy", "gain_over_uniform")

    def row(self, name):
        """Returns the trial named `name`, or the baseline (`"uniform"`)."""
        if name == self.uniform.name:
            return self.uniform
        return super().row(name)

    @property
    def best_accuracy(self):
        """Accuracy of the returned candidate (`best`)."""
        return self.row(self.best).accuracy

    @property
    def best_trial_accuracy(self):
        """Accuracy of the best searched trial (below the baseline's
        when the search found nothing better)."""
        return max(row.accuracy for row in self.rows)

    @property
    def gain_over_uniform(self):
        """Best searched trial's accuracy minus the uniform baseline's;
        negative when no trial beat it."""
        return self.best_trial_accuracy - self.uniform.accuracy

    def table(self):
        """The trials and the baseline, sparsities per group (and kept
        energy per decomposed layer, when any was), best marked."""
        groups = list(self.uniform.sparsity)
        decomposed = list(
            dict.fromkeys(name for row in self.rows for name in row.ranks)
        )
        lines = [
            f"Channel search on {self.model!r}: budget {self.budget}, "
            f"{len(self.rows)} trials ({self.fine_tune_epochs} fine-tune "
            f"epoch(s) each), {self.workers} worker(s), {self.seconds:.0f} s",
        ]
        rows = [self.uniform, *self.rows]
        # File and latency columns only when the budget measured them.
        litert = [
            (title, field)
            for title, field in (("File", "tflite_bytes_ratio"), ("Latency", "latency_ratio"))
            if getattr(self.uniform, field) is not None
        ]
        lines += format_table(
            (
                "Trial",
                "MACs",
                "Params",
                *(t for t, _ in litert),
                "Accuracy",
                *groups,
                # A layer can be both a channel group and decomposed.
                *(f"{name} energy" for name in decomposed),
            ),
            [
                (
                    row.name + (" *" if row.name == self.best else ""),
                    f"{row.macs_ratio:.3f}x",
                    f"{row.params_ratio:.3f}x",
                    *(_ratio(getattr(row, f)) for _, f in litert),
                    f"{row.accuracy:.4f}",
                    *(f"{row.sparsity[g]:.0%}" for g in groups),
                    *(_energy(row.ranks.get(name)) for name in decomposed),
                )
                for row in rows
            ],
            rules=(1,),
        )
        if self.best == self.uniform.name:
            chosen = (
                f"No trial beat uniform ({self.uniform.accuracy:.4f}; best "
                f"trial {self.gain_over_uniform:+.4f}): uniform returned"
            )
        else:
            chosen = (
                f"Best {self.best}: {self.best_accuracy:.4f}, "
                f"{self.gain_over_uniform:+.4f} over uniform"
            )
        lines.append(
            f"{chosen}; fine-tuned again for the returned model: "
            f"{self.final_accuracy:.4f}"
        )
        return "\n".join(lines)

    def plot(self, path):
        """Saves accuracy per trial, with the uniform baseline, as an image.

        Needs matplotlib (`pip install tfcompress[plots]`).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        numbers = range(len(self.rows))
        axis.scatter(numbers, [r.accuracy for r in self.rows], label="searched trial")
        best_so_far, best = [], float("-inf")
        for row in self.rows:
            best = max(best, row.accuracy)
            best_so_far.append(best)
        axis.plot(numbers, best_so_far, label="best so far")
        axis.axhline(
            self.uniform.accuracy, color="gray", linestyle="--", label="uniform"
        )
        axis.set_xlabel("trial")
        axis.set_ylabel("validation accuracy")
        axis.set_title(f"{self.model}: {self.budget}")
        axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return path


def _energy(fraction):
    return "-" if fraction is None else f"{fraction:g}"


def _ratio(value):
    return "-" if value is None else f"{value:.3f}x"
