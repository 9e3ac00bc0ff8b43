"""Per-op precision of a float `.tflite` file, applied by ai-edge-quantizer.

The TFLite converter quantizes a whole model to one mode (`keep_float`
aside); it cannot give one layer int16 activations and the next int4
weights. Google's ai-edge-quantizer (AEQ) can: it rewrites a float
`.tflite` file op by op from a recipe of `(regex on the op's output
tensor names, op type, config)` entries, later entries winning. Here a
recipe is built from a plain assignment `{weighted op: choice}`:

- each weighted op (one that reads a constant float kernel of rank >= 2:
  convolutions, fully connected layers) gets its choice;
- every other op (reshape, pooling, add, ...) follows the op that produces
  its first input, so that a float layer's reshape stays float and an
  int16 layer's pooling runs in int16, without a requantization between;
- the file's input and output stay float32, as in `to_tflite`'s `"int8"`.

AEQ inserts the QUANTIZE / DEQUANTIZE ops where two precisions meet, and
leaves in float an op that has no kernel for the asked precision; the
written file is read back (`tflite_precision`), never assumed.
"""

import contextlib
import io
import os
import re
import warnings

import numpy as np

from tfcompress.export.atomic_write import write_atomically
from tfcompress.export.tflite_export import TFLiteExport
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_file_path
from tfcompress.litert import tflite_precision
from tfcompress.quantization import op_layers

# The precisions an op can be given, each one LiteRT's CPU kernels run.
CHOICES = {
    "int8": "int8 weights and activations (static, integer kernels)",
    "int16_activations": "int8 weights, int16 activations (static, 16x8 kernels)",
    "int8_weights": "int8 weights dequantized to float (weight-only)",
    "int4_weights": "int4 weights dequantized to float (weight-only)",
    "float32": "float32 weights and activations (kept)",
}
DEFAULT_CHOICES = ("int8", "int16_activations", "int4_weights", "float32")

# Types of stored values that are indices or shapes, never kernels.
_FLOAT_DTYPES = ("float32", "float16")


def import_quantizer():
    """`ai_edge_quantizer.quantizer`, or an ImportError saying how to get it."""
    try:
        from ai_edge_quantizer import quantizer
    except ImportError as error:
        raise ImportError(
            "Per-op mixed precision uses Google's ai-edge-quantizer, which is "
            "not installed. Install it with: pip install "
            '"tfcompress[mixed-precision]" (ai-edge-quantizer 0.10 pins '
            "ai-edge-litert 2.3, the runtime tfcompress uses)."
        ) from error
    return quantizer


def weighted_ops(float_tflite, model=None):
    """The ops of a float file whose precision can be chosen, by name.

    Args:
        float_tflite: A float32 `.tflite` file (a path or `TFLiteExport`).
        model: The Keras model the file was exported from, to name the ops
            after their layers (`"conv_1"`); `None` names them after their
            first output tensor.

    Returns:
        A dict `{name: TFLiteOp}` in execution order (main graph).
    """
    inspection = inspect_tflite(float_tflite)
    layers = None
    if model is not None:
        layers = op_layers(model, inspection)
    named = {}
    for position, op in enumerate(inspection.ops):
        if op.subgraph != 0 or not _is_weighted(op):
            continue
        if layers is not None and layers[position]:
            # The outermost layer: what the user named (a block's conv).
            name = layers[position][-1] if len(layers[position]) == 1 else (
                " + ".join(layers[position])
            )
        else:
            name = op.outputs[0].name.split(";")[0]
        if name in named:
            name = f"{name} ({op.index})"
        named[name] = op
    return named


def _is_weighted(op):
    return any(
        tensor.is_constant
        and tensor.dtype in _FLOAT_DTYPES
        and len(tensor.shape) >= 2
        for tensor in op.inputs
    )


def _op_scope(op):
    """AEQ's scope of an op: its output names joined by ';', ';' after."""
    return "".join(f"{tensor.name};" for tensor in op.outputs)


def op_choices(inspection, assignment, named):
    """Each op's choice (main graph): weighted ops as assigned, others
    following the op that produces their first computed input."""
    by_index = {op.index: name for name, op in named.items()}
    producer = {}
    first = assignment[next(iter(named))] if named else "int8"
    choices = {}
    for op in inspection.ops:
        if op.subgraph != 0:
            continue
        if op.index in by_index:
            choice = assignment[by_index[op.index]]
        else:
            computed = [t for t in op.inputs if not t.is_constant]
            choice = first
            for tensor in computed:
                if tensor.index in producer:
                    choice = producer[tensor.index]
                    break
        choices[op.index] = choice
        for tensor in op.outputs:
            producer[tensor.index] = choice
    return choices


