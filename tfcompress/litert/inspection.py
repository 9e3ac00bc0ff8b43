"""What a `.tflite` file holds: its ops, fused activations and tensors."""

import collections
import dataclasses
import struct

# The flatbuffer schema as generated Python code, shipped inside the LiteRT
# runtime wheel that `LiteRTModel` already needs (the same module
# `ai_edge_litert.tools.flatbuffer_utils` reads files with). It is the only
# route to an op's builtin options, where the fused activation lives: the
# interpreter's public details list tensors but not ops, its
# `_get_ops_details()` is private and omits the options, and
# `tf.lite.experimental.Analyzer` only prints text. `tensorflow.lite.python`
# holds a copy too, but under TensorFlow's internal `python` package, and
# `tf.lite` itself is moving to LiteRT.
from ai_edge_litert import schema_py_generated as schema

from tfcompress.litert.byte_size import format_size
from tfcompress.litert.tflite_model import TensorQuantization
from tfcompress.litert.tflite_model import TFLiteOp
from tfcompress.litert.tflite_model import TFLiteTensor
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.report import Report
from tfcompress.report import format_table

# The 4-byte file identifier of a TFLite flatbuffer, at bytes 4 to 8.
_FILE_IDENTIFIER = b"TFL3"

_OP_NAMES = {
    value: name
    for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}
_DTYPE_NAMES = {
    value: name.lower()
    for name, value in vars(schema.TensorType).items()
    if not name.startswith("_")
}
_ACTIVATION_NAMES = {
    value: name
    for name, value in vars(schema.ActivationFunctionType).items()
    if not name.startswith("_")
}
_OPTIONS_NAMES = {
    value: name
    for name, value in vars(schema.BuiltinOptions).items()
    if not name.startswith("_")
}


@dataclasses.dataclass(frozen=True)
class TFLiteInspection(Report):
    """What `inspect_tflite()` found in a `.tflite` file.

    `str()` (or `table()`) gives one line per op, with its fused activation
    and the dtype and shape of each input and output; constants show the
    bytes they take in the file and, when quantized per channel, their
    number of scales. Its `rows` are its `ops`; `row(name)` is the first
    op of that name (`"CONV_2D"`).

    Attributes:
        path: Path of the file.
        ops: The ops, `TFLiteOp`s, in execution order (main graph first).
        inputs: The model's input tensors, `TFLiteTensor`s.
        outputs: The model's output tensors, `TFLiteTensor`s.
        num_subgraphs: The number of subgraphs; more than 1 only with
            control flow.
        constants: The tensors whose values the file stores (weights,
            biases, other constants), `TFLiteTensor`s, one per buffer:
            tensors that share a buffer appear once.
    """

    path: str
    ops: tuple
    inputs: tuple
    outputs: tuple
    num_subgraphs: int
    constants: tuple = dataclasses.field(repr=False, default=())

    summary = ("op_counts", "weight_bytes_by_dtype", "weight_bytes")

    @property
    def rows(self):
        """The ops, `TFLiteOp`s: the rows of the report."""
        return self.ops

    @property
    def op_counts(self):
        """`{op name: count}`, in the order ops first appear."""
        return dict(collections.Counter(op.name for op in self.ops))

    @property
    def weight_bytes_by_dtype(self):
        """`{dtype: bytes}` of the constants stored in the file, largest first.

        Each buffer counts once, even when several tensors share it.
        """
        totals = collections.Counter()
        for tensor in self.constants:
            totals[tensor.dtype] += tensor.constant_bytes
        return dict(totals.most_common())

    @property
    def weight_bytes(self):
        """Total bytes of the constants stored in the file."""
        return sum(self.weight_bytes_by_dtype.values())

    @property
    def input_dtypes(self):
        """The dtypes of the model's inputs, a list of strings."""
        return [tensor.dtype for tensor in self.inputs]

    @property
    def output_dtypes(self):
        """The dtypes of the model's outputs, a list of strings."""
        return [tensor.dtype for tensor in self.outputs]

    def table(self):
        """Returns the ops as a fixed-width table, under a summary."""
        counts = ", ".join(f"{n} {name}" for name, n in self.op_counts.items())
        weights = ", ".join(
            f"{dtype} {format_size(size)}"
            for dtype, size in self.weight_bytes_by_dtype.items()
        )
        lines = [
            f"{self.path}: {len(self.ops)} ops ({counts or 'none'})",
            "inputs: " + ", ".join(str(t) for t in self.inputs),
            "outputs: " + ", ".join(str(t) for t in self.outputs),
            f"weights: {format_size(self.weight_bytes)}"
            + (f" ({weights})" if weights else ""),
        ]
        rows = []
        for op in self.ops:
            index = str(op.index)
            if self.num_subgraphs > 1:
                index = f"{op.subgraph}:{op.index}"
            rows.append(
                (
                    index,
                    op.name,
                    op.activation or "-",
                    ", ".join(str(t) for t in op.inputs),
                    ", ".join(str(t) for t in op.outputs),
                )
            )
        lines += format_table(
            ("#", "op", "activation", "inputs", "outputs"),
            rows,
            right_aligned=[False] * 5,
        )
        return "\n".join(lines)


