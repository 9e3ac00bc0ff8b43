"""Export a Keras model to a `.tflite` (LiteRT) file, optionally quantized."""

import dataclasses
import gzip
import itertools
import os
import uuid
import warnings

import numpy as np
import tensorflow as tf

from tfcompress.argument_validation import integer_at_least

QUANTIZATION_MODES = ("none", "float16", "dynamic", "int8")


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What `to_tflite()` wrote.

    Attributes:
        path: Path of the `.tflite` file.
        quantization: The quantization mode used, one of `"none"`,
            `"float16"`, `"dynamic"`, `"int8"`.
        size_bytes: Size of the file in bytes.
        gzipped_size_bytes: Size of the file after gzip (level 9), a proxy for
            the download size of an app that ships the model compressed.
            Pruned (sparse) weights shrink here even when the raw file does
            not.
    """

    path: str
    quantization: str
    size_bytes: int
    gzipped_size_bytes: int

    def __str__(self):
        return (
            f"{self.path} ({self.quantization}): "
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
      float32: the file quantizes on entry and dequantizes on exit.

    The file is written atomically: the export goes to a temporary file in
    the same directory, which replaces `path` only once the conversion has
    succeeded. On failure, an existing file at `path` is left as it was.

    Args:
        model: A built Keras model (called on data, or built with an input
            shape).
        path: Path of the file to write; must end with `".tflite"` and its
            directory must exist. An existing file is replaced.
        quantization: One of `"none"`, `"float16"`, `"dynamic"`, `"int8"`.
            Defaults to `"none"`.
        representative_data: Calibration inputs, required for `"int8"` and
            rejected otherwise. One of: an array of shape
            `(N, *input_shape)` (a list or tuple of arrays, one per input, for
            a multi-input model); a `tf.data.Dataset` of batches of `x` or of
            `(x, y)`; or an iterable, or a callable returning one, that yields
            batches of `x` or `(x, y)`. A few hundred training examples are
            enough. Defaults to `None`.
        calibration_steps: Number of examples (not batches) to calibrate on,
            an integer >= 1. Defaults to `100`.
        select_tf_ops: Whether to allow TensorFlow ops that have no TFLite
            builtin kernel (the "Flex" ops). Such a file needs the Flex
            delegate at run time, which Android apps must bundle separately.
            Defaults to `False`: the conversion fails if the model needs one.

    Returns:
        A `TFLiteExport` with the path, the mode, the file size and its
        gzipped size.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    x_train = np.random.rand(500, 28, 28, 1).astype("float32")
    export = to_tflite(
        model,
        "model_int8.tflite",
        quantization="int8",
        representative_data=x_train,
    )
    print(export)  # model_int8.tflite (int8): 10.2 KiB, 8.9 KiB gzipped
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
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "int8 needs calibration data: pass representative_data=... "
            "(a few hundred training examples, e.g. x_train[:500]). "
            "Received: representative_data=None"
        )
    if quantization != "int8" and representative_data is not None:
        raise ValueError(
            "`representative_data` is only used for quantization='int8'; "
            f"with quantization={quantization!r} it would be ignored. "
            "Drop it, or use quantization='int8'. Received: "
            f"representative_data of type {type(representative_data).__name__}"
        )

    converter_kwargs = _converter_kwargs(quantization, select_tf_ops)
    if quantization == "int8":
        converter_kwargs["representative_dataset"] = _representative_dataset(
            model, representative_data, calibration_steps
        )

    # A unique sibling name (not mkstemp, whose 0600 mode would stick to the
    # final file), so that os.replace is an atomic rename on one filesystem.
    directory, basename = os.path.split(os.path.abspath(path))
    tmp_path = os.path.join(
        directory, f".{basename}.{uuid.uuid4().hex}.tmp.tflite"
    )
    try:
        _export(model, tmp_path, converter_kwargs, select_tf_ops)
        with open(tmp_path, "rb") as f:
            content = f.read()
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return TFLiteExport(
        path=path,
        quantization=quantization,
        size_bytes=len(content),
        gzipped_size_bytes=len(gzip.compress(content, compresslevel=9)),
    )


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