def _signature_input(float_path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=float_path)
    signatures = interpreter.get_signature_list()
    key = next(iter(signatures))
    inputs = signatures[key]["inputs"]
    if len(inputs) != 1:
        raise ValueError(
            "Per-op mixed precision supports files with one input. Received: "
            f"a file with inputs {inputs}"
        )
    return key, inputs[0]


def calibrate(float_tflite, x, num_examples=100):
    """Activation ranges of a float file, recorded on `x` by AEQ.

    Recorded once (min / max of every tensor on the first `num_examples`
    examples, one at a time, as `to_tflite`'s calibration reads them) and
    reused by every assignment: the ranges do not depend on the bits.
    """
    quantizer = import_quantizer()
    path = tflite_file_path(float_tflite, "float_tflite")
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError(
            "The calibration data is empty: pass at least one example. "
            f"Received: x.shape={x.shape}"
        )
    key, name = _signature_input(path)
    dataset = {key: [{name: x[i : i + 1]} for i in range(min(len(x), num_examples))]}
    runner = quantizer.Quantizer(path)
    runner.add_static_config(".*", "*", 8, 8)
    # AEQ draws a progress bar on stderr; the search prints its own lines.
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runner.calibrate(dataset)


def quantize_content(float_content, inspection, assignment, named, calibration):
    """The bytes of the float file quantized by `assignment`."""
    quantizer = import_quantizer()
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    runner = quantizer.Quantizer(bytearray(float_content))
    for index, choice in op_choices(inspection, assignment, named).items():
        op = inspection.ops[index]
        regex = "^" + re.escape(_op_scope(op)) + "$"
        if choice == "int8":
            runner.add_static_config(regex, "*", 8, 8)
        elif choice == "int16_activations":
            runner.add_static_config(regex, "*", 16, 8)
        elif choice in ("int8_weights", "int4_weights") and index in {
            o.index for o in named.values()
        }:
            bits = 8 if choice == "int8_weights" else 4
            runner.add_weight_only_config(regex, "*", bits)
        else:
            runner.update_quantization_recipe(
                regex, "*", None, algorithm_key=AlgorithmName.NO_QUANTIZE
            )
    # Last entries win: the file's input and output stay float32.
    for key in ("INPUT", "OUTPUT"):
        runner.update_quantization_recipe(
            ".*", key, None, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.quantize(
            calibration if runner.need_calibration else None,
            enable_progress_report=False,
        )
    return bytes(result.quantized_model)


def check_assignment(assignment, named):
    """`assignment` completed with `"int8"` and checked against the ops."""
    if not isinstance(assignment, dict):
        raise ValueError(
            "`assignment` must be a dict {op name: choice}. Received: "
            f"{type(assignment).__name__}"
        )
    unknown = sorted(set(assignment) - set(named))
    if unknown:
        raise ValueError(
            f"`assignment` names ops the file does not have: {unknown}. "
            f"Its weighted ops are: {list(named)}"
        )
    for name, choice in assignment.items():
        if choice not in CHOICES:
            raise ValueError(
                f"Unknown precision {choice!r} for op {name!r}. Choose from "
                f"{list(CHOICES)}"
            )
    return {name: assignment.get(name, "int8") for name in named}


def quantize_per_op(float_tflite, path, *, assignment, data, model=None):
    """Writes a float file with each weighted op in its own precision.

    Args:
        float_tflite: A float32 `.tflite` file (a path or `TFLiteExport`).
        path: Where to write the mixed-precision file (atomically).
        assignment: `{op name: choice}` with names from
            `weighted_ops(float_tflite, model)` and choices from
            `CHOICES` (`"int8"`, `"int16_activations"`, `"int8_weights"`,
            `"int4_weights"`, `"float32"`); ops left out get `"int8"`.
        data: Calibration inputs `x` (an array), or the result of
            `calibrate` to reuse.
        model: The Keras model behind the file, for layer names.

    Returns:
        A `TFLiteExport` (`quantization="mixed"`) whose `precision` is read
        back from the written file.
    """
    float_path = tflite_file_path(float_tflite, "float_tflite")
    named = weighted_ops(float_path, model)
    assignment = check_assignment(assignment, named)
    calibration = data if isinstance(data, dict) else calibrate(float_path, data)
    with open(float_path, "rb") as file:
        content = file.read()
    written = quantize_content(
        content, inspect_tflite(float_path), assignment, named, calibration
    )
    return write_export(path, written, assignment)


def write_export(path, content, assignment):
    """Writes `content` to `path` and reads it back as a `TFLiteExport`."""
    import gzip

    path = os.fspath(path)

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(content)

    write_atomically(path, write)
    kept = tuple(name for name, choice in assignment.items() if choice == "float32")
    return TFLiteExport(
        path=path,
        quantization="mixed",
        size_bytes=len(content),
        gzipped_size_bytes=len(gzip.compress(content, compresslevel=9)),
        keep_float=kept,
        precision=tflite_precision(path, quantization="mixed"),
    )