def inspect_tflite(path):
    """Lists the ops and tensors of a `.tflite` file.

    Shows what the converter made of a model: which layers became one op
    (a `Conv2D` with `BatchNormalization` and `ReLU` becomes one `CONV_2D`
    with a fused `RELU`), which ops run in int8, where the file quantizes
    and dequantizes, and how many bytes each weight takes. The file is read
    as a flatbuffer; nothing is run.

    Args:
        path: Path to a `.tflite` file, or the `TFLiteExport` that
            `to_tflite()` returned.

    Returns:
        A `TFLiteInspection`: `.ops` (one `TFLiteOp` each, with name, fused
        activation, input and output tensors), `.op_counts`,
        `.weight_bytes_by_dtype`, `.input_dtypes`, `.output_dtypes`,
        `to_dict()`, and a readable table as `str()`.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If the file is not a TFLite flatbuffer, or is
            truncated.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    to_tflite(model, "model.tflite")
    inspection = inspect_tflite("model.tflite")
    print(inspection.op_counts)
    # {'CONV_2D': 1, 'MEAN': 1, 'FULLY_CONNECTED': 1}
    print(inspection.ops[0].activation)  # RELU
    ```
    """
    path = tflite_file_path(path)
    # Read whole rather than memory-mapped: the reader hands out NumPy views
    # into the buffer, which would keep a map from closing.
    with open(path, "rb") as f:
        content = f.read()
    return inspect_tflite_content(content, path)


def inspect_tflite_content(content, path="<content>"):
    """Lists the ops and tensors of a `.tflite` file given as bytes.

    `inspect_tflite` for a file that is not on disk (yet): a conversion
    still in memory, such as the converter's calibrated float model.

    Args:
        content: The bytes of a `.tflite` file.
        path: What to call it in the inspection and in error messages.
            Defaults to `"<content>"`.

    Returns:
        A `TFLiteInspection`, as `inspect_tflite` returns.

    Raises:
        ValueError: If the bytes are not a TFLite flatbuffer, or are
            truncated.

    Example:

    ```python
    with open("model.tflite", "rb") as f:
        inspection = inspect_tflite_content(f.read(), "model.tflite")
    ```
    """
    if len(content) < 8 or not schema.Model.ModelBufferHasIdentifier(
        content, 0
    ):
        raise ValueError(
            "The file at `path` is not a TFLite flatbuffer: expected the "
            f"file identifier {_FILE_IDENTIFIER!r} at bytes 4 to 8, found "
            f"{bytes(content[4:8])!r} ({len(content)} bytes in all). "
            f"Received: path={path!r}"
        )
    try:
        return _read_model(path, content)
    except (
        IndexError, KeyError, TypeError, ValueError, struct.error
    ) as error:
        # Flatbuffer accessors do not validate: a truncated or corrupt file
        # surfaces as an out-of-range read somewhere inside.
        raise ValueError(
            "The file at `path` has a TFLite identifier but cannot be read: "
            f"it is truncated or corrupt ({type(error).__name__}: {error}). "
            f"Received: path={path!r}"
        ) from error


