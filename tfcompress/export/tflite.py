"""Export a Keras model to a `.tflite` (LiteRT) file, optionally quantized.

`to_tflite` checks its arguments, picks the route for the mode (the
converter alone; the converter's calibration with tfcompress's ranges or
float layers; a quantization-aware model's own ranges), writes the file
atomically and reads it back to say what it computes in.
"""

import gzip
import os
import warnings

import tensorflow as tf

from tfcompress.argument_validation import integer_at_least
from tfcompress.argument_validation import verbosity
from tfcompress.export.atomic_write import write_atomically
from tfcompress.export.calibration_data import calibration_examples
from tfcompress.export.converter import INTEGER_MODES
from tfcompress.export.converter import convert
from tfcompress.export.converter import converter_settings
from tfcompress.export.export_arguments import check_built
from tfcompress.export.export_arguments import check_calibration
from tfcompress.export.export_arguments import check_data
from tfcompress.export.export_arguments import check_flag
from tfcompress.export.export_arguments import check_io_type
from tfcompress.export.export_arguments import check_path
from tfcompress.export.export_arguments import check_percentile
from tfcompress.export.export_arguments import check_quantization
from tfcompress.export.post_training import calibrate_and_quantize
from tfcompress.export.precision_check import float_ops_message
from tfcompress.export.precision_check import read_precision
from tfcompress.export.precision_check import refuse_float_ops
from tfcompress.export.quantization_aware import (
    quantization_aware_conversion,
)
from tfcompress.export.recurrent_unrolling import layers_to_unroll
from tfcompress.export.tflite_export import TFLiteExport
from tfcompress.litert.value_compression import value_compression
from tfcompress.quantization import is_quantization_aware
from tfcompress.quantization.keep_float import check_keep_float


