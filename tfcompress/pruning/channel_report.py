"""What structured pruning did: the channel pruning report.

`ChannelPruningReport` holds one `ChannelPruningRow` per prunable channel
set (and per barrier with weights), whether it was pruned or left alone and
why, and the model's params and MACs before and after; `make_report` builds
it from a trace and a plan.
"""

import dataclasses

import numpy as np

from tfcompress.analysis import profile

PRUNED = "pruned"
UNCHANGED = "unchanged"
LEFT_ALONE = "left alone"
NOT_SELECTED = "not selected"


@dataclasses.dataclass(frozen=True)
class ChannelPruningRow:
    """One row of a `ChannelPruningReport`: a set of prunable channels.

    Attributes:
        name: Name of the layer whose output channels these are; for an
            `InvertedResidual` block, `"<block>/expand"` (its hidden
            channels) or `"<block>/project"` (its output channels).
        layer_type: Class name of the layer.
        channels_before: Number of channels in the input model.
        channels_after: Number of channels in the pruned model.
        status: `"pruned"`, `"unchanged"` (selected, but the sparsity
            removes no channel), `"left alone"` (pruning it would break the
            model; `reason` says why) or `"not selected"`.
        importance: The importance criterion that ranked the channels, or
            `None` when no channel was removed.
        reason: Why the channels were left alone, or with which other
            layers they were pruned as one group.
        tied_to: Names of the other rows whose channels are pruned together
            with these (a residual `Add` makes its inputs share channels).
        kept_indices: Indices (in the input model) of the kept channels, in
            order.
    """

    name: str
    layer_type: str
    channels_before: int
    channels_after: int
    status: str
    importance: str | None = None
    reason: str = ""
    tied_to: tuple = ()
    kept_indices: tuple = ()

    def to_dict(self):
        """Returns the row as a JSON-serializable `dict`."""
        row = dataclasses.asdict(self)
        row["tied_to"] = list(self.tied_to)
        row["kept_indices"] = list(self.kept_indices)
        return row


@dataclasses.dataclass(frozen=True, repr=False)
class ChannelPruningReport:
    """What `prune_channels` did: per-layer channels, model MACs and params.

    `str(report)` (or `print(report)`) renders a table.

    Attributes:
        model_name: Name of the pruned model.
        importance: The importance criterion used.
        rows: List of `ChannelPruningRow`, in model order. Layers whose
            channels cannot be pruned exactly (barriers such as
            `ShuffleConv2D`) have a `"left alone"` row too.
        params_before: Parameters of the input model.
        params_after: Parameters of the pruned model.
        macs_before: MACs per example of the input model (see
            `tfcompress.analysis.profile`).
        macs_after: MACs per example of the pruned model.
    """

    model_name: str
    importance: str
    rows: list
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int

    @property
    def macs_ratio(self):
        """`macs_after / macs_before`."""
        return self.macs_after / self.macs_before if self.macs_before else 1.0

    @property
    def params_ratio(self):
        """`params_after / params_before`."""
        if not self.params_before:
            return 1.0
        return self.params_after / self.params_before

    def row(self, name):
        """Returns the row named `name`.

        Raises:
            KeyError: If no row has that name.
        """
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(
            f"No row named {name!r}. Rows: "
            f"{', '.join(row.name for row in self.rows)}"
        )

    def to_dict(self):
        """Returns the report as a JSON-serializable `dict`."""
        return {
            "model_name": self.model_name,
            "importance": self.importance,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "rows": [row.to_dict() for row in self.rows],
        }

    def __str__(self):
        return _format_report(self)

    def __repr__(self):
        return (
            f"<ChannelPruningReport model_name={self.model_name!r} "
            f"macs={self.macs_before}->{self.macs_after} "
            f"params={self.params_before}->{self.params_after}>"
        )

def make_report(model, pruned, trace, plan, importance):
    before = profile(model)
    after = profile(pruned)
    scored = plan.groups_to_prune()
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    rows = []
    for unit in trace.units:
        root = plan.root[unit.channel_set.id]
        mask = plan.mask(unit.channel_set)
        others = tuple(
            s.unit.name
            for s in plan.groups[root]
            if s.unit is not None and s.unit is not unit
        )
        frozen = plan.frozen_reason(root)
        reason = ""
        if frozen is not None:
            status = LEFT_ALONE
            reason = _left_alone_reason(plan, root, unit)
        elif root not in plan.sparsity:
            status = NOT_SELECTED
        elif root in scored:
            status = PRUNED
        else:
            status = UNCHANGED
        if others and frozen is None:
            reason = (
                f"one group with {', '.join(others)} (tied by "
                f"{', '.join(plan.tied_by[root])})"
            )
        row = ChannelPruningRow(
            name=unit.name,
            layer_type=type(unit.layer).__name__,
            channels_before=unit.channel_set.size,
            channels_after=int(mask.sum()),
            status=status,
            importance=importance if status == PRUNED else None,
            reason=reason,
            tied_to=others,
            kept_indices=tuple(int(i) for i in np.flatnonzero(mask)),
        )
        rows.append((order.get(unit.layer.name, -1), row))
    for barrier in trace.barriers:
        row = ChannelPruningRow(
            name=barrier.name,
            layer_type=barrier.layer_type,
            channels_before=barrier.channels,
            channels_after=barrier.channels,
            status=LEFT_ALONE,
            reason=barrier.reason,
            kept_indices=tuple(range(barrier.channels)),
        )
        rows.append((order.get(barrier.name, -1), row))
    # Stable: the rows of one layer (hidden, then output) keep their order.
    rows = [row for _, row in sorted(rows, key=lambda item: item[0])]
    return ChannelPruningReport(
        model_name=model.name,
        importance=importance,
        rows=rows,
        params_before=before.params,
        params_after=after.params,
        macs_before=before.macs,
        macs_after=after.macs,
    )


def _left_alone_reason(plan, root, unit):
    if root in plan.constrained:
        return plan.constrained[root]
    if unit.channel_set.frozen is not None:
        return unit.channel_set.frozen
    layers = ", ".join(plan.tied_by[root]) or "a layer"
    return (
        f"tied by {layers} to channels that are left alone "
        f"({plan.frozen_reason(root)})"
    )


def _format_report(report):
    headers = ("Layer (type)", "Channels", "Status", "Note")
    lines = [headers]
    for row in report.rows:
        status = row.status
        if row.importance:
            status += f" ({row.importance})"
        lines.append(
            (
                f"{row.name} ({row.layer_type})",
                f"{row.channels_before} -> {row.channels_after}",
                status,
                row.reason,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(3)]

    def render(cells):
        parts = [cell.ljust(width) for cell, width in zip(cells, widths)]
        return "  ".join([*parts, cells[3]]).rstrip()

    rendered = [render(line) for line in lines]
    rule_width = min(max(len(line) for line in rendered), 100)
    return "\n".join(
        [
            f'Channel pruning of "{report.model_name}" '
            f"(importance: {report.importance})",
            "=" * rule_width,
            rendered[0],
            "-" * rule_width,
            *rendered[1:],
            "=" * rule_width,
            f"Params: {report.params_before:,} -> {report.params_after:,} "
            f"({report.params_ratio:.1%})",
            f"MACs:   {report.macs_before:,} -> {report.macs_after:,} "
            f"({report.macs_ratio:.1%}) per example",
        ]
    )
