"""Integer export with tfcompress's ranges or float layers: the converter
calibrates, `tfcompress.quantization` quantizes."""

import os
import tempfile

from tfcompress.export.converter import convert
from tfcompress.quantization.calibration import quantize_with_ranges
from tfcompress.quantization.keep_float import keep_float_nodes


def calibrate_and_quantize(
    model,
    examples,
    settings,
    quantization,
    calibration,
    percentile,
    input_type,
    output_type,
    keep_float,
    select_tf_ops,
):
    """Converts with calibration only, then quantizes with tfcompress's
    ranges and `keep_float` (see `tfcompress.quantization.calibration`).

    Args:
        model: The built Keras model.
        examples: The converter's `representative_dataset` (see
            `calibration_examples`).
        settings: The converter attributes of the mode.
        quantization: `"int8"` or `"int16x8"`.
        calibration: `"minmax"`, `"percentile"` or `"mse"`.
        percentile: For `"percentile"`, the percentage of values to keep.
        input_type: The file's input type.
        output_type: The file's output type.
        keep_float: Names of layers to leave in float32 (int8 only).
        select_tf_ops: Whether to allow TensorFlow (Flex) ops.

    Returns:
        The quantized `.tflite` file, as bytes.

    Raises:
        ValueError: If a `keep_float` layer has no op of its own, or the
            calibration data do not fit the model.

    Example:

    ```python
    content = calibrate_and_quantize(
        model, calibration_examples(model, x, 100),
        converter_settings("int8", False), "int8", "mse", None,
        "float32", "float32", (), False,
    )
    ```
    """
    # The calibration examples are read once and kept: the converter and
    # the histograms must see the same ones, and an iterator only yields
    # them once.
    examples = list(examples())
    settings = dict(settings)
    settings["representative_dataset"] = lambda: iter(examples)
    # A private converter flag, set through Keras's exporter (which passes
    # any converter attribute on), as TensorFlow's QuantizationDebugger
    # sets it: the converter calibrates and returns the float model with
    # the recorded ranges, unquantized.
    settings["_experimental_calibrate_only"] = True
    with tempfile.TemporaryDirectory() as scratch:
        calibrated_path = os.path.join(scratch, "calibrated.tflite")
        convert(model, calibrated_path, settings, select_tf_ops)
        with open(calibrated_path, "rb") as f:
            calibrated = f.read()
    denylisted_nodes = []
    if keep_float:
        denylisted_nodes = keep_float_nodes(model, calibrated, keep_float)
    return quantize_with_ranges(
        calibrated,
        examples,
        quantization,
        calibration,
        percentile,
        input_type,
        output_type,
        denylisted_nodes=denylisted_nodes,
        allow_float=select_tf_ops,
    )
