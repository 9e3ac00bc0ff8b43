"""What a `.tflite` file computes in: integer or float, op by op.

A quantization mode is a request to the converter, not a guarantee: it
leaves in float what it cannot quantize (an op without an integer kernel,
a tensor without a range) and says nothing. `tflite_precision` reads the
file and says what its weighted ops (the ops that read a constant weight
tensor: convolutions, fully connected layers, embedding tables,
recurrent cells) actually compute in, and what type their weights are
stored in.

An op computes in integer when its output is an integer tensor (int8,
int16) and its weights are integers. An op whose weights are integers but
whose output is float (dynamic range quantization) is "hybrid": it
stores int8 weights, and its activations stay float. Everything else is
float.
"""

import collections
import dataclasses

from tfcompress.litert.inspection import TFLiteInspection
from tfcompress.litert.inspection import inspect_tflite
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

# The weighted ops, and the positions of their weight inputs (`None`: any
# constant input of two or more dimensions, for recurrent cells whose
# optional inputs shift the positions).
_WEIGHT_INPUTS = {
    "CONV_2D": (1,),
    "CONV_3D": (1,),
    "CONV_3D_TRANSPOSE": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "TRANSPOSE_CONV": (1,),
    "FULLY_CONNECTED": (1,),
    "BATCH_MATMUL": (0, 1),
    "EMBEDDING_LOOKUP": (1,),
    "GATHER": (0,),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": None,
    "BIDIRECTIONAL_SEQUENCE_LSTM": None,
    "LSTM": None,
    "UNIDIRECTIONAL_SEQUENCE_RNN": None,
    "BIDIRECTIONAL_SEQUENCE_RNN": None,
    "RNN": None,
    "SVDF": None,
}
# Types of quantized values: integer compute, or integer storage.
_INTEGER_DTYPES = ("int8", "uint8", "int16", "int4")
# Types of indices and shapes, never weights.
_INDEX_DTYPES = ("int32", "int64", "bool")


@dataclasses.dataclass(frozen=True)
class FloatOp(Row):
    """A weighted op of a `.tflite` file that does not compute in integer.

    Attributes:
        name: The op's Keras layers joined by `" + "` when they are known,
            otherwise the name of its output tensor.
        op: The op type (`"FULLY_CONNECTED"`, `"CONV_2D"`, ...).
        index: The op's position in its subgraph.
        subgraph: The op's subgraph (0 is the main graph).
        compute: `"float"`, or `"hybrid"` for integer weights with float
            activations (dynamic range quantization).
        activation_dtype: The type of the op's output (`"float32"`).
        weight_dtype: The type its weights are stored in (`"float32"`,
            `"float16"`, `"int8"`).
        layers: The Keras layers the op comes from, innermost first; empty
            when they are not known.
        kept_float: Whether the user asked for it to stay float
            (`to_tflite(..., keep_float=[...])`).
    """

    name: str
    op: str
    index: int
    subgraph: int
    compute: str
    activation_dtype: str
    weight_dtype: str
    layers: tuple = ()
    kept_float: bool = False


