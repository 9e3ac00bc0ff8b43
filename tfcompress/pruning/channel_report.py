"""What structured pruning did: the channel pruning report.

`ChannelPruningReport` holds one `ChannelPruningRow` per prunable channel
set (and per barrier with weights), whether it was pruned or left alone and
why, and the model's params and MACs before and after; `make_report` builds
it from a trace and a plan.
"""

import dataclasses

import numpy as np

from tfcompress.analysis import profile
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

PRUNED = "pruned"
UNCHANGED = "unchanged"
LEFT_ALONE = "left alone"
NOT_SELECTED = "not selected"


@dataclasses.dataclass(frozen=True)
class ChannelPruningRow(Row):
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


@dataclasses.dataclass(frozen=True, repr=False)
class ChannelPruningReport(Report):
    """What `prune_channels` did: per-layer channels, model MACs and params.

    `str(report)` (or `print(report)`, `report.table()`) renders a table;
    `report.row(name)` is one layer's row; `report.to_dict()` adds
    `macs_ratio` and `params_ratio` to the fields.

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

    summary = ("macs_ratio", "params_ratio")

    def table(self):
        """Returns the rows and the totals as a fixed-width text table."""
        lines = format_table(
            ("Layer (type)", "Channels", "Status", "Note"),
            [
                (
                    f"{row.name} ({row.layer_type})",
                    f"{row.channels_before} -> {row.channels_after}",
                    row.status
                    + (f" ({row.importance})" if row.importance else ""),
                    row.reason,
                )
                for row in self.rows
            ],
            right_aligned=(False, False, False, False),
        )
        # Notes can be long: the rules stop at 100 characters.
        rule_width = min(max(len(line) for line in lines), 100)
        return "\n".join(
            [
                f'Channel pruning of "{self.model_name}" '
                f"(importance: {self.importance})",
                "=" * rule_width,
                lines[0],
                "-" * rule_width,
                *lines[2:],
                "=" * rule_width,
                f"Params: {self.params_before:,} -> {self.params_after:,} "
                f"({self.params_ratio:.1%})",
                f"MACs:   {self.macs_before:,} -> {self.macs_after:,} "
                f"({self.macs_ratio:.1%}) per example",
            ]
        )

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
