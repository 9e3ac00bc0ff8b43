"""Activation ranges for post-training quantization, chosen by tfcompress.

The TFLite converter calibrates by recording each activation tensor's
minimum and maximum over the calibration data ("minmax"). One outlier
then stretches a tensor's range, and every other value is rounded to a
coarser grid. Two alternatives clip the range instead:

- `"percentile"`: keep the central `percentile` % of the values seen,
  clipping `(100 - percentile) / 2` % on each side (the convention of ONNX
  Runtime's percentile calibrator).
- `"mse"`: the clipping range that minimizes the expected squared error of
  quantize-then-dequantize on the values seen, rounding error inside the
  range and clipping error outside it (as NVIDIA's TensorRT "mse"
  calibrator does).

The route through the converter, as TensorFlow's own
`tf.lite.experimental.QuantizationDebugger` takes it:

1. Convert with `_experimental_calibrate_only`: the converter runs its
   calibration and returns a float file whose activation tensors carry the
   recorded `min` / `max` in their quantization parameters. `to_tflite`
   does this step (the converter is `tfcompress.export`'s), then hands the
   file to `quantize_with_ranges`, which does the rest.
2. Run that file in LiteRT with every tensor preserved, over the same
   examples, and histogram each calibrated tensor's values.
3. Write the chosen ranges over the `min` / `max` in the flatbuffer, in
   place.
4. Quantize it with the converter's own quantizer, which reads the ranges
   from the file: the MLIR quantizer for int8 (the one `convert()` uses,
   and the one that can leave chosen ops in float32), the calibration
   wrapper's quantizer for int16x8 (the one `convert()` uses for 16-bit
   activations: the MLIR quantizer writes int16 tensors with nonzero zero
   points, which LiteRT's int16 kernels reject).
"""

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from tfcompress.litert.tensor_tracer import TensorTracer
from tfcompress.quantization.activation_histogram import ActivationHistogram

CALIBRATION_METHODS = ("minmax", "percentile", "mse")

# Examples per `invoke()` while collecting histograms.
_BATCH_SIZE = 32


def quantize_with_ranges(
    calibrated,
    examples,
    quantization,
    calibration,
    percentile,
    input_type,
    output_type,
    denylisted_nodes=(),
    allow_float=False,
):
    """Quantizes a calibrated float file with ranges tfcompress chooses.

    Steps 2 to 4 above: for `"percentile"` and `"mse"`, the ranges are
    chosen from the values the file computes on `examples` and written
    into it; for `"minmax"`, the converter's recorded ranges are kept.

    Args:
        calibrated: A float `.tflite` file (bytes) from the converter's
            calibrate-only mode.
        examples: The calibration examples the converter saw (see
            `activation_ranges`).
        quantization: `"int8"` or `"int16x8"`.
        calibration: `"minmax"`, `"percentile"` or `"mse"`.
        percentile: For `"percentile"`, the central percentage of values to
            keep, in `(0, 100]`; ignored otherwise.
        input_type: `"float32"`, `"int8"` or `"int16"`.
        output_type: `"float32"`, `"int8"` or `"int16"`.
        denylisted_nodes: Output tensor names of ops to leave in float32
            (int8 only; see `tfcompress.quantization.keep_float_nodes`).
            Defaults to `()`.
        allow_float: Whether ops without an integer kernel may stay float
            (int16x8 only). Defaults to `False`.

    Returns:
        The quantized `.tflite` file, as bytes.

    Example:

    ```python
    # `calibrated`: bytes from the converter with
    # `_experimental_calibrate_only=True`, calibrated on `examples`.
    quantized = quantize_with_ranges(
        calibrated, examples, "int8", "mse", None, "float32", "float32"
    )
    ```
    """
    if calibration in ("percentile", "mse"):
        ranges = activation_ranges(
            calibrated,
            examples,
            method=calibration,
            percentile=percentile,
            quantization=quantization,
        )
        calibrated = write_ranges(calibrated, ranges)
    return quantize_calibrated(
        calibrated,
        quantization,
        input_type,
        output_type,
        denylisted_nodes=denylisted_nodes,
        allow_float=allow_float,
    )


def calibrated_tensors(calibrated):
    """Returns `{tensor index: (min, max)}` recorded in a calibrated file.

    Only the main subgraph's tensors are read (the ranges of control flow
    bodies stay as the converter recorded them).
    """
    model = schema.Model.GetRootAs(calibrated, 0)
    subgraph = model.Subgraphs(0)
    ranges = {}
    for i in range(subgraph.TensorsLength()):
        params = subgraph.Tensors(i).Quantization()
        if (
            params is None
            or params.MinIsNone()
            or params.MaxIsNone()
            or params.MinLength() != 1
        ):
            continue
        ranges[i] = (float(params.Min(0)), float(params.Max(0)))
    return ranges