@dataclasses.dataclass(frozen=True)
class Precision(Report):
    """What the weighted ops of a `.tflite` file compute in.

    `str(report)` starts with a one-line summary (`headline`), such as
    `"int8: 12 of 12 weighted ops integer, 100.0% of weight bytes int8"`,
    followed by a table of the ops that are not integer.

    Attributes:
        path: Path of the file.
        quantization: The quantization mode the file was exported with
            (`"int8"`, `"int16x8"`, `"dynamic"`, `"float16"`, `"none"`), or
            `None` when it is not known.
        num_weighted_ops: The number of ops that read a constant weight
            tensor.
        num_integer_ops: How many of them compute in integer (int8 or
            int16 activations, integer weights).
        weight_bytes_by_dtype: `{dtype: bytes}` of the weight tensors those
            ops read (kernels and tables, not biases), largest first; a
            tensor shared by several ops counts once.
        rows: `FloatOp`s, the weighted ops that do not compute in integer,
            in execution order.
    """

    path: str
    quantization: str | None
    num_weighted_ops: int
    num_integer_ops: int
    weight_bytes_by_dtype: dict = dataclasses.field(hash=False)
    rows: tuple = ()

    summary = ("num_float_ops",)

    @property
    def num_float_ops(self):
        """The number of weighted ops that do not compute in integer."""
        return self.num_weighted_ops - self.num_integer_ops

    @property
    def unrequested_float_ops(self):
        """Rows of the float ops nobody asked to keep float (`keep_float`)."""
        return tuple(row for row in self.rows if not row.kept_float)

    @property
    def is_integer(self):
        """Whether every weighted op computes in integer."""
        return self.num_integer_ops == self.num_weighted_ops

    def weight_fraction(self, dtype):
        """The fraction of the weight bytes stored as `dtype`, in `[0, 1]`.

        `1.0` for a file without weights.
        """
        total = sum(self.weight_bytes_by_dtype.values())
        if total == 0:
            return 1.0
        return self.weight_bytes_by_dtype.get(dtype, 0) / total

    @property
    def headline(self):
        """A one-line summary, e.g. `"int8: 2 of 3 weighted ops integer
        (1 kept float as asked: head), 84.2% of weight bytes int8"`."""
        mode = self.quantization or "file"
        float_rows = self.unrequested_float_ops
        if float_rows and self.quantization in ("int8", "int16x8"):
            mode = f"{self.quantization} requested"
        text = (
            f"{mode}: {self.num_integer_ops} of {self.num_weighted_ops} "
            "weighted ops integer"
        )
        notes = []
        kept = [row.name for row in self.rows if row.kept_float]
        if kept:
            notes.append(f"{len(kept)} kept float as asked: {', '.join(kept)}")
        hybrid = [row for row in float_rows if row.compute == "hybrid"]
        if hybrid:
            notes.append(
                f"{len(hybrid)} hybrid: integer weights, float activations"
            )
        computing_float = [row for row in float_rows if row.compute == "float"]
        if computing_float:
            names = ", ".join(row.name for row in computing_float[:3])
            more = len(computing_float) - 3
            if more > 0:
                names += f" and {more} more"
            notes.append(f"{len(computing_float)} float: {names}")
        if notes:
            text += f" ({'; '.join(notes)})"
        dtype = self._main_weight_dtype()
        return (
            f"{text}, {self.weight_fraction(dtype):.1%} of weight bytes "
            f"{dtype}"
        )

    def table(self):
        """Returns the headline, then a table of the ops not in integer."""
        lines = [self.headline]
        if self.rows:
            lines += format_table(
                ("#", "Op", "Layer", "Compute", "Activations", "Weights"),
                [
                    (
                        str(row.index)
                        if row.subgraph == 0
                        else f"{row.subgraph}:{row.index}",
                        row.op,
                        row.name + (" (keep_float)" if row.kept_float else ""),
                        row.compute,
                        row.activation_dtype,
                        row.weight_dtype,
                    )
                    for row in self.rows
                ],
                right_aligned=[False] * 6,
            )
        return "\n".join(lines)

    def _main_weight_dtype(self):
        """The weight type the headline reports the share of."""
        if self.quantization == "float16":
            return "float16"
        if self.quantization in ("int8", "int16x8", "dynamic"):
            return "int8"
        if not self.weight_bytes_by_dtype:
            return "float32"
        return next(iter(self.weight_bytes_by_dtype))


