"""The result of `tfcompress.compress`: one row per step, measured."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class CompressStep(Row):
    """What the model is after one step of the pipeline.

    Attributes:
        name: The step: `"original"`, `"search"`, `"prune"`, `"distill"`,
            `"qat"`, `"int8"` or `"verify"`.
        file_format: The `.tflite` file measured for the row: `"float32"`
            or `"int8"`.
        size_bytes: Bytes of that file.
        macs: MACs per example of the step's model.
        latency_ms: Median LiteRT latency of the file, timed side by side
            with the original model's float32 file in one run.
        latency_ratio: `latency_ms` / the original float32 file's.
        accuracy: Top-1 on the validation data (of the Keras model, or of
            the file in LiteRT for `"int8"` and `"verify"`); `None` where
            the step has no model of its own to score (a search of 0
            trials).
        accuracy_in: `"keras"` or `"litert"`: what `accuracy` ran in.
        seconds: Wall time of the step.
        note: What the step did, in a few words.
    """

    name: str
    file_format: str
    size_bytes: int
    macs: int
    latency_ms: float
    latency_ratio: float
    accuracy: float | None
    accuracy_in: str
    seconds: float
    note: str = ""


@dataclasses.dataclass(frozen=True)
class CompressReport(Report):
    """Result of `tfcompress.compress`.

    Attributes:
        model: The original model's name.
        budget: The budget, as text.
        rows: `CompressStep`s: the original model, then each step run.
        sparsity: The channel sparsity per group that was applied
            (`{}` without pruning).
        top1_agreement: Keras vs LiteRT top-1 agreement from `verify`, or
            `None` without that step.
        budget_met: Whether the last row's model and file are within the
            budget (every limit, latency as measured in the report's run).
        latency_setting: How latency was measured (threads, timer).
        output: Path of the file written.
        seconds: Wall time of the whole pipeline.
    """

    model: str
    budget: str
    rows: tuple
    sparsity: dict = dataclasses.field(hash=False)
    top1_agreement: float | None
    budget_met: bool
    latency_setting: str
    output: str
    seconds: float

    summary = ("accuracy_lost", "final_latency_ratio", "final_size_ratio")

    @property
    def final(self):
        """The last row: what the pipeline returns."""
        return self.rows[-1]

    @property
    def accuracy_lost(self):
        """Original accuracy minus the last scored row's (points / 100)."""
        scored = [row for row in self.rows if row.accuracy is not None]
        return self.rows[0].accuracy - scored[-1].accuracy

    @property
    def final_latency_ratio(self):
        """The returned file's latency / the original float32 file's."""
        return self.final.latency_ratio

    @property
    def final_size_ratio(self):
        """The returned file's bytes / the original float32 file's."""
        return self.final.size_bytes / self.rows[0].size_bytes

    def table(self):
        """One line per step: file, size, MACs, latency, accuracy."""
        original = self.rows[0]
        lines = [
            f"compress {self.model!r}: budget {self.budget}; latency "
            f"{self.latency_setting}, side by side with the float32 file; "
            f"{self.seconds:.0f} s",
        ]
        lines += format_table(
            ("Step", "File", "Bytes", "MACs", "Latency", "vs float", "Accuracy", "Seconds", "Note"),
            [
                (
                    row.name,
                    row.file_format,
                    f"{row.size_bytes:,} ({row.size_bytes / original.size_bytes:.2f}x)",
                    f"{row.macs:,} ({row.macs / max(original.macs, 1):.2f}x)",
                    f"{row.latency_ms:.3f} ms",
                    f"{row.latency_ratio:.3f}x",
                    "-"
                    if row.accuracy is None
                    else f"{row.accuracy:.4f} ({row.accuracy_in})",
                    f"{row.seconds:.1f}",
                    row.note,
                )
                for row in self.rows
            ],
            right_aligned=[False, False] + [True] * 6 + [False],
        )
        met = "met" if self.budget_met else "NOT met"
        lines.append(
            f"Budget {met}: latency {self.final_latency_ratio:.3f}x, file "
            f"{self.final_size_ratio:.3f}x of the float32 file; accuracy "
            f"{-self.accuracy_lost:+.4f}; wrote {self.output}"
        )
        return "\n".join(lines)
