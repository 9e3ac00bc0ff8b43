"""What `decompose` did: per-layer ranks, costs and errors, and what it
left alone and why."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class LayerDecomposition(Row):
    """One decomposed layer.

    Args:
        name: Name of the layer, the same in both models.
        method: `"svd"`, `"cp"` or `"tucker2"`.
        rank: The rank used: an integer, or `(r_in, r_out)` for Tucker-2.
        layer_type: Class name of the replacement, e.g. `"CPConv2D"`.
        macs_before: MACs per example of the original layer (all calls).
        macs_after: MACs per example of the replacement, from
            `tfcompress.analysis.profile` of the new model.
        params_before: Weights of the original layer.
        params_after: Weights of the replacement.
        kernel_error: Relative Frobenius error of the reconstructed kernel,
            `||K_approx - K|| / ||K||`.
        output_error: Relative error of the layer's output on the probe
            inputs, `||y_new - y|| / ||y||`, before any fine-tuning.
    """

    name: str
    method: str
    rank: int | tuple
    layer_type: str
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    kernel_error: float
    output_error: float


@dataclasses.dataclass(frozen=True)
class SkippedLayer(Row):
    """A candidate layer left unchanged, and why."""

    name: str
    reason: str


@dataclasses.dataclass(frozen=True, repr=False)
class DecompositionReport(Report):
    """Result of `decompose`, next to the new model.

    `str(report)` (or `report.table()`) renders a table of the decomposed
    layers, the skipped layers with their reasons, and the whole model's
    totals; `report.row(name)` is one decomposed layer's row;
    `to_dict()` adds `macs_ratio`, `params_ratio` and, as `layers`, the
    rows again (their name before reports shared one shape).

    Args:
        model_name: Name of the decomposed model.
        rows: List of `LayerDecomposition`, one per decomposed layer, in
            model order.
        skipped: List of `SkippedLayer`: candidates left unchanged.
        macs_before: MACs per example of the original model (known MACs,
            see `tfcompress.analysis.profile`).
        macs_after: MACs per example of the new model.
        params_before: Weights of the original model.
        params_after: Weights of the new model.
        probe: `"data"` when output errors were measured on real inputs,
            `"random normal"` otherwise.
    """

    model_name: str
    rows: list
    skipped: list
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    probe: str

    summary = ("macs_ratio", "params_ratio", "layers")

    @property
    def layers(self):
        """The rows: the same as `rows`."""
        return self.rows

    @property
    def macs_ratio(self):
        """`macs_after / macs_before` of the whole model."""
        return self.macs_after / self.macs_before if self.macs_before else 1.0

    @property
    def params_ratio(self):
        """`params_after / params_before` of the whole model."""
        if not self.params_before:
            return 1.0
        return self.params_after / self.params_before

    def table(self):
        """Returns the report as a fixed-width text table."""
        headers = (
            "Layer",
            "Method",
            "Rank",
            "Type",
            "MACs",
            "Params",
            "Kernel err",
            "Output err",
        )
        lines = format_table(
            headers,
            [
                (
                    row.name,
                    row.method,
                    format_rank(row.rank),
                    row.layer_type,
                    f"{row.macs_before:,} -> {row.macs_after:,}",
                    f"{row.params_before:,} -> {row.params_after:,}",
                    f"{row.kernel_error:.4f}",
                    f"{row.output_error:.4f}",
                )
                for row in self.rows
            ],
            right_aligned=(False,) * 4 + (True,) * 4,
        )
        out = [f'Decomposition of "{self.model_name}"']
        out.extend(ruled(lines))
        if not self.rows:
            out.append("(no layer decomposed)")
        out.append(
            f"MACs:    {self.macs_before:,} -> {self.macs_after:,} per "
            f"example (ratio {self.macs_ratio:.3f})"
        )
        out.append(
            f"Params:  {self.params_before:,} -> {self.params_after:,} "
            f"(ratio {self.params_ratio:.3f})"
        )
        out.append(f"Output errors measured on {self.probe} probe inputs.")
        for row in self.skipped:
            out.append(f"Skipped {row.name}: {row.reason}")
        return "\n".join(out)

    def __repr__(self):
        return (
            f"<DecompositionReport model_name={self.model_name!r} "
            f"layers={[row.name for row in self.rows]!r} "
            f"macs_ratio={self.macs_ratio:.3f}>"
        )


def format_rank(rank):
    """`8` -> `"8"`, `(8, 16)` -> `"(8, 16)"`."""
    if isinstance(rank, tuple):
        return "(" + ", ".join(str(r) for r in rank) + ")"
    return str(rank)


def ruled(lines):
    """`format_table` lines with a rule above and below, as both
    decomposition tables are drawn."""
    return [lines[1], *lines, lines[1]]
