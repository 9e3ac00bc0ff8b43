"""Where a quantized `.tflite` file loses accuracy, op by op.

`verify` says how far a quantized file's outputs are from the model's;
`layer_quantization_error` says where the error comes from. It runs the
float file and the quantized file side by side in LiteRT, keeping every
intermediate tensor, and compares each op's output in the quantized file
with the same tensor of the float file (tensors are matched by name: the
quantizer keeps the float file's names, and renames only the tensors it
adds around quantize / dequantize ops, which are followed through).

The error of a tensor accumulates everything before it. The `added_error`
of an op (its relative error minus the largest relative error of its
inputs) is what the op itself adds: rounding of its output and weights,
clipping of its range. The ops that add the most are the ones to keep in
float32 (`to_tflite(..., keep_float=[...])`) or to calibrate differently.
"""

import dataclasses
import os
import tempfile

import numpy as np

from tfcompress.argument_validation import integer_at_least
from tfcompress.export import layer_ops
from tfcompress.export.inspection import inspect_tflite
from tfcompress.export.interpreter import _check_input_shape
from tfcompress.export.interpreter import _TensorTracer
from tfcompress.export.tflite import TFLiteExport
from tfcompress.export.tflite import to_tflite

_SORT_KEYS = (
    "added_error",
    "relative_error",
    "rmse",
    "rmse_in_steps",
    "max_abs_error",
)
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
_INTEGER_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}


@dataclasses.dataclass(frozen=True)
class OpQuantizationError:
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
        """Returns the row as plain Python types (JSON-ready)."""
        result = dataclasses.asdict(self)
        result["layers"] = list(self.layers)
        result["rmse_in_steps"] = self.rmse_in_steps
        return result