def tflite_precision(file, quantization=None, layers=None, keep_float=()):
    """Says what the weighted ops of a `.tflite` file compute in.

    Weighted ops are those that read a constant weight tensor (`CONV_2D`,
    `DEPTHWISE_CONV_2D`, `FULLY_CONNECTED`, `BATCH_MATMUL`,
    `TRANSPOSE_CONV`, `EMBEDDING_LOOKUP` and `GATHER` on a constant table,
    recurrent cells such as `UNIDIRECTIONAL_SEQUENCE_LSTM`). Weights the
    file stores in float16 or int8 and dequantizes before the op count as
    the op's weights, in their stored type.

    Args:
        file: Path to a `.tflite` file, the `TFLiteExport` that
            `to_tflite()` returned, or its `TFLiteInspection`.
        quantization: The mode the file was exported with, for the
            headline. Defaults to `None` (not known).
        layers: The Keras layers behind each op of the file, one tuple per
            op of `inspect_tflite(file).ops` (as
            `tfcompress.quantization.op_layers` returns them), to name the
            rows after layers. Defaults to `None`: rows are named after
            their output tensors.
        keep_float: Names of layers the user asked to keep in float; their
            ops' rows have `kept_float=True`. Defaults to `()`.

    Returns:
        A `Precision` report.

    Raises:
        FileNotFoundError: If there is no file at `file`.
        ValueError: If the file is not a TFLite flatbuffer, or `layers`
            does not have one entry per op.

    Example:

    ```python
    export = to_tflite(model, "model.tflite", quantization="int8", data=x)
    precision = tflite_precision(export, quantization="int8")
    print(precision.headline)
    # int8: 2 of 2 weighted ops integer, 100.0% of weight bytes int8
    ```
    """
    if isinstance(file, TFLiteInspection):
        inspection = file
    else:
        inspection = inspect_tflite(file)
    if layers is not None and len(layers) != len(inspection.ops):
        raise ValueError(
            "Expected `layers` to hold one tuple of layer names per op of "
            f"the file ({len(inspection.ops)} ops). Received: "
            f"{len(layers)} entries"
        )
    keep_float = set(keep_float)
    # DEQUANTIZE of a constant: the op after it reads a stored weight.
    dequantized = {
        (op.subgraph, op.outputs[0].index): op.inputs[0]
        for op in inspection.ops
        if op.name == "DEQUANTIZE" and op.inputs and op.inputs[0].is_constant
    }
    weight_bytes = {}
    num_weighted = num_integer = 0
    rows = []
    for position, op in enumerate(inspection.ops):
        weights = _weights(op, dequantized)
        if not weights or not op.outputs:
            continue
        num_weighted += 1
        for tensor in weights:
            key = (op.subgraph, tensor.index)
            weight_bytes[key] = (tensor.dtype, tensor.constant_bytes)
        weight_dtypes = {tensor.dtype for tensor in weights}
        integer_weights = weight_dtypes <= set(_INTEGER_DTYPES)
        activation_dtype = op.outputs[0].dtype
        if integer_weights and activation_dtype in _INTEGER_DTYPES:
            num_integer += 1
            continue
        op_layers = tuple(layers[position]) if layers is not None else ()
        rows.append(
            FloatOp(
                name=" + ".join(op_layers) or op.outputs[0].name,
                op=op.name,
                index=op.index,
                subgraph=op.subgraph,
                compute="hybrid" if integer_weights else "float",
                activation_dtype=activation_dtype,
                weight_dtype="/".join(sorted(weight_dtypes)),
                layers=op_layers,
                kept_float=bool(keep_float & set(op_layers)),
            )
        )
    totals = collections.Counter()
    for dtype, size in weight_bytes.values():
        totals[dtype] += size
    return Precision(
        path=inspection.path,
        quantization=quantization,
        num_weighted_ops=num_weighted,
        num_integer_ops=num_integer,
        weight_bytes_by_dtype=dict(totals.most_common()),
        rows=tuple(rows),
    )


def _weights(op, dequantized):
    """The constant weight tensors an op reads, as stored in the file."""
    positions = _WEIGHT_INPUTS.get(op.name, ())
    if positions is None:
        candidates = list(op.inputs)
    else:
        candidates = [op.inputs[i] for i in positions if i < len(op.inputs)]
    weights = []
    for tensor in candidates:
        stored = dequantized.get((op.subgraph, tensor.index), tensor)
        if not stored.is_constant or stored.dtype in _INDEX_DTYPES:
            continue
        if positions is None and len(stored.shape) < 2:
            continue  # A recurrent cell's bias or state, not a weight.
        weights.append(stored)
    return weights