def to_tflite(
    model,
    path,
    quantization="none",
    data=None,
    calibration_steps=100,
    select_tf_ops=False,
    calibration=None,
    percentile=None,
    input_type=None,
    output_type=None,
    keep_float=None,
    strict=False,
    verbose="auto",
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
      calibrated on `data`. The model's input and output stay
      float32 unless `input_type` / `output_type` say otherwise: the file
      quantizes on entry and dequantizes on exit.
    - `"int16x8"`: int8 weights with 16-bit activations, calibrated like
      `"int8"`. Activation rounding steps are 256 times finer, for a file
      about as small as int8's (biases are int64); LiteRT's 16x8 kernels
      are usually slower than its int8 ones, and not every op has one (the
      conversion then fails). Use it when int8 activations cost too much
      accuracy (super-resolution, audio, regression outputs).

    A quantization-aware model (from `tfcompress.quantization.quantize_model`)
    exports with `"int8"` and no `data`: the converter reads
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

    Recurrent layers (`LSTM`, `GRU`, `SimpleRNN`, `ConvLSTM*`, `RNN` of a
    cell; also inside `Bidirectional` and nested models) are unrolled for
    the export: the model itself is left as it was, and the file computes
    each timestep with builtin ops (`FULLY_CONNECTED`, `LOGISTIC`, `TANH`,
    `MUL`, `ADD`, ...), which every LiteRT build runs in float, dynamic
    range and int8, without Flex ops and without state kept from one call
    to the next. Masks (`Embedding(mask_zero=True)`) are kept. This needs a
    fixed number of timesteps (`keras.Input((timesteps, ...))`): a layer
    reading sequences of unknown length is an error, unless
    `select_tf_ops=True`, which keeps its loop as Flex ops. The file grows
    with the number of timesteps (the graph repeats per timestep; the
    weights are stored once). The converter's fused
    `UNIDIRECTIONAL_SEQUENCE_LSTM` and a builtin `WHILE` loop were
    measured and not chosen: the fused op exists for LSTM only, needs a
    batch of 1, carries its state over to the next call (with constant
    initial states, as tf.keras 2 made them), and ran slower;
    the loop ran slower and its int8 conversion crashed (see
    `tfcompress.export.recurrent_unrolling`).

    A quantization mode is a request: the converter leaves in float what
    it cannot quantize, and says nothing. So after every quantized export
    the written file is read back (`tfcompress.litert.tflite_precision`)
    and the result says what it computes in: `export.precision` counts the
    weighted ops (convolutions, fully connected, embedding tables,
    recurrent cells) that compute in integer and the weight bytes by type,
    and lists the others; one line about it is printed. For `"int8"` and
    `"int16x8"`, a weighted op left in float that `keep_float` did not ask
    for raises a warning, or with `strict=True` a `ValueError`.

    The file is written atomically: the export goes to a temporary file in
    the same directory, which replaces `path` only once the conversion (and
    the `strict` check) has succeeded. On failure, an existing file at
    `path` is left as it was, and no new file is left behind.

    Args:
        model: A built Keras model (called on data, or built with an input
            shape).
        path: Path of the file to write; must end with `".tflite"` and its
            directory must exist. An existing file is replaced.
        quantization: One of `"none"`, `"float16"`, `"dynamic"`, `"int8"`,
            `"int16x8"`. Defaults to `"none"`.
        data: Calibration inputs, required for `"int8"` and
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
        strict: For `"int8"` and `"int16x8"`: whether a weighted op that
            the converter left in float (and `keep_float` did not ask for)
            is an error instead of a warning. Defaults to `False`.
        verbose: `0` is silent; `1`, `2` and `"auto"` print one line saying
            what the file's weighted ops compute in, for the quantized
            modes (Keras's `verbose` convention; `True` / `False` mean
            `1` / `0`). Defaults to `"auto"`.

    Returns:
        A `TFLiteExport` with the path, the mode, the calibration, the
        layers kept in float32, the file size and its gzipped size, and
        (for the quantized modes) the file's `precision`.

    Raises:
        ValueError: If an argument is invalid or does not apply to the
            quantization mode, or if `data` is empty or does not match the
            model's input shape; if a recurrent layer reads sequences of
            unknown length and `select_tf_ops` is `False`; or, with
            `strict=True`, if an integer export left a weighted op in
            float. Nothing is written.
        RuntimeError: If the model needs TensorFlow (Flex) ops and
            `select_tf_ops` is `False`.

    Warns:
        UserWarning: If an `"int8"` or `"int16x8"` export left a weighted
            op in float that `keep_float` did not ask for.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="logits"),
    ])
    x_train = np.random.rand(500, 28, 28, 1).astype("float32")
    export = to_tflite(
        model, "model_int8.tflite", quantization="int8", data=x_train
    )
    # int8: 1 of 1 weighted ops integer, 100.0% of weight bytes int8
    print(export)  # model_int8.tflite (int8): 10.2 KiB, 8.9 KiB gzipped

    # Clip activation outliers, and keep the last layer in float32.
    export = to_tflite(
        model,
        "model_mixed.tflite",
        quantization="int8",
        data=x_train,
        calibration="mse",
        keep_float=["logits"],
    )
    print(export)
    # model_mixed.tflite (int8; mse calibration; float32: logits): ...
    ```
    """
    path = os.fspath(path)
    check_path(path)
    check_quantization(quantization)
    calibration = check_calibration(calibration, quantization)
    percentile = check_percentile(percentile, calibration)
    input_type = check_io_type("input_type", input_type, quantization)
    output_type = check_io_type("output_type", output_type, quantization)
    integer_at_least("calibration_steps", calibration_steps, minimum=1)
    check_flag("select_tf_ops", select_tf_ops)
    check_flag("strict", strict)
    verbose = verbosity(verbose)
    check_built(model)
    # Before any conversion: a recurrent layer that cannot be unrolled.
    layers_to_unroll(model, select_tf_ops)
    keep_float = check_keep_float(
        keep_float, model, quantization, input_type, output_type
    )
    if is_quantization_aware(model):
        model, settings = quantization_aware_conversion(
            model,
            quantization,
            data,
            calibration,
            keep_float,
            input_type,
            output_type,
            select_tf_ops,
        )
        calibration = None

        def write(tmp_path):
            convert(model, tmp_path, settings, select_tf_ops)

    else:
        check_data(data, quantization)
        write = _writer(
            model,
            quantization,
            data,
            calibration_steps,
            select_tf_ops,
            calibration,
            percentile,
            input_type,
            output_type,
            keep_float,
        )

    def check(tmp_path):
        if quantization == "none":
            return None
        precision = read_precision(
            tmp_path, path, model, quantization, keep_float
        )
        refuse_float_ops(precision, strict)
        return precision

    content, precision = write_atomically(path, write, check)
    if precision is not None:
        if verbose:
            print(precision.headline)
        if quantization in INTEGER_MODES and precision.unrequested_float_ops:
            warnings.warn(
                f"{float_ops_message(precision)}. Pass strict=True to refuse "
                "such a file.",
                stacklevel=2,
            )
    return TFLiteExport(
        path=path,
        quantization=quantization,
        size_bytes=len(content),
        gzipped_size_bytes=len(gzip.compress(content, compresslevel=9)),
        calibration=calibration,
        keep_float=keep_float,
        precision=precision,
        value_compression=value_compression(path),
    )


def _writer(
    model,
    quantization,
    data,
    calibration_steps,
    select_tf_ops,
    calibration,
    percentile,
    input_type,
    output_type,
    keep_float,
):
    """Returns `write(tmp_path)` for a float model in any mode."""
    settings = converter_settings(quantization, select_tf_ops)
    if quantization not in INTEGER_MODES:
        return lambda tmp_path: convert(
            model, tmp_path, settings, select_tf_ops
        )
    # Read and check the first batch now, before any conversion.
    examples = calibration_examples(model, data, calibration_steps)
    # The converter calibrates and quantizes in one step unless tfcompress
    # chooses the ranges or denylists ops: then it only calibrates.
    if calibration in ("percentile", "mse") or keep_float:

        def write(tmp_path):
            content = calibrate_and_quantize(
                model,
                examples,
                settings,
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

        return write
    settings["representative_dataset"] = examples
    if input_type != "float32":
        settings["inference_input_type"] = tf.as_dtype(input_type)
    if output_type != "float32":
        settings["inference_output_type"] = tf.as_dtype(output_type)
    return lambda tmp_path: convert(model, tmp_path, settings, select_tf_ops)
