"""The result of a precision search: every assignment, the Pareto front."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

# Short names of the choices for the table's columns.
_SHORT = {
    "int8": "i8",
    "int16_activations": "a16",
    "int8_weights": "w8",
    "int4_weights": "w4",
    "float32": "f32",
}


@dataclasses.dataclass(frozen=True)
class PrecisionTrial(Row):
    """One measured assignment.

    Attributes:
        name: `"trial N"` (Optuna's trial number), `"all <choice>"` for a
            uniform assignment, or a hand rule's name.
        assignment: `{weighted op: choice}`.
        size_bytes: Bytes of the written file.
        size_ratio: Its bytes / the float file's.
        latency_ms: Median LiteRT latency of one example, or `None` when
            the budget does not bound latency (not measured).
        latency_ratio: Its latency / the float file's, measured side by
            side in the same run, or `None`.
        accuracy: Top-1 on the validation data, run in LiteRT.
        within_budget: Whether every limit of the budget holds.
        seconds: Wall time of the trial (quantize, evaluate, time).
    """

    name: str
    assignment: dict = dataclasses.field(hash=False)
    size_bytes: int
    size_ratio: float
    latency_ms: float | None
    latency_ratio: float | None
    accuracy: float
    within_budget: bool
    seconds: float


@dataclasses.dataclass(frozen=True)
class PrecisionSearchReport(Report):
    """Result of `search_precision`.

    Attributes:
        model: The searched model's (or file's) name.
        budget: The budget, as text.
        objective: The cost the search trades accuracy against:
            `"size_ratio"` or `"latency_ratio"`.
        float_size_bytes: Bytes of the float32 file.
        float_accuracy: Its top-1 on the validation data, in LiteRT.
        float_latency_ms: Its median latency, or `None` (not measured).
        rows: `PrecisionTrial`s in trial order (the uniform assignments
            first).
        best: Name of the most accurate trial within the budget.
        num_threads: Interpreter threads of the latency measurements.
        workers: Processes that ran the trials.
        seconds: Wall time of the whole search.
    """

    model: str
    budget: str
    objective: str
    float_size_bytes: int
    float_accuracy: float
    float_latency_ms: float | None
    rows: tuple
    best: str
    num_threads: int
    workers: int
    seconds: float

    summary = ("best_accuracy", "pareto_front")

    @property
    def best_accuracy(self):
        """Accuracy of the best trial within the budget."""
        return self.row(self.best).accuracy

    @property
    def pareto_front(self):
        """Names of the trials no other trial beats in both accuracy and
        cost (`objective`), cheapest first."""
        rows = sorted(self.rows, key=lambda r: (getattr(r, self.objective), -r.accuracy))
        front, best = [], float("-inf")
        for row in rows:
            if row.accuracy > best:
                front.append(row.name)
                best = row.accuracy
        return front

    def table(self):
        """The trials, each op's choice, the Pareto front and best marked."""
        ops = list(self.rows[0].assignment) if self.rows else []
        latency = self.float_latency_ms is not None
        lines = [
            f"Precision search on {self.model!r}: budget {self.budget}, "
            f"{len(self.rows)} assignments, {self.workers} worker(s), "
            f"{self.seconds:.0f} s",
            f"float32 file: {self.float_size_bytes:,} bytes, accuracy "
            f"{self.float_accuracy:.4f}"
            + (
                f", {self.float_latency_ms:.3f} ms ({self.num_threads} thread(s))"
                if latency
                else ""
            ),
            "ops: " + ", ".join(f"[{i}] {name}" for i, name in enumerate(ops)),
        ]
        front = set(self.pareto_front)
        header = ["Trial", "Bytes", "Size"]
        if latency:
            header += ["Latency"]
        header += ["Accuracy", "Budget", "Choices"]
        rows = []
        for row in self.rows:
            mark = (" *" if row.name == self.best else "") + (
                " P" if row.name in front else ""
            )
            cells = [row.name + mark, f"{row.size_bytes:,}", f"{row.size_ratio:.3f}x"]
            if latency:
                cells.append(
                    "-" if row.latency_ratio is None else f"{row.latency_ratio:.3f}x"
                )
            cells += [
                f"{row.accuracy:.4f}",
                "ok" if row.within_budget else "over",
                " ".join(_SHORT.get(c, c) for c in row.assignment.values()),
            ]
            rows.append(cells)
        lines += format_table(header, rows)
        lines.append(
            f"* best within budget: {self.best}, accuracy "
            f"{self.best_accuracy:.4f} (float {self.float_accuracy:.4f}); P: "
            f"Pareto front of accuracy vs {self.objective}. Choices: "
            + ", ".join(f"{short} = {long}" for long, short in _SHORT.items())
        )
        return "\n".join(lines)

    def plot(self, path):
        """Saves accuracy vs cost of every trial, Pareto front and budget
        marked, as an image. Needs matplotlib (`tfcompress[plots]`)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        inside = [r for r in self.rows if r.within_budget]
        outside = [r for r in self.rows if not r.within_budget]
        for rows, label, marker in (
            (inside, "within budget", "o"),
            (outside, "over budget", "x"),
        ):
            axis.scatter(
                [getattr(r, self.objective) for r in rows],
                [r.accuracy for r in rows],
                marker=marker,
                label=label,
            )
        front = [self.row(name) for name in self.pareto_front]
        axis.step(
            [getattr(r, self.objective) for r in front],
            [r.accuracy for r in front],
            where="post",
            color="gray",
            label="Pareto front",
        )
        best = self.row(self.best)
        axis.scatter(
            [getattr(best, self.objective)], [best.accuracy], s=120,
            facecolors="none", edgecolors="red", label=f"best: {best.name}",
        )
        axis.axhline(self.float_accuracy, color="gray", linestyle=":", label="float32")
        axis.set_xlabel(f"{self.objective} (of the float32 file)")
        axis.set_ylabel("validation accuracy (LiteRT)")
        axis.set_title(f"{self.model}: {self.budget}")
        axis.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        return path