def activation_ranges(calibrated, examples, method, percentile, quantization):
    """Chooses a clipping range for each calibrated activation tensor.

    Args:
        calibrated: A float `.tflite` file (bytes) from the converter's
            calibrate-only mode.
        examples: The calibration examples the converter saw, each a list
            of arrays (one per input, in input order) or a dict keyed by
            input name.
        method: `"percentile"` or `"mse"`.
        percentile: For `"percentile"`, the central percentage of values to
            keep, in `(0, 100]`.
        quantization: `"int8"` (asymmetric 8-bit activations) or
            `"int16x8"` (symmetric 16-bit), which `"mse"` optimizes for.

    Returns:
        `{tensor index: (min, max)}`, always containing 0.
    """
    recorded = calibrated_tensors(calibrated)
    histograms = {
        index: ActivationHistogram(low, high)
        for index, (low, high) in recorded.items()
    }
    tracer = TensorTracer(model_content=bytes(calibrated))
    for batch in _batches(examples, tracer.has_dynamic_batch):
        tracer.run(batch)
        for index, histogram in histograms.items():
            histogram.add(tracer.tensor(index))
    ranges = {}
    for index, histogram in histograms.items():
        if histogram.total == 0:
            continue
        if method == "percentile":
            ranges[index] = histogram.percentile_range(percentile)
        else:
            ranges[index] = histogram.mse_range(quantization)
    return ranges


def write_ranges(calibrated, ranges):
    """Returns `calibrated` with the `min` / `max` of tensors replaced.

    The flatbuffer is edited in place (each range is a one-float vector),
    so everything else in the file stays byte for byte as the converter
    wrote it.
    """
    content = bytearray(calibrated)
    subgraph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    for index, (low, high) in ranges.items():
        params = subgraph.Tensors(index).Quantization()
        # Views into `content`: writing them writes the file.
        params.MinAsNumpy()[0] = low
        params.MaxAsNumpy()[0] = high
    return bytes(content)


def quantize_calibrated(
    calibrated,
    quantization,
    input_type,
    output_type,
    denylisted_nodes=(),
    allow_float=False,
):
    """Quantizes a calibrated float file with the ranges it carries.

    Args:
        calibrated: A calibrated float `.tflite` file (bytes).
        quantization: `"int8"` or `"int16x8"`.
        input_type: `"float32"`, `"int8"` or `"int16"`.
        output_type: `"float32"`, `"int8"` or `"int16"`.
        denylisted_nodes: Output tensor names of ops to leave in float32
            (int8 only).
        allow_float: Whether ops without an integer kernel may stay float
            (int16x8 only; as with `SELECT_TF_OPS` in the converter).

    Returns:
        The quantized `.tflite` file, as bytes.
    """
    # TensorFlow's internal quantizers, called the way
    # `TFLiteConverter._quantize` calls them after calibration; there is
    # no public entry point that takes ranges other than the converter's.
    if quantization == "int8":
        from tensorflow.lite.python.convert import mlir_quantize

        return mlir_quantize(
            bytes(calibrated),
            input_data_type=tf.as_dtype(input_type),
            output_data_type=tf.as_dtype(output_type),
            denylisted_nodes=list(denylisted_nodes) or None,
        )
    from tensorflow.lite.python.optimize import calibrator

    wrapper = calibrator.Calibrator(bytes(calibrated))._calibrator
    # Without examples fed, the wrapper adds no statistics of its own and
    # quantizes with the `min` / `max` already in the file.
    return wrapper.QuantizeModel(
        np.dtype(input_type).num,
        np.dtype(output_type).num,
        allow_float,
        np.dtype(np.int16).num,  # Activations.
        np.dtype(np.int64).num,  # Biases, as the converter sets for 16x8.
        False,  # disable_per_channel
        False,  # disable_per_channel_quantization_for_dense_layers
    )


def _batches(examples, dynamic_batch):
    """Groups single examples into batches when the batch size may vary."""
    size = _BATCH_SIZE if dynamic_batch else 1
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        if isinstance(chunk[0], dict):
            yield {
                name: np.concatenate([example[name] for example in chunk])
                for name in chunk[0]
            }
        else:
            yield [
                np.concatenate([example[i] for example in chunk])
                for i in range(len(chunk[0]))
            ]
