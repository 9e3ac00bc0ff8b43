"""The values of a `.tflite` file's weights, read back from its buffers.

`inspect_tflite` says how many bytes each constant takes; this module reads
the bytes themselves, so that what the converter stored can be checked
(the zeros of a pruned kernel after int8 rounding, the shared values of a
clustered one) and measured (`value_compression`).
"""

import dataclasses

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tfcompress.litert.inspection import inspect_tflite_content
from tfcompress.litert.tflite_file_path import tflite_file_path

# The weight (filter) operand of each op that has one: `(op, input index)`.
KERNEL_INPUTS = {
    "CONV_2D": 1,
    "DEPTHWISE_CONV_2D": 1,
    "FULLY_CONNECTED": 1,
    "TRANSPOSE_CONV": 1,
    "CONV_3D": 1,
    "BATCH_MATMUL": 1,
}

_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT64: np.int64,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.BOOL: np.bool_,
}


@dataclasses.dataclass(frozen=True, eq=False)
class TFLiteWeight:
    """One constant tensor of a `.tflite` file and its stored values.

    Attributes:
        name: The tensor's name.
        dtype: The element type as stored (`"int8"`, `"float32"`, ...).
        values: The stored values, a NumPy array of the tensor's shape
            (the integers of a quantized tensor, not dequantized; packed
            int4 unpacked to int8 in [-8, 7]); `None` for a type NumPy
            cannot hold.
        raw: The stored bytes.
        quantization: The tensor's `TensorQuantization`, or `None`.
        kernel_of: The op this tensor is the weight (filter) operand of
            (`"CONV_2D"`, `"FULLY_CONNECTED"`, ...), directly or through a
            DEQUANTIZE op (weight-only quantization), or `None` for biases
            and other constants.
    """

    name: str
    dtype: str
    values: object
    raw: bytes
    quantization: object
    kernel_of: str | None

    @property
    def nbytes(self):
        """Bytes the tensor takes in the file."""
        return len(self.raw)

    def dequantized(self):
        """The values as float32: `scale * (q - zero_point)` if quantized."""
        values = np.asarray(self.values, dtype=np.float32)
        q = self.quantization
        if q is None:
            return values
        scales = np.asarray(q.scales, dtype=np.float32)
        zeros = np.asarray(q.zero_points, dtype=np.float32)
        if q.axis is not None:
            shape = [1] * values.ndim
            shape[q.axis] = -1
            scales, zeros = scales.reshape(shape), zeros.reshape(shape)
        return (values - zeros) * scales


def tflite_weights(path):
    """Reads every constant tensor of a `.tflite` file, values and all.

    Args:
        path: Path to a `.tflite` file, or a `TFLiteExport`.

    Returns:
        A tuple of `TFLiteWeight`, one per stored buffer (tensors that
        share a buffer count once), in tensor order. `kernels(...)` keeps
        those that are an op's weight operand.

    Example:

    ```python
    for weight in kernels(tflite_weights("model_int8.tflite")):
        print(weight.name, weight.dtype, np.mean(weight.values == 0))
    ```
    """
    path = tflite_file_path(path)
    with open(path, "rb") as f:
        content = f.read()
    inspection = inspect_tflite_content(content, path)
    # A weight-only quantized kernel reaches its op through a DEQUANTIZE.
    dequantized_from = {
        (op.subgraph, op.outputs[0].index): op.inputs[0].index
        for op in inspection.ops
        if op.name == "DEQUANTIZE" and op.inputs and op.outputs
    }
    kernel_of = {}
    for op in inspection.ops:
        index = KERNEL_INPUTS.get(op.name)
        if index is not None and len(op.inputs) > index:
            tensor = op.inputs[index].index
            tensor = dequantized_from.get((op.subgraph, tensor), tensor)
            kernel_of[(op.subgraph, tensor)] = op.name
    model = schema.Model.GetRootAs(content, 0)
    seen = set()
    weights = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for i in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(i)
            buffer_index = tensor.Buffer()
            if buffer_index <= 0 or buffer_index in seen:
                continue
            raw = _buffer_bytes(content, model.Buffers(buffer_index))
            if not raw:
                continue
            seen.add(buffer_index)
            shape = (
                () if tensor.ShapeIsNone()
                else tuple(int(d) for d in tensor.ShapeAsNumpy())
            )
            numpy_type = _NUMPY_TYPES.get(tensor.Type())
            values = None
            if numpy_type is not None:
                values = np.frombuffer(raw, dtype=numpy_type).reshape(shape)
            elif tensor.Type() == schema.TensorType.INT4:
                values = _unpacked_int4(raw, shape)
            described = _described(inspection, s, i)
            weights.append(
                TFLiteWeight(
                    name=described.name,
                    dtype=described.dtype,
                    values=values,
                    raw=raw,
                    quantization=described.quantization,
                    kernel_of=kernel_of.get((s, i)),
                )
            )
    return tuple(weights)


def kernels(weights):
    """The weights that are an op's weight operand (not biases)."""
    return tuple(w for w in weights if w.kernel_of is not None)


def _unpacked_int4(raw, shape):
    """Packed int4 values (two per byte, low nibble first) as int8."""
    packed = np.frombuffer(raw, dtype=np.uint8)
    nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).ravel()
    size = int(np.prod(shape, dtype=np.int64))
    if nibbles.size < size:
        return None  # Not the packing LiteRT uses: leave the bytes alone.
    # Two's complement of 4 bits: 8..15 are -8..-1.
    values = (nibbles[:size].astype(np.int8) ^ 8) - 8
    return values.reshape(shape)


def _described(inspection, subgraph, index):
    for op in inspection.ops:
        if op.subgraph != subgraph:
            continue
        for tensor in op.inputs + op.outputs:
            if tensor.index == index:
                return tensor
    # A constant no op reads (rare): describe it from the inputs list.
    for tensor in inspection.constants:
        if tensor.index == index:
            return tensor
    raise ValueError(f"Tensor {index} of subgraph {subgraph} is not read.")


def _buffer_bytes(content, buffer):
    # Files over 2 GB keep the data after the flatbuffer, at `Offset()`.
    if buffer.Offset() > 1:
        start = int(buffer.Offset())
        return bytes(content[start:start + int(buffer.Size())])
    data = buffer.DataAsNumpy()
    if isinstance(data, int):
        return b""
    return data.tobytes()