def _read_model(path, buffer):
    model = schema.Model.GetRootAs(buffer, 0)
    op_names = [
        _op_name(model.OperatorCodes(i))
        for i in range(model.OperatorCodesLength())
    ]
    buffer_sizes = [
        _buffer_size(model.Buffers(i)) for i in range(model.BuffersLength())
    ]
    ops = []
    constants = {}
    inputs = outputs = ()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        tensors = [
            _read_tensor(subgraph.Tensors(i), i, buffer_sizes)
            for i in range(subgraph.TensorsLength())
        ]
        for i, tensor in enumerate(tensors):
            if tensor.is_constant:
                # Keyed by buffer: tensors that share weights count once.
                constants[subgraph.Tensors(i).Buffer()] = tensor
        if s == 0:
            inputs = _pick(tensors, subgraph.InputsAsNumpy())
            outputs = _pick(tensors, subgraph.OutputsAsNumpy())
        for i in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(i)
            ops.append(
                TFLiteOp(
                    index=i,
                    name=op_names[op.OpcodeIndex()],
                    activation=_activation(op),
                    inputs=_pick(tensors, op.InputsAsNumpy()),
                    outputs=_pick(tensors, op.OutputsAsNumpy()),
                    subgraph=s,
                )
            )
    return TFLiteInspection(
        path=path,
        ops=tuple(ops),
        inputs=inputs,
        outputs=outputs,
        num_subgraphs=model.SubgraphsLength(),
        constants=tuple(constants.values()),
    )


def _pick(tensors, indices):
    # `*AsNumpy()` returns 0 (not an array) for an absent vector; index -1
    # marks an optional input the op does without.
    if isinstance(indices, int):
        return ()
    return tuple(tensors[int(i)] for i in indices if i >= 0)


def _op_name(op_code):
    if op_code.CustomCode() is not None:
        return op_code.CustomCode().decode("utf-8")
    # Codes above 127 live in `BuiltinCode`; older files only fill the
    # 8-bit `DeprecatedBuiltinCode`. LiteRT takes the larger of the two.
    code = max(op_code.BuiltinCode(), op_code.DeprecatedBuiltinCode())
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


def _activation(op):
    options_name = _OPTIONS_NAMES.get(op.BuiltinOptionsType())
    if options_name is None:
        return "unknown"  # Options added to the schema after this runtime.
    options_class = getattr(schema, options_name, None)
    table = op.BuiltinOptions()
    if (
        table is None
        or options_class is None
        or not hasattr(options_class, "FusedActivationFunction")
    ):
        return None
    options = options_class()
    options.Init(table.Bytes, table.Pos)
    code = options.FusedActivationFunction()
    return _ACTIVATION_NAMES.get(code, "unknown")


def _buffer_size(buffer):
    # Files over 2 GB keep the data after the flatbuffer, at `Offset()`
    # (1 is the "no data" sentinel).
    if buffer.Offset() > 1:
        return int(buffer.Size())
    return int(buffer.DataLength())


def _read_tensor(tensor, index, buffer_sizes):
    if not tensor.ShapeSignatureIsNone():
        shape = tuple(
            None if d < 0 else int(d) for d in tensor.ShapeSignatureAsNumpy()
        )
    elif tensor.ShapeIsNone():
        shape = ()
    else:
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
    # Buffer 0 is the empty sentinel; tensors computed at run time point to
    # it, or to a buffer of their own with no data.
    buffer_index = tensor.Buffer()
    constant_bytes = 0
    if 0 < buffer_index < len(buffer_sizes):
        constant_bytes = buffer_sizes[buffer_index]
    name = tensor.Name()
    return TFLiteTensor(
        index=index,
        name=name.decode("utf-8", "replace") if name else "",
        dtype=_DTYPE_NAMES.get(tensor.Type(), f"type_{tensor.Type()}"),
        shape=shape,
        constant_bytes=constant_bytes,
        quantization=_read_quantization(tensor.Quantization()),
    )


def _read_quantization(params):
    if params is None or params.ScaleIsNone() or params.ScaleLength() == 0:
        return None
    scales = tuple(float(s) for s in params.ScaleAsNumpy())
    if params.ZeroPointIsNone():
        zero_points = (0,) * len(scales)
    else:
        zero_points = tuple(int(z) for z in params.ZeroPointAsNumpy())
    axis = int(params.QuantizedDimension()) if len(scales) > 1 else None
    return TensorQuantization(scales, zero_points, axis)