@dataclasses.dataclass(frozen=True, repr=False)
class QuantizationErrorReport:
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
        lines = [headers]
        for row in rows:
            steps = row.rmse_in_steps
            name = _shorten(row.name, 48)
            if row.is_output:
                name += " (output)"
            lines.append(
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
        widths = [
            max(len(line[i]) for line in lines) for i in range(len(headers))
        ]

        def render(cells):
            left = [cell.ljust(width) for cell, width in zip(cells[:4], widths)]
            right = [
                cell.rjust(width) for cell, width in zip(cells[4:], widths[4:])
            ]
            return "  ".join(left + right).rstrip()

        rule = "=" * len(render(headers))
        return "\n".join(
            [
                f"Quantization error of {self.quantized_path!r} on "
                f"{self.num_examples} examples, against {self.reference}",
                rule,
                render(headers),
                "-" * len(rule),
                *(render(line) for line in lines[1:]),
                rule,
                "Rel. error: RMSE / std of the float tensor, accumulated up "
                "to the op. Added: rel. error minus that of the op's inputs. "
                "RMSE/scale: error in quantization steps (0.29 = rounding "
                "alone). Clipped: float values outside the quantized range.",
            ]
        )

    def to_dict(self):
        """Returns the report as plain Python types (JSON-ready)."""
        return {
            "reference": self.reference,
            "quantized_path": self.quantized_path,
            "num_examples": self.num_examples,
            "rows": [row.to_dict() for row in self.rows],
        }

    def __str__(self):
        return self.table()

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


def layer_quantization_error(reference, quantized_path, x, batch_size=32):
    """Measures the quantization error of each op of a quantized file.

    Runs the float model and the quantized file on the same inputs in
    LiteRT, keeping every intermediate tensor, and compares each op's
    output with the float one. Use it after `to_tflite(...,
    quantization="int8")` when `verify` shows too much error: the ops with
    the largest `added_error` are where to look, and the candidates for
    `keep_float`.

    Args:
        reference: The Keras model the file was converted from (it is
            exported to a temporary float32 file, and the rows name its
            layers), or the path to a float32 `.tflite` export of it (or
            the `TFLiteExport` of one).
        quantized_path: Path to the quantized `.tflite` file (int8,
            int16x8, or mixed with float32 ops), or its `TFLiteExport`.
        x: Inputs, an array of shape `(N, *input_shape)` with `N >= 1`
            (for a multi-input model, a dict of arrays keyed by input
            name). The calibration data, or held-out data.
        batch_size: Examples per `invoke()`, an integer >= 1. Defaults to
            `32`.

    Returns:
        A `QuantizationErrorReport`: `.rows` (one `OpQuantizationError` per
        op, in execution order), `.worst(n)`, `.row(layer_name)`,
        `.outputs`, `.table()`, `.to_dict()`.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If `x` is empty or does not match the files' input, or
            the two files share no tensor names (not the same model).

    Example:

    ```python
    to_tflite(
        model,
        "model_int8.tflite",
        quantization="int8",
        representative_data=x_train[:200],
    )
    report = layer_quantization_error(model, "model_int8.tflite", x_test[:200])
    print(report.table(sort_by="added_error", top=5))
    worst = report.worst(1)[0].layers  # e.g. ('conv2d_3',)
    to_tflite(
        model,
        "model_mixed.tflite",
        quantization="int8",
        representative_data=x_train[:200],
        keep_float=list(worst),
    )
    ```
    """
    integer_at_least("batch_size", batch_size, minimum=1)
    if isinstance(quantized_path, TFLiteExport):
        quantized_path = quantized_path.path
    quantized_path = os.fspath(quantized_path)
    if not os.path.isfile(quantized_path):
        raise FileNotFoundError(
            "No `.tflite` file at `quantized_path`. Received: "
            f"quantized_path={quantized_path!r}"
        )
    inputs = _check_inputs(x)
    if isinstance(reference, (str, os.PathLike, TFLiteExport)):
        if isinstance(reference, TFLiteExport):
            reference = reference.path
        float_path = os.fspath(reference)
        if not os.path.isfile(float_path):
            raise FileNotFoundError(
                "No `.tflite` file at `reference`. Received: "
                f"reference={float_path!r}"
            )
        return _compare(
            float_path, quantized_path, inputs, batch_size, None, float_path
        )
    with tempfile.TemporaryDirectory() as scratch:
        float_path = os.path.join(scratch, "float.tflite")
        to_tflite(reference, float_path)
        name = getattr(reference, "name", type(reference).__name__)
        return _compare(
            float_path,
            quantized_path,
            inputs,
            batch_size,
            reference,
            f"model {name!r}",
        )


def _compare(float_path, quantized_path, inputs, batch_size, model, label):
    float_inspection = inspect_tflite(float_path)
    quantized_inspection = inspect_tflite(quantized_path)
    matches = _match_tensors(float_inspection, quantized_inspection)
    if not matches:
        raise ValueError(
            "The two files share no tensor names, so they are not the float "
            "and quantized exports of one model. Received: "
            f"reference={float_path!r}, quantized_path={quantized_path!r}"
        )
    float_tracer = _TensorTracer(model_path=float_path)
    quantized_tracer = _TensorTracer(model_path=quantized_path)
    quantized_tensors = {
        t.index: t
        for op in quantized_inspection.ops
        if op.subgraph == 0
        for t in (*op.inputs, *op.outputs)
    }
    quantized_tensors.update({t.index: t for t in quantized_inspection.inputs})
    stats = {
        index: _ErrorStats(quantized_tensors[index])
        for index in matches
        if index in quantized_tensors
    }

    if isinstance(inputs, dict):
        num_examples = len(next(iter(inputs.values())))
    else:
        detail = quantized_tracer.interpreter.get_input_details()[0]
        _check_input_shape(
            inputs[0], [int(d) for d in detail["shape_signature"]]
        )
        num_examples = len(inputs[0])
    step = batch_size if quantized_tracer.has_dynamic_batch else 1
    for start in range(0, num_examples, step):
        if isinstance(inputs, dict):
            batch = {k: v[start : start + step] for k, v in inputs.items()}
        else:
            batch = [v[start : start + step] for v in inputs]
        float_tracer.run(batch)
        quantized_tracer.run(batch)
        for index, stat in stats.items():
            stat.add(
                float_tracer.tensor(matches[index]),
                quantized_tracer.tensor(index),
            )

    owners = {}
    if model is not None:
        for op, layers in zip(
            float_inspection.ops,
            layer_ops.op_layers(model, float_inspection),
        ):
            for tensor in op.outputs:
                owners[tensor.index] = layers
    float_outputs = {t.index for t in float_inspection.outputs}
    relative = {index: stat.relative_error for index, stat in stats.items()}
    rows = []
    for op in quantized_inspection.ops:
        if op.subgraph != 0 or op.name in _CONVERSION_OPS or not op.outputs:
            continue
        output = op.outputs[0]
        if output.index not in stats or not stats[output.index].count:
            continue
        stat = stats[output.index]
        if stat.scale is None and output.dtype not in ("float32", "float16"):
            continue  # Shape arithmetic (int32), not activations.
        received = [
            relative[t.index]
            for t in op.inputs
            if not t.is_constant and t.index in relative
        ]
        rows.append(
            OpQuantizationError(
                index=op.index,
                op=op.name,
                tensor=_float_name(float_inspection, matches[output.index]),
                layers=owners.get(matches[output.index], ()),
                dtype=output.dtype,
                scale=stat.scale,
                rmse=stat.rmse,
                mean_abs_error=stat.mean_abs_error,
                max_abs_error=stat.max_abs_error,
                relative_error=stat.relative_error,
                added_error=stat.relative_error - max(received, default=0.0),
                clipped_fraction=stat.clipped_fraction,
                is_output=matches[output.index] in float_outputs,
            )
        )
    return QuantizationErrorReport(
        reference=label,
        quantized_path=quantized_path,
        num_examples=num_examples,
        rows=tuple(rows),
    )


def _match_tensors(float_inspection, quantized_inspection):
    """Returns `{quantized tensor index: float tensor index}`.

    Activation tensors keep their names through quantization; a tensor the
    quantizer added on either side of a QUANTIZE / DEQUANTIZE op holds the
    same values as the tensor on the other side.
    """
    float_by_name = {}
    for op in float_inspection.ops:
        if op.subgraph == 0:
            for t in op.outputs:
                float_by_name[t.name] = t.index
    for t in float_inspection.inputs:
        float_by_name[t.name] = t.index
    ops = [op for op in quantized_inspection.ops if op.subgraph == 0]
    matches = {}
    for tensor in [*quantized_inspection.inputs] + [
        t for op in ops for t in op.outputs
    ]:
        if tensor.name in float_by_name:
            matches[tensor.index] = float_by_name[tensor.name]
    for _ in range(2):  # A chain DEQUANTIZE -> QUANTIZE needs two passes.
        for op in ops:
            if op.name not in _CONVERSION_OPS or not op.inputs:
                continue
            source, target = op.inputs[0].index, op.outputs[0].index
            if source in matches and target not in matches:
                matches[target] = matches[source]
            elif target in matches and source not in matches:
                matches[source] = matches[target]
    return matches


def _float_name(inspection, index):
    for op in inspection.ops:
        for t in op.outputs:
            if t.index == index and op.subgraph == 0:
                return t.name
    for t in inspection.inputs:
        if t.index == index:
            return t.name
    return str(index)


class _ErrorStats:
    """Running error statistics of one quantized tensor against float."""

    def __init__(self, tensor):
        quantization = tensor.quantization
        self.dtype = _INTEGER_DTYPES.get(tensor.dtype)
        self.scale = self.zero_point = None
        if (
            self.dtype is not None
            and quantization is not None
            and quantization.num_scales == 1
        ):
            self.scale = quantization.scales[0]
            self.zero_point = quantization.zero_points[0]
        self.count = 0
        self.clipped = 0
        self.sum_squared_error = 0.0
        self.sum_abs_error = 0.0
        self.max_abs_error = 0.0
        self.sum = 0.0
        self.sum_squares = 0.0

    def add(self, reference, quantized):
        reference = np.asarray(reference, np.float64)
        if quantized.shape != reference.shape:
            return  # Not the same tensor after all (e.g. a reshaped view).
        if self.scale is not None:
            values = quantized.astype(np.float64) - self.zero_point
            values *= self.scale
            info = np.iinfo(self.dtype)
            low = (info.min - self.zero_point - 0.5) * self.scale
            high = (info.max - self.zero_point + 0.5) * self.scale
            self.clipped += int(
                np.count_nonzero((reference < low) | (reference > high))
            )
        else:
            values = quantized.astype(np.float64)
        error = np.abs(values - reference)
        self.count += error.size
        self.sum_squared_error += float(np.sum(error**2))
        self.sum_abs_error += float(np.sum(error))
        self.max_abs_error = max(self.max_abs_error, float(np.max(error)))
        self.sum += float(np.sum(reference))
        self.sum_squares += float(np.sum(reference**2))

    @property
    def rmse(self):
        return float(np.sqrt(self.sum_squared_error / max(self.count, 1)))

    @property
    def mean_abs_error(self):
        return self.sum_abs_error / max(self.count, 1)

    @property
    def relative_error(self):
        if not self.count:
            return 0.0
        mean = self.sum / self.count
        variance = max(self.sum_squares / self.count - mean**2, 0.0)
        if variance == 0:
            return 0.0 if self.sum_squared_error == 0 else float("inf")
        return self.rmse / float(np.sqrt(variance))

    @property
    def clipped_fraction(self):
        if self.scale is None:
            return None
        return self.clipped / max(self.count, 1)


def _check_inputs(x):
    """Returns `x` as a list of arrays (one input) or a dict of arrays."""
    if isinstance(x, dict):
        inputs = {name: np.asarray(value) for name, value in x.items()}
        arrays = list(inputs.values())
    else:
        inputs = [np.asarray(x)]
        arrays = inputs
    if not arrays or any(a.ndim == 0 or len(a) == 0 for a in arrays):
        raise ValueError(
            "`x` must hold at least one example, with a batch axis. "
            f"Received: shapes {[a.shape for a in arrays]}"
        )
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(
            "The arrays of `x` must hold the same number of examples. "
            f"Received: shapes {[a.shape for a in arrays]}"
        )
    return inputs


def _shorten(text, width):
    return text if len(text) <= width else text[: width - 3] + "..."
