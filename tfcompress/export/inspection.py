"""What a `.tflite` file holds: its ops, fused activations and tensors."""

import collections
import dataclasses
import os
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

from tfcompress.export.tflite import TFLiteExport
from tfcompress.export.tflite import _format_size

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
class TensorQuantization:
    """Affine quantization of one tensor: `real = scale * (q - zero_point)`.

    Attributes:
        scales: The scales, one per tensor (per-tensor) or one per slice
            along `axis` (per-channel).
        zero_points: The zero points, as many as `scales`.
        axis: The quantized dimension of a per-channel tensor (0 for a
            `CONV_2D` or `FULLY_CONNECTED` kernel, 3 for a
            `DEPTHWISE_CONV_2D` kernel), `None` for a per-tensor one.
    """

    scales: tuple
    zero_points: tuple
    axis: int | None

    @property
    def num_scales(self):
        """The number of scales: 1 per tensor, or 1 per channel."""
        return len(self.scales)

    @property
    def granularity(self):
        """`"per-channel"` or `"per-tensor"`."""
        return "per-tensor" if self.axis is None else "per-channel"

    def __str__(self):
        if self.axis is None:
            return (
                f"per-tensor (scale {self.scales[0]:.4g}, "
                f"zero point {self.zero_points[0]})"
            )
        return f"per-channel ({self.num_scales} scales, axis {self.axis})"


@dataclasses.dataclass(frozen=True)
class TFLiteTensor:
    """One tensor of a `.tflite` file.

    Attributes:
        index: The tensor's index in its subgraph.
        name: The tensor's name.
        dtype: The element type, a NumPy-style name (`"float32"`, `"int8"`,
            `"int32"`, `"float16"`, ...).
        shape: The shape, with `None` for a dimension that is only known at
            run time (usually the batch).
        constant_bytes: Bytes of constant data stored in the file (weights,
            biases, other constants); `0` for a tensor computed at run time.
        quantization: A `TensorQuantization`, or `None` for a tensor that is
            not quantized.
    """

    index: int
    name: str
    dtype: str
    shape: tuple
    constant_bytes: int
    quantization: TensorQuantization | None

    @property
    def is_constant(self):
        """Whether the tensor's values are stored in the file."""
        return self.constant_bytes > 0

    def __str__(self):
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        text = f"{self.dtype}[{dims}]"
        if self.is_constant:
            extra = [_format_size(self.constant_bytes)]
            quantization = self.quantization
            if quantization is not None and quantization.axis is not None:
                extra.append(f"{quantization.num_scales} scales")
            text += f" ({', '.join(extra)})"
        return text


@dataclasses.dataclass(frozen=True)
class TFLiteOp:
    """One op of a `.tflite` file.

    Attributes:
        index: The op's position in its subgraph's execution order.
        name: The builtin op name as LiteRT spells it (`"CONV_2D"`,
            `"DEPTHWISE_CONV_2D"`, `"FULLY_CONNECTED"`, `"QUANTIZE"`, ...),
            or the custom code of a custom op (`"FlexErf"` for a Flex op).
        activation: The fused activation (`"NONE"`, `"RELU"`, `"RELU6"`,
            `"RELU_N1_TO_1"`, `"TANH"`, `"SIGN_BIT"`) of an op that can fuse
            one; `None` for an op that cannot; `"unknown"` when the file
            uses options newer than the schema this runtime knows.
        inputs: The input tensors, `TFLiteTensor`s. Optional inputs the op
            does without (such as a missing bias) are left out.
        outputs: The output tensors, `TFLiteTensor`s.
        subgraph: The index of the op's subgraph; `0` is the main graph,
            others are bodies of control flow ops.
    """

    index: int
    name: str
    activation: str | None
    inputs: tuple
    outputs: tuple
    subgraph: int = 0


@dataclasses.dataclass(frozen=True)
class TFLiteInspection:
    """What `inspect_tflite()` found in a `.tflite` file.

    `str()` gives one line per op, with its fused activation and the dtype
    and shape of each input and output; constants show the bytes they take
    in the file and, when quantized per channel, their number of scales.

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

    def to_dict(self):
        """Returns the inspection as plain Python types (JSON-ready)."""
        return {
            "path": self.path,
            "num_subgraphs": self.num_subgraphs,
            "inputs": [_tensor_dict(t) for t in self.inputs],
            "outputs": [_tensor_dict(t) for t in self.outputs],
            "op_counts": self.op_counts,
            "weight_bytes_by_dtype": self.weight_bytes_by_dtype,
            "ops": [
                {
                    "index": op.index,
                    "subgraph": op.subgraph,
                    "name": op.name,
                    "activation": op.activation,
                    "inputs": [_tensor_dict(t) for t in op.inputs],
                    "outputs": [_tensor_dict(t) for t in op.outputs],
                }
                for op in self.ops
            ],
        }

    def __str__(self):
        counts = ", ".join(f"{n} {name}" for name, n in self.op_counts.items())
        weights = ", ".join(
            f"{dtype} {_format_size(size)}"
            for dtype, size in self.weight_bytes_by_dtype.items()
        )
        lines = [
            f"{self.path}: {len(self.ops)} ops ({counts or 'none'})",
            "inputs: " + ", ".join(str(t) for t in self.inputs),
            "outputs: " + ", ".join(str(t) for t in self.outputs),
            f"weights: {_format_size(self.weight_bytes)}"
            + (f" ({weights})" if weights else ""),
        ]
        rows = [("#", "op", "activation", "inputs", "outputs")]
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
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths)]
            lines.append("  ".join(cells + [row[4]]).rstrip())
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
    if isinstance(path, TFLiteExport):
        path = path.path
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No `.tflite` file at `path`. Received: path={path!r}"
        )
    # Read whole rather than memory-mapped: the reader hands out NumPy views
    # into the buffer, which would keep a map from closing.
    with open(path, "rb") as f:
        buffer = f.read()
    if len(buffer) < 8 or not schema.Model.ModelBufferHasIdentifier(
        buffer, 0
    ):
        raise ValueError(
            "The file at `path` is not a TFLite flatbuffer: expected the "
            f"file identifier {_FILE_IDENTIFIER!r} at bytes 4 to 8, found "
            f"{bytes(buffer[4:8])!r} ({len(buffer)} bytes in all). "
            f"Received: path={path!r}"
        )
    try:
        return _read_model(path, buffer)
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


def _tensor_dict(tensor):
    quantization = tensor.quantization
    if quantization is not None:
        quantization = {
            "granularity": quantization.granularity,
            "num_scales": quantization.num_scales,
            "axis": quantization.axis,
            "scales": list(quantization.scales),
            "zero_points": list(quantization.zero_points),
        }
    return {
        "index": tensor.index,
        "name": tensor.name,
        "dtype": tensor.dtype,
        "shape": list(tensor.shape),
        "constant_bytes": tensor.constant_bytes,
        "quantization": quantization,
    }
