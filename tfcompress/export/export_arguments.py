"""Checks of `to_tflite`'s arguments: each error says what was wrong, what
was received and how to fix it, before anything is converted."""

import numbers
import os

from tfcompress.export.converter import INTEGER_MODES
from tfcompress.export.converter import QUANTIZATION_MODES
from tfcompress.quantization.calibration import CALIBRATION_METHODS

# The input / output types each mode accepts, besides "float32".
IO_TYPES = {"int8": ("float32", "int8"), "int16x8": ("float32", "int16")}
DEFAULT_PERCENTILE = 99.99


def model_name(model):
    """The model's name for messages (its class name if it has none)."""
    return getattr(model, "name", type(model).__name__)


def check_path(path):
    """Checks that `path` ends with `.tflite` and its directory exists.

    Raises:
        ValueError: If not; the message says which.
    """
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


def check_quantization(quantization):
    """Checks that `quantization` is one of `QUANTIZATION_MODES`."""
    if quantization not in QUANTIZATION_MODES:
        raise ValueError(
            "Expected `quantization` to be one of "
            f"{', '.join(repr(m) for m in QUANTIZATION_MODES)}. "
            f"Received: quantization={quantization!r}"
        )


def check_flag(name, value):
    """Checks that argument `name` is `True` or `False`."""
    if not isinstance(value, bool):
        raise ValueError(
            f"Expected `{name}` to be True or False. "
            f"Received: {name}={value!r}"
        )


def check_built(model):
    """Checks that the model is built, so that its input shape is known."""
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built yet, so its input shape is unknown. "
            "Call it on a batch of data (`model(x)`), or call "
            "`model.build(input_shape)`, or start it with `keras.Input`, "
            f"before exporting. Received: model={model_name(model)} "
            "(not built)"
        )


def check_data(data, quantization):
    """Checks that `data` is given exactly for the calibrated modes."""
    if quantization in INTEGER_MODES and data is None:
        raise ValueError(
            f"{quantization} needs calibration data: pass data=... (a few "
            "hundred training examples, e.g. x_train[:500]). Received: "
            "data=None"
        )
    if quantization not in INTEGER_MODES and data is not None:
        raise ValueError(
            "`data` is only used for quantization='int8' or 'int16x8'; with "
            f"quantization={quantization!r} it would be ignored. Drop it, or "
            "use quantization='int8'. Received: data of type "
            f"{type(data).__name__}"
        )


def check_calibration(calibration, quantization):
    """Returns the calibration method: `"minmax"` by default for the
    integer modes, `None` for the others."""
    if calibration is None:
        return "minmax" if quantization in INTEGER_MODES else None
    if calibration not in CALIBRATION_METHODS:
        raise ValueError(
            "Expected `calibration` to be one of "
            f"{', '.join(repr(m) for m in CALIBRATION_METHODS)}"
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


def check_percentile(percentile, calibration):
    """Returns the percentile as a float (`DEFAULT_PERCENTILE` by default
    for `"percentile"`), `None` for other calibrations."""
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


def check_io_type(name, value, quantization):
    """Returns the input or output type (`"float32"` by default)."""
    if value is None:
        return "float32"
    accepted = IO_TYPES.get(quantization, ("float32",))
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
