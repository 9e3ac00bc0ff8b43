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

import os
import tempfile

import numpy as np
import tensorflow as tf

from tfcompress.argument_validation import integer_at_least
from tfcompress.litert.input_shape import check_input_shape
from tfcompress.litert.inspection import inspect_tflite
from tfcompress.litert.tensor_tracer import TensorTracer
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.quantization.layer_ops import op_layers
from tfcompress.quantization.quantization_error_report import (
    OpQuantizationError,
)
from tfcompress.quantization.quantization_error_report import (
    QuantizationErrorReport,
)

_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
_INTEGER_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}


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
        data=x_train[:200],
    )
    report = layer_quantization_error(model, "model_int8.tflite", x_test[:200])
    print(report.table(sort_by="added_error", top=5))
    worst = report.worst(1)[0].layers  # e.g. ('conv2d_3',)
    to_tflite(
        model,
        "model_mixed.tflite",
        quantization="int8",
        data=x_train[:200],
        keep_float=list(worst),
    )
    ```
    """
    integer_at_least("batch_size", batch_size, minimum=1)
    quantized_path = tflite_file_path(quantized_path, "quantized_path")
    inputs = _check_inputs(x)
    # A `TFLiteExport` is an `os.PathLike` too.
    if isinstance(reference, (str, bytes, os.PathLike)):
        float_path = tflite_file_path(reference, "reference")
        return _compare(
            float_path, quantized_path, inputs, batch_size, None, float_path
        )
    with tempfile.TemporaryDirectory() as scratch:
        float_path = os.path.join(scratch, "float.tflite")
        _export_float(reference, float_path)
        name = getattr(reference, "name", type(reference).__name__)
        return _compare(
            float_path,
            quantized_path,
            inputs,
            batch_size,
            reference,
            f"model {name!r}",
        )


def _export_float(model, path):
    """Writes the float32 file of `model`, as `to_tflite(model, path)` does.

    The same converter settings (float32, builtin ops only) through Keras's
    exporter; `tfcompress.export` builds on this package, so `to_tflite`
    itself is not called from here.
    """
    model.export(
        path,
        format="litert",
        verbose=False,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
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
    float_tracer = TensorTracer(model_path=float_path)
    quantized_tracer = TensorTracer(model_path=quantized_path)
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
        check_input_shape(
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
            op_layers(model, float_inspection),
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
