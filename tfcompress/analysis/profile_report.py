"""The result of `profile`: `ProfileReport`, its `LayerProfile` rows and
their table."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class LayerProfile(Row):
    """One row of a `ProfileReport`: a layer, a group of layers, or an op.

    Args:
        name: Path of the layer in the model, e.g. `"block1/expand_conv"`.
        layer_type: Class name of the layer, e.g. `"Conv2D"`.
        depth: Nesting depth; `0` for the model's direct children.
        is_group: Whether the row is a group (a nested model or a composite
            layer) whose numbers total the rows below it.
        output_shape: Output shape of the first call, batch dimension
            `None`; a tuple of shapes for a layer with several outputs;
            `None` if the layer was not called.
        params: Number of weights. For a group, of its whole subtree
            (including any weights it owns directly).
        trainable_params: The trainable part of `params`.
        macs: Multiply-accumulates per example, summed over all calls of
            the layer. `None` when unknown. For a group, the sum of the
            known MACs of its subtree (the note says when some are unknown).
        bytes_float32: Bytes of the weights stored as float32 (`4 * params`).
        bytes_int8: Bytes of the weights in an int8 model: 1 per kernel or
            embedding element, 4 per bias element (int32), 0 for folded
            `BatchNormalization`.
        calls: How many times the layer was called in the forward pass.
        note: Explanation, e.g. `"MACs unknown"` or that batch
            normalization is folded at export.
    """

    name: str
    layer_type: str
    depth: int
    is_group: bool
    output_shape: tuple | None
    params: int
    trainable_params: int
    macs: int | None
    bytes_float32: int
    bytes_int8: int
    calls: int
    note: str = ""


@dataclasses.dataclass(frozen=True, repr=False)
class ProfileReport(Report):
    """Result of `profile`: per-layer rows and model totals.

    `str(report)` (or `print(report)`, `report.table()`) renders a
    fixed-width table with a totals section; `report.row(path)` is the row
    of one layer; `report.to_dict()` is JSON-ready. Totals sum leaf rows
    only, never group rows, and count each weight once.

    Args:
        model_name: Name of the profiled model.
        rows: List of `LayerProfile`, in model order; a group row comes
            just before the rows of its children.
        params: Total number of weights; equals `model.count_params()`.
        trainable_params: The trainable part of `params`.
        macs: Total known multiply-accumulates per example. Layers whose
            MACs are unknown are excluded and listed in `unknown_macs`.
        bytes_float32: Bytes of all weights at float32.
        bytes_int8: Bytes of all weights in an int8 model.
        unknown_macs: Names (paths) of the layers whose MACs are unknown.
    """

    model_name: str
    rows: list
    params: int
    trainable_params: int
    macs: int
    bytes_float32: int
    bytes_int8: int
    unknown_macs: list

    def table(self):
        """Returns the rows and the totals as a fixed-width text table."""
        lines = format_table(
            (
                "Layer (type)",
                "Output shape",
                "Params",
                "MACs",
                "Bytes fp32",
                "Bytes int8",
                "Note",
            ),
            [
                (
                    "  " * row.depth
                    + f"{row.name.rsplit('/', 1)[-1]} ({row.layer_type})",
                    _format_shape(row.output_shape),
                    f"{row.params:,}",
                    "unknown" if row.macs is None else f"{row.macs:,}",
                    f"{row.bytes_float32:,}",
                    f"{row.bytes_int8:,}",
                    row.note,
                )
                for row in self.rows
            ],
            right_aligned=(False, False, True, True, True, True, False),
        )
        double_rule = "=" * len(lines[1])
        out = [f'Model: "{self.model_name}"', double_rule, *lines]
        out.append(double_rule)
        out.append(
            f"Params:        {self.params:,} "
            f"(trainable: {self.trainable_params:,})"
        )
        macs = f"MACs:          {self.macs:,}{_human_suffix(self.macs)}"
        macs += " per example"
        if self.unknown_macs:
            macs += ", excluding unknown layers"
        out.append(macs)
        out.append(
            f"Weight bytes:  {self.bytes_float32:,} B at float32"
            f"{_human_suffix(self.bytes_float32, 'B')}, "
            f"{self.bytes_int8:,} B at int8"
            f"{_human_suffix(self.bytes_int8, 'B')}"
        )
        if self.unknown_macs:
            out.append(
                f"MACs unknown:  {', '.join(self.unknown_macs)} "
                "(not in the MACs total)"
            )
        return "\n".join(out)

    def __repr__(self):
        return (
            f"<ProfileReport model_name={self.model_name!r} "
            f"params={self.params} macs={self.macs} "
            f"unknown_macs={self.unknown_macs!r}>"
        )


def _format_shape(shape):
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], tuple):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    trailing_comma = "," if len(shape) == 1 else ""
    return "(" + ", ".join(str(dim) for dim in shape) + trailing_comma + ")"


def _human_suffix(number, unit=""):
    """`" (1.23 M)"` for `1234567`; empty below 1000, where it adds nothing."""
    if abs(number) < 1000:
        return ""
    return f" ({_human(number, unit)})"


def _human(number, unit=""):
    """`1234567` -> `"1.23 M"`: three significant digits and a prefix."""
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= threshold:
            return f"{number / threshold:.3g} {prefix}{unit}"
    return f"{number} {unit}".rstrip()
