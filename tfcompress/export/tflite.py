"""Export a Keras model to a `.tflite` (LiteRT) file, optionally quantized."""

import dataclasses
import gzip
import itertools
import numbers
import os
import tempfile
import uuid
import warnings

import numpy as np
import tensorflow as tf

from tfcompress.argument_validation import integer_at_least
from tfcompress.quantization import is_quantization_aware
from tfcompress.quantization import simulated_bits
from tfcompress.quantization import with_bit_widths
from tfcompress.export import calibration as calibration_lib
from tfcompress.export import layer_ops

QUANTIZATION_MODES = ("none", "float16", "dynamic", "int8", "int16x8")
# Modes calibrated on representative data: weights and activations integer.
INTEGER_MODES = ("int8", "int16x8")
# The input / output types each mode accepts, besides "float32".
_IO_TYPES = {"int8": ("float32", "int8"), "int16x8": ("float32", "int16")}
DEFAULT_PERCENTILE = 99.99


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What `to_tflite()` wrote.

    Attributes:
        path: Path of the `.tflite` file.
        quantization: The quantization mode used, one of `"none"`,
            `"float16"`, `"dynamic"`, `"int8"`, `"int16x8"`.
        size_bytes: Size of the file in bytes.
        gzipped_size_bytes: Size of the file after gzip (level 9), a proxy for
            the download size of an app that ships the model compressed.
            Pruned (sparse) weights shrink here even when the raw file does
            not.
        calibration: How activation ranges were chosen (`"minmax"`,
            `"percentile"`, `"mse"`) for `"int8"` and `"int16x8"`; `None`
            for the other modes.
        keep_float: Names of the layers left in float32 (`keep_float`).
    """

    path: str
    quantization: str
    size_bytes: int
    gzipped_size_bytes: int
    calibration: str | None = None
    keep_float: tuple = ()

    def __str__(self):
        details = [self.quantization]
        if self.calibration not in (None, "minmax"):
            details.append(f"{self.calibration} calibration")
        if self.keep_float:
            details.append(f"float32: {', '.join(self.keep_float)}")
        return (
            f"{self.path} ({'; '.join(details)}): "
            f"{_format_size(self.size_bytes)}, "
            f"{_format_size(self.gzipped_size_bytes)} gzipped"
        )


def to_tflite(
    model,
    path,
    quantization="none",
    representative_data=None,
    calibration_steps=100,
    select_tf_ops=False,
    calibration=None,
    percentile=None,
    input_type=None,
    output_type=None,
    keep_float=None,
):
    """Exports a built Keras model to a `.tflite` file for LiteRT.

    Uses Keras's own LiteRT exporter (`model.export(format="litert")`) and
    sets the TFLite converter options for the chosen quantization mode:

    - `"none"`: float32 weights and activations.
    - `"float16"`: weights stored as float16 (about half the file size).
      CPU kernels dequantize them to float32, so this saves storage, not
      compute (GPU delegates can compute in float16).
    - `"dynamic"`: dynamic range quantization. Weights are stored as int8
      (about a quarter of the size); activations are quantized on the fly.
      Needs no calibration data. The converter leaves small weight tensors
      (under 1024 elements) in float32.
    - `"int8"`: full integer quantization of weights and activations,
      calibrated on `representative_data`. The model's input and output stay
      float32 unless `input_type` / `output_type` say otherwise: the file
      quantizes on entry and dequantizes on exit.
    - `"int16x8"`: int8 weights with 16-bit activations, calibrated like
      `"int8"`. Activation rounding steps are 256 times finer, for a file
      about as small as int8's (biases are int64); LiteRT's 16x8 kernels
      are usually slower than its int8 ones, and not every op has one (the
      conversion then fails). Use it when int8 activations cost too much
      accuracy (super-resolution, audio, regression outputs).

    A quantization-aware model (from `tfcompress.quantization.quantize_model`)
    exports with `"int8"` and no `representative_data`: the converter reads
    each tensor's range from the model's fake-quant ops, so the file
    computes what the trained model computes. One simulating fewer than 8
    bits is exported through its 8-bit twin (`with_bit_widths`).

    `calibration` chooses each activation tensor's quantized range from the
    calibration data. `"minmax"` (the converter's own calibration) takes the
    smallest and largest value seen, so one outlier coarsens the grid for
    all other values. `"percentile"` keeps the central `percentile` % of
    the values and clips the rest; `"mse"` picks the clipping range that
    minimizes the expected squared error of quantizing the values seen
    (rounding inside the range, clipping outside). Both help when
    activations are heavy-tailed; both clip, which can hurt a model whose
    rare large activations matter. For these two, the converter calibrates
    (records its ranges) without quantizing, tfcompress runs that float
    file in LiteRT over the same examples, writes its own ranges into it
    and quantizes it with the converter's quantizer.

    `keep_float` leaves the ops of the named layers in float32, with
    quantize / dequantize ops around them: mixed precision, for the few
    layers that int8 hurts most (see `layer_quantization_error`). A layer
    that the converter fused into another op (a `BatchNormalization` folded
    into the convolution before it, a `ReLU` fused into it) shares that
    op: keeping either keeps the fused op. The file's input and output stay
    float32.

    The file is written atomically: the export goes to a temporary file in
    the same directory, which replaces `path` only once the conversion has
    succeeded. On failure, an existing file at `path` is left as it was.

    Args:
        model: A built Keras model (called on data, or built with an input
            shape).
        path: Path of the file to write; must end with `".tflite"` and its
            directory must exist. An existing file is replaced.
        quantization: One of `"none"`, `"float16"`, `"dynamic"`, `"int8"`,
            `"int16x8"`. Defaults to `"none"`.
        representative_data: Calibration inputs, required for `"int8"` and
            `"int16x8"` and rejected otherwise. One of: an array of shape
            `(N, *input_shape)` (a list or tuple of arrays, one per input,
            for a multi-input model); a `tf.data.Dataset` of batches of `x`
            or of `(x, y)`; or an iterable, or a callable returning one, that
            yields batches of `x` or `(x, y)`. A few hundred training
            examples are enough. Defaults to `None`.
        calibration_steps: Number of examples (not batches) to calibrate on,
            an integer >= 1. With `calibration="percentile"` or `"mse"`, or
            `keep_float`, these examples are held in memory during the
            export. Defaults to `100`.
        select_tf_ops: Whether to allow TensorFlow ops that have no TFLite
            builtin kernel (the "Flex" ops). Such a file needs the Flex
            delegate at run time, which Android apps must bundle separately.
            Defaults to `False`: the conversion fails if the model needs one.
        calibration: How to choose activation ranges, for `"int8"` and
            `"int16x8"` only: `"minmax"`, `"percentile"` or `"mse"`.
            Defaults to `None`, which is `"minmax"`.
        percentile: For `calibration="percentile"` only: the percentage of
            each activation tensor's calibration values to keep inside its
            range, a number in `(0, 100]`; `(100 - percentile) / 2` % are
            clipped on each side. Defaults to `None`, which is `99.99`.
        input_type: The type of the file's input tensor: `"float32"`, or
            `"int8"` for `"int8"` files and `"int16"` for `"int16x8"` ones,
            for integer-only runtimes (microcontrollers, NPUs); the caller
            then quantizes inputs with the tensor's scale and zero point
            (`LiteRTModel` does). Defaults to `None`, which is `"float32"`.
        output_type: The type of the file's output tensor, as for
            `input_type`. Defaults to `None`, which is `"float32"`.
        keep_float: Names of layers whose ops stay in float32, for `"int8"`
            only; the input and output types must stay `"float32"`.
            Defaults to `None`: every op is quantized.

    Returns:
        A `TFLiteExport` with the path, the mode, the calibration, the
        layers kept in float32, the file size and its gzipped size.

    Raises:
        ValueError: If an argument is invalid or does not apply to the
            quantization mode, or if `representative_data` is empty or does
            not match the model's input shape. Nothing is written.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="logits"),
    ])
    x_train = np.random.rand(500, 28, 28, 1).astype("float32")
    export = to_tflite(
        model,
        "model_int8.tflite",
        quantization="int8",
        representative_data=x_train,
    )
    print(export)  # model_int8.tflite (int8): 10.2 KiB, 8.9 KiB gzipped

    # Clip activation outliers, and keep the last layer in float32.
    export = to_tflite(
        model,
        "model_mixed.tflite",
        quantization="int8",
        representative_data=x_train,
        calibration="mse",
        keep_float=["logits"],
    )
    print(export)
    # model_mixed.tflite (int8; mse calibration; float32: logits): ...
    ```
    """
    path = os.fspath(path)
    _check_path(path)
    if quantization not in QUANTIZATION_MODES:
        raise ValueError(
            "Expected `quantization` to be one of "
            f"{', '.join(repr(m) for m in QUANTIZATION_MODES)}. "
            f"Received: quantization={quantization!r}"
        )
    calibration = _check_calibration(calibration, quantization)
    percentile = _check_percentile(percentile, calibration)
    input_type = _check_io_type("input_type", input_type, quantization)
    output_type = _check_io_type("output_type", output_type, quantization)
    integer_at_least("calibration_steps", calibration_steps, minimum=1)
    if not isinstance(select_tf_ops, bool):
        raise ValueError(
            "Expected `select_tf_ops` to be True or False. "
            f"Received: select_tf_ops={select_tf_ops!r}"
        )
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built yet, so its input shape is unknown. "
            "Call it on a batch of data (`model(x)`), or call "
            "`model.build(input_shape)`, or start it with `keras.Input`, "
            f"before exporting. Received: model={_model_name(model)} "
            "(not built)"
        )
    keep_float = _check_keep_float(
        keep_float, model, quantization, input_type, output_type
    )
    if is_quantization_aware(model):
        return _export_quantization_aware(
            model,
            path,
            quantization,
            representative_data,
            calibration,
            keep_float,
            input_type,
            output_type,
            select_tf_ops,
        )
    if quantization in INTEGER_MODES and representative_data is None:
        raise ValueError(
            f"{quantization} needs calibration data: pass "
            "representative_data=... (a few hundred training examples, e.g. "
            "x_train[:500]). Received: representative_data=None"
        )
    if quantization not in INTEGER_MODES and representative_data is not None:
        raise ValueError(
            "`representative_data` is only used for quantization='int8' or "
            f"'int16x8'; with quantization={quantization!r} it would be "
            "ignored. Drop it, or use quantization='int8'. Received: "
            f"representative_data of type {type(representative_data).__name__}"
        )

    converter_kwargs = _converter_kwargs(quantization, select_tf_ops)
    dataset = None
    if quantization in INTEGER_MODES:
        dataset = _representative_dataset(
            model, representative_data, calibration_steps
        )
    # The converter calibrates and quantizes in one step unless tfcompress
    # chooses the ranges or denylists ops: then it only calibrates.
    tfcompress_quantizes = calibration in ("percentile", "mse") or bool(
        keep_float
    )
    if quantization in INTEGER_MODES and not tfcompress_quantizes:
        converter_kwargs["representative_dataset"] = dataset
        if input_type != "float32":
            converter_kwargs["inference_input_type"] = tf.as_dtype(input_type)
        if output_type != "float32":
            converter_kwargs["inference_output_type"] = tf.as_dtype(
                output_type
            )

    def write(tmp_path):
        if tfcompress_quantizes:
            content = _calibrate_and_quantize(
                model,
                dataset,
                converter_kwargs,
                quantization=quantization,
                calibration=calibration,
                percentile=percentile,
                input_type=input_type,
                output_type=output_type,
                keep_float=keep_float,
                select_tf_ops=select_tf_ops,
            )
            with open(tmp_path, "wb") as f:
                f.write(content)
        else:
            _export(model, tmp_path, converter_kwargs, select_tf_ops)

    return _write_atomically(
        path,
        write,
        quantization=quantization,
        calibration=calibration,
        keep_float=tuple(keep_float),
    )


def _write_atomically(path, write, **export_fields):
    """Runs `write(tmp_path)`, then renames the file to `path`.

    The temporary file is a unique sibling (not mkstemp, whose 0600 mode
    would stick to the final file), so that `os.replace` is an atomic
    rename on one filesystem; on failure it is removed and `path` is left
    as it was.
    """
    directory, basename = os.path.split(os.path.abspath(path))
    tmp_path = os.path.join(
        directory, f".{basename}.{uuid.uuid4().hex}.tmp.tflite"
    )
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as f:
            content = f.read()
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return TFLiteExport(
        path=path,
        size_bytes=len(content),
        gzipped_size_bytes=len(gzip.compress(content, compresslevel=9)),
        **export_fields,
    )


def _export_quantization_aware(
    model,
    path,
    quantization,
    representative_data,
    calibration,
    keep_float,
    input_type,
    output_type,
    select_tf_ops,
):
    """Exports a `quantize_model` model: its fake-quant ops are the ranges.

    The converter's QAT path: optimizations on, no representative data; it
    reads each fake-quant op's range as the tensor's int8 scale. A model
    simulating fewer than 8 bits goes through its 8-bit twin (TFLite's
    kernels are int8).
    """
    name = _model_name(model)
    if quantization != "int8":
        raise ValueError(
            f"The model {name!r} is quantization-aware (made by "
            "tfcompress.quantization.quantize_model); it exports with "
            "quantization='int8', its ranges taken from its fake-quant ops. "
            "For a float file, export the float model it was made from. "
            f"Received: quantization={quantization!r}"
        )
    if representative_data is not None:
        raise ValueError(
            f"The model {name!r} is quantization-aware: its int8 ranges were "
            "learned in training and are read from its fake-quant ops, so "
            "`representative_data` would be ignored. Drop it. Received: "
            f"representative_data of type {type(representative_data).__name__}"
        )
    if calibration not in (None, "minmax") or keep_float:
        raise ValueError(
            f"The model {name!r} is quantization-aware: `calibration` and "
            "`keep_float` apply to post-training quantization of a float "
            f"model. Received: calibration={calibration!r}, "
            f"keep_float={list(keep_float)!r}"
        )
    weight_bits, activation_bits = simulated_bits(model)
    if weight_bits | activation_bits != {8}:
        model = with_bit_widths(model, weight_bits=8, activation_bits=8)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter_kwargs = {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "target_spec": {"supported_ops": ops},
    }
    if input_type != "float32":
        converter_kwargs["inference_input_type"] = tf.as_dtype(input_type)
    if output_type != "float32":
        converter_kwargs["inference_output_type"] = tf.as_dtype(output_type)
    return _write_atomically(
        path,
        lambda tmp_path: _export(
            model, tmp_path, converter_kwargs, select_tf_ops
        ),
        quantization=quantization,
        calibration=None,
        keep_float=(),
    )


def _calibrate_and_quantize(
    model,
    dataset,
    converter_kwargs,
    quantization,
    calibration,
    percentile,
    input_type,
    output_type,
    keep_float,
    select_tf_ops,
):
    """Calibrates with the converter, then quantizes with tfcompress's
    ranges and denylist (see `tfcompress.export.calibration`)."""
    # The calibration examples are read once and kept: the converter and
    # the histograms must see the same ones, and an iterator only yields
    # them once.
    examples = list(dataset())
    kwargs = dict(converter_kwargs)
    kwargs["representative_dataset"] = lambda: iter(examples)
    # A private converter flag, set through Keras's exporter (which passes
    # any converter attribute on), as TensorFlow's QuantizationDebugger
    # sets it: the converter calibrates and returns the float model with
    # the recorded ranges, unquantized.
    kwargs["_experimental_calibrate_only"] = True
    with tempfile.TemporaryDirectory() as scratch:
        calibrated_path = os.path.join(scratch, "calibrated.tflite")
        _export(model, calibrated_path, kwargs, select_tf_ops)
        with open(calibrated_path, "rb") as f:
            calibrated = f.read()
    if calibration in ("percentile", "mse"):
        ranges = calibration_lib.activation_ranges(
            calibrated,
            examples,
            method=calibration,
            percentile=percentile,
            quantization=quantization,
        )
        calibrated = calibration_lib.write_ranges(calibrated, ranges)
    denylisted_nodes = []
    if keep_float:
        denylisted_nodes = _keep_float_nodes(model, calibrated, keep_float)
    return calibration_lib.quantize_calibrated(
        calibrated,
        quantization,
        input_type,
        output_type,
        denylisted_nodes=denylisted_nodes,
        allow_float=select_tf_ops,
    )


def _keep_float_nodes(model, calibrated, keep_float):
    """The output tensor names of the ops of the `keep_float` layers."""
    # Imported here: `inspection` imports this module for `TFLiteExport`.
    from tfcompress.export.inspection import _read_model

    inspection = _read_model("<calibrated model>", calibrated)
    owners = layer_ops.op_layers(model, inspection)
    nodes = []
    for name in keep_float:
        ops = [
            op
            for op, layers in zip(inspection.ops, owners)
            if name in layers and op.subgraph == 0
        ]
        if not ops:
            with_ops = sorted({layer for layers in owners for layer in layers})
            raise ValueError(
                f"Layer {name!r} in `keep_float` has no op of its own in the "
                "converted file: the converter folded it into a neighbouring "
                "op (a BatchNormalization into the convolution before it) or "
                "removed it (Dropout, Flatten of a flat tensor). Name the "
                "layer it was folded into instead. Layers with ops: "
                f"{', '.join(with_ops)}. Received: keep_float={keep_float!r}"
            )
        nodes.extend(op.outputs[0].name for op in ops if op.outputs)
    return nodes


def _check_calibration(calibration, quantization):
    if calibration is None:
        return "minmax" if quantization in INTEGER_MODES else None
    if calibration not in calibration_lib.CALIBRATION_METHODS:
        raise ValueError(
            "Expected `calibration` to be one of "
            f"{', '.join(repr(m) for m in calibration_lib.CALIBRATION_METHODS)}"
            f" (or None). Received: calibration={calibration!r}"
        )
    if quantization not in INTEGER_MODES:
        raise ValueError(
            "`calibration` chooses activation ranges, so it only applies to "
            "quantization='int8' or 'int16x8'; "
            f"quantization={quantization!r} has no calibrated activations. "
            f"Received: calibration={calibration!r}"
        )
    return calibration


def _check_percentile(percentile, calibration):
    if percentile is None:
        return DEFAULT_PERCENTILE if calibration == "percentile" else None
    if calibration != "percentile":
        raise ValueError(
            "`percentile` is only used with calibration='percentile'. "
            f"Received: percentile={percentile!r} with "
            f"calibration={calibration!r}"
        )
    if (
        isinstance(percentile, bool)
        or not isinstance(percentile, numbers.Real)
        or not 0 < percentile <= 100
    ):
        raise ValueError(
            "Expected `percentile` to be a number in (0, 100], the "
            "percentage of calibration values to keep in range (e.g. 99.99). "
            f"Received: percentile={percentile!r}"
        )
    return float(percentile)


def _check_io_type(name, value, quantization):
    if value is None:
        return "float32"
    accepted = _IO_TYPES.get(quantization, ("float32",))
    if value not in accepted:
        if quantization in INTEGER_MODES:
            hint = (
                f"quantization={quantization!r} accepts "
                f"{' or '.join(repr(t) for t in accepted)}"
            )
        else:
            hint = (
                f"quantization={quantization!r} has float32 inputs and "
                "outputs only ('int8' needs quantization='int8', 'int16' "
                "needs quantization='int16x8')"
            )
        raise ValueError(
            f"Expected `{name}` to be a type the quantization mode supports: "
            f"{hint}. Received: {name}={value!r}"
        )
    return value


def _check_keep_float(keep_float, model, quantization, input_type, output_type):
    if keep_float is None:
        return ()
    if isinstance(keep_float, str) or not (
        isinstance(keep_float, (list, tuple))
        and keep_float
        and all(isinstance(name, str) for name in keep_float)
    ):
        raise ValueError(
            "Expected `keep_float` to be a non-empty list of layer names. "
            f"Received: keep_float={keep_float!r}"
        )
    if quantization != "int8":
        reason = (
            "The converter's int16x8 quantizer cannot leave chosen ops in "
            "float32 (and its MLIR quantizer, which can, writes int16 files "
            "that LiteRT rejects). "
            if quantization == "int16x8"
            else ""
        )
        raise ValueError(
            "`keep_float` leaves layers in float32 inside an integer model, "
            f"so it needs quantization='int8'. {reason}Received: "
            f"keep_float={keep_float!r} with quantization={quantization!r}"
        )
    if input_type != "float32" or output_type != "float32":
        raise ValueError(
            "With `keep_float`, the file's input and output stay float32. "
            f"Received: input_type={input_type!r}, "
            f"output_type={output_type!r}"
        )
    known = layer_ops.model_layer_names(model)
    unknown = [name for name in keep_float if name not in known]
    if unknown:
        raise ValueError(
            f"`keep_float` names layers that are not in model "
            f"{_model_name(model)!r}: {', '.join(repr(n) for n in unknown)}. "
            f"Layers: {', '.join(known)}. Received: keep_float={keep_float!r}"
        )
    return tuple(dict.fromkeys(keep_float))


def _export(model, path, converter_kwargs, select_tf_ops):
    """Runs Keras's LiteRT exporter, with a hint when Flex ops are needed."""
    with warnings.catch_warnings():
        # For multi-input models the calibrator builds a `tf.lite.Interpreter`
        # internally, which warns that the class is deprecated: nothing the
        # user can act on.
        warnings.filterwarnings(
            "ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated"
        )
        try:
            model.export(
                path, format="litert", verbose=False, **converter_kwargs
            )
        except Exception as error:
            message = str(error)
            needs_flex = (
                "ERROR_NEEDS_FLEX_OPS" in message or "TF Select ops" in message
            )
            if needs_flex and not select_tf_ops:
                raise RuntimeError(
                    "The model uses TensorFlow ops that have no TFLite builtin "
                    "kernel (see the converter error below). Replace them, or "
                    "pass select_tf_ops=True to allow them (the file then "
                    "needs the Flex delegate at run time). "
                    f"Converter error: {error}"
                ) from error
            raise


def _converter_kwargs(quantization, select_tf_ops):
    """Returns the `tf.lite.TFLiteConverter` settings for a mode."""
    if quantization == "int8":
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif quantization == "int16x8":
        ops_set = tf.lite.OpsSet
        ops = [
            ops_set.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    else:
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # Keras enables SELECT_TF_OPS (Flex) by default, which makes a file that
    # plain LiteRT builds (Android without the Flex delegate, microcontrollers)
    # cannot run. Builtins only unless the user opts in.
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    target_spec = {"supported_ops": ops}
    kwargs = {}
    if quantization != "none":
        kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        target_spec["supported_types"] = [tf.float16]
    kwargs["target_spec"] = target_spec
    return kwargs


def _check_path(path):
    if not path.endswith(".tflite"):
        raise ValueError(
            "Expected `path` to end with '.tflite'. "
            f"Received: path={path!r}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(
            f"The directory of `path` does not exist: {directory!r}. Create "
            f"it first (os.makedirs). Received: path={path!r}"
        )


def _model_inputs(model):
    """Returns the model's symbolic inputs, or `None` if it has none."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _representative_dataset(model, data, calibration_steps):
    """Normalizes `representative_data` for the TFLite converter.

    Returns a zero-argument callable that yields one example at a time, as a
    list with one `(1, *input_shape)` array per input (a dict keyed by input
    name for multi-input models: the converter's input order is not the
    model's), stopping after `calibration_steps` examples. The first batch is
    read and checked here, before any conversion starts.
    """
    inputs = _model_inputs(model)
    if inputs is None:
        names, dtypes, shapes = None, ["float32"], None
    else:
        names = [t.name for t in inputs]
        dtypes = [t.dtype for t in inputs]
        shapes = [tuple(t.shape[1:]) for t in inputs]
    num_inputs = len(dtypes)

    batches = _batches(data, num_inputs)
    try:
        first = next(batches)
    except StopIteration:
        raise ValueError(
            "`representative_data` is empty: it yielded no examples. Pass a "
            "few hundred training examples. Received: representative_data of "
            f"type {type(data).__name__}"
        ) from None
    first = _to_arrays(first, num_inputs, shapes, names)
    if len(first[0]) == 0:
        raise ValueError(
            "`representative_data` is empty: its first batch has 0 examples. "
            "Pass a few hundred training examples. Received: "
            f"representative_data with shape {first[0].shape}"
        )

    def generator():
        count = 0
        for batch in itertools.chain([first], batches):
            if batch is not first:
                batch = _to_arrays(batch, num_inputs, shapes, names)
            for i in range(len(batch[0])):
                example = [
                    np.asarray(x[i : i + 1], dtype=dtype)
                    for x, dtype in zip(batch, dtypes)
                ]
                if names is not None and num_inputs > 1:
                    yield dict(zip(names, example))
                else:
                    yield example
                count += 1
                if count >= calibration_steps:
                    return

    return generator


def _batches(data, num_inputs):
    """Returns an iterator over the batches of `representative_data`."""
    if isinstance(data, tf.data.Dataset):
        return iter(data.as_numpy_iterator())
    if isinstance(data, np.ndarray) or tf.is_tensor(data):
        return iter([[data]])
    if isinstance(data, (list, tuple)) and all(
        isinstance(x, np.ndarray) or tf.is_tensor(x) for x in data
    ):
        # One array per model input.
        if len(data) != num_inputs:
            raise ValueError(
                "A list or tuple of arrays as `representative_data` is read "
                f"as one array per model input, and the model has "
                f"{num_inputs} input(s). Received: {len(data)} arrays of "
                f"shapes {[tuple(np.shape(x)) for x in data]}. For a "
                "single-input model, pass one array (not `(x, y)`); to pass "
                "batches, pass a generator."
            )
        return iter([list(data)])
    if callable(data):
        data = data()
    try:
        return iter(data)
    except TypeError:
        raise ValueError(
            "Expected `representative_data` to be an array, a list of arrays "
            "(one per input), a `tf.data.Dataset`, or an iterable (or a "
            "callable returning one) of batches. Received: "
            f"representative_data of type {type(data).__name__}"
        ) from None


def _to_arrays(batch, num_inputs, shapes, names):
    """Turns one batch (`x` or `(x, y)`) into a list of input arrays."""
    if isinstance(batch, (tuple, list)):
        if num_inputs == 1 or isinstance(batch[0], (tuple, list, dict)):
            batch = batch[0]  # (x, y), (x, y, w), or [x].
    if isinstance(batch, dict) and names is not None:
        missing = [name for name in names if name not in batch]
        if missing:
            raise ValueError(
                "`representative_data` yielded a dict without the model "
                f"input(s) {missing}. Expected keys {names}. Received keys: "
                f"{list(batch)}"
            )
        batch = [batch[name] for name in names]
    if not isinstance(batch, (tuple, list)):
        batch = [batch]
    arrays = [np.asarray(x) for x in batch]
    if len(arrays) != num_inputs:
        raise ValueError(
            f"The model has {num_inputs} inputs, so each batch of "
            f"`representative_data` must hold {num_inputs} arrays (or be an "
            f"`(x, y)` pair with such an `x`). Received: {len(arrays)} "
            f"array(s) of shapes {[a.shape for a in arrays]}"
        )
    if shapes is not None:
        if all(
            _shape_matches(a.shape, shape) for a, shape in zip(arrays, shapes)
        ):
            # Single examples (e.g. an unbatched dataset): add a batch axis.
            arrays = [a[None] for a in arrays]
        for i, (array, shape) in enumerate(zip(arrays, shapes)):
            _check_example_shape(array, shape, i, num_inputs)
    if any(a.ndim == 0 for a in arrays) or len({len(a) for a in arrays}) > 1:
        raise ValueError(
            "Each batch of `representative_data` must hold arrays with a "
            "batch axis and the same number of examples. Received shapes: "
            f"{[a.shape for a in arrays]}"
        )
    return arrays


def _shape_matches(received, expected):
    """Whether `received` matches `expected`, where `None` matches any."""
    return len(received) == len(expected) and all(
        e is None or e == r for e, r in zip(expected, received)
    )


def _check_example_shape(array, shape, index, num_inputs):
    received = array.shape[1:]
    if not _shape_matches(received, shape):
        where = f"model input {index}" if num_inputs > 1 else "the model input"
        raise ValueError(
            "The examples in `representative_data` do not match the shape of "
            f"{where}: expected per-example shape {shape} (batches of shape "
            f"{(None,) + tuple(shape)}). Received: a batch of shape "
            f"{array.shape}, i.e. per-example shape {received}. Pass "
            "training inputs as the model sees them."
        )


def _model_name(model):
    return getattr(model, "name", type(model).__name__)


def _format_size(num_bytes):
    if num_bytes < 1024:
        return f"{num_bytes} B"
    if num_bytes < 1024**2:
        return f"{num_bytes / 1024:.1f} KiB"
    return f"{num_bytes / 1024**2:.2f} MiB"
