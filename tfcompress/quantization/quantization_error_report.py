"""The report of `layer_quantization_error`: the error of each op."""

import dataclasses

import numpy as np

from tfcompress.argument_validation import integer_at_least
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

_SORT_KEYS = (
    "added_error",
    "relative_error",
    "rmse",
    "rmse_in_steps",
    "max_abs_error",
)


@dataclasses.dataclass(frozen=True)
class OpQuantizationError(Row):
    """The error of one op's output in a quantized file.

    Attributes:
        index: The op's position in the quantized file.
        op: The op's name (`"CONV_2D"`, `"FULLY_CONNECTED"`, ...).
        tensor: The name of its output tensor in the float file.
        layers: The Keras layers the op comes from (several when the
            converter fused them), innermost first; empty when the report
            was made from a float file rather than the model, or when no
            layer claims the op.
        dtype: The type the op's output is stored in (`"int8"`,
            `"int16"`, or `"float32"` for an op left in float).
        scale: The output's quantization scale; `None` for a float output.
        rmse: Root mean squared difference from the float file's tensor.
        mean_abs_error: Mean absolute difference.
        max_abs_error: Largest absolute difference.
        relative_error: `rmse` divided by the standard deviation of the
            float tensor: comparable across tensors of any scale.
        added_error: `relative_error` minus the largest `relative_error` of
            the op's inputs: what this op adds to the error it receives.
        clipped_fraction: Fraction of the float tensor's values outside
            the quantized output's range (clipped by the quantization);
            `None` for a float output.
        is_output: Whether the tensor is a model output.
    """

    index: int
    op: str
    tensor: str
    layers: tuple
    dtype: str
    scale: float | None
    rmse: float
    mean_abs_error: float
    max_abs_error: float
    relative_error: float
    added_error: float
    clipped_fraction: float | None
    is_output: bool

    @property
    def rmse_in_steps(self):
        """`rmse / scale`, the error in quantization steps, or `None`.

        About 0.29 (`1 / sqrt(12)`) is the rounding of this tensor alone;
        much more means error carried in from earlier ops, or clipping.
        """
        if self.scale is None or self.scale == 0:
            return None
        return self.rmse / self.scale

    @property
    def name(self):
        """The op's layers joined by `" + "`, or its tensor name."""
        return " + ".join(self.layers) if self.layers else self.tensor

    def to_dict(self):
        """Returns the row as a JSON-serializable `dict`, with
        `rmse_in_steps`."""
        return {**super().to_dict(), "rmse_in_steps": self.rmse_in_steps}


@dataclasses.dataclass(frozen=True, repr=False)
class QuantizationErrorReport(Report):
    """Result of `layer_quantization_error`: the error of each op.

    `str(report)` (or `report.table()`) lists the ops in execution order;
    `report.worst(n)` returns the `n` ops that add the most error.

    Attributes:
        reference: The path of the float file compared against, or
            `"model '<name>'"` when the report was made from a Keras model
            (exported to a temporary float file).
        quantized_path: The quantized file.
        num_examples: The number of inputs both files were run on.
        rows: `OpQuantizationError`s, one per op of the quantized file
            other than quantize / dequantize, in execution order.
    """

    reference: str
    quantized_path: str
    num_examples: int
    rows: tuple

    @property
    def outputs(self):
        """The rows of the ops that write the model's outputs."""
        return [row for row in self.rows if row.is_output]

    def row(self, name):
        """Returns the row of a layer (or a float-file tensor) name.

        Unlike `Report.row`, which matches a row's whole `name`, any one
        of an op's layers finds it: a `Conv2D` fused with its
        `BatchNormalization` answers to both names.

        Raises:
            KeyError: If no row has that layer or tensor name.
        """
        for row in self.rows:
            if name in row.layers or name == row.tensor:
                return row
        raise KeyError(
            f"No row for {name!r}. Rows: "
            f"{', '.join(row.name for row in self.rows)}"
        )

    def worst(self, n=5, by="added_error"):
        """Returns the `n` rows with the largest error, largest first.

        Args:
            n: Number of rows, an integer >= 1.
            by: The column to rank by: `"added_error"` (what each op adds,
                the default: the ops to keep in float32), `"relative_error"`
                (all error up to the op), `"rmse"`, `"rmse_in_steps"`, or
                `"max_abs_error"`.

        Returns:
            A list of `OpQuantizationError`.
        """
        integer_at_least("n", n, minimum=1)
        return self._sorted(by)[:n]

    def table(self, sort_by=None, top=None):
        """Returns the report as a fixed-width text table.

        Args:
            sort_by: A column to sort by, largest first (see `worst`), or
                `None` for execution order. Defaults to `None`.
            top: Show only the first `top` rows, or `None` for all.
                Defaults to `None`.
        """
        rows = list(self.rows) if sort_by is None else self._sorted(sort_by)
        if top is not None:
            integer_at_least("top", top, minimum=1)
            rows = rows[:top]
        headers = (
            "#",
            "Op",
            "Layer",
            "Type",
            "Scale",
            "RMSE",
            "RMSE/scale",
            "Rel. error",
            "Added",
            "Clipped",
        )
        cells = []
        for row in rows:
            steps = row.rmse_in_steps
            name = _shorten(row.name, 48)
            if row.is_output:
                name += " (output)"
            cells.append(
                (
                    str(row.index),
                    row.op,
                    name,
                    row.dtype,
                    "-" if row.scale is None else f"{row.scale:.3g}",
                    f"{row.rmse:.3g}",
                    "-" if steps is None else f"{steps:.2f}",
                    f"{row.relative_error:.2%}",
                    f"{row.added_error:+.2%}",
                    "-"
                    if row.clipped_fraction is None
                    else f"{row.clipped_fraction:.2%}",
                )
            )
        table = format_table(
            headers, cells, right_aligned=[False] * 4 + [True] * 6
        )
        rule = "=" * len(table[1])
        return "\n".join(
            [
                f"Quantization error of {self.quantized_path!r} on "
                f"{self.num_examples} examples, against {self.reference}",
                rule,
                *table,
                rule,
                "Rel. error: RMSE / std of the float tensor, accumulated up "
                "to the op. Added: rel. error minus that of the op's inputs. "
                "RMSE/scale: error in quantization steps (0.29 = rounding "
                "alone). Clipped: float values outside the quantized range.",
            ]
        )

    def _sorted(self, by):
        if by not in _SORT_KEYS:
            raise ValueError(
                f"Expected `by` to be one of "
                f"{', '.join(repr(k) for k in _SORT_KEYS)}. Received: by={by!r}"
            )

        def key(row):
            value = getattr(row, by)
            return -np.inf if value is None else value

        return sorted(self.rows, key=key, reverse=True)


def _shorten(text, width):
    return text if len(text) <= width else text[: width - 3] + "..."
