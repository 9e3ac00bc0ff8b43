"""Parity between a Keras model and its `.tflite` export, on real inputs."""

import dataclasses
import numbers

import numpy as np

from tfcompress.litert.interpreter import LiteRTModel
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class ParityMetric(Row):
    """One figure of a `ParityReport`.

    Attributes:
        name: The attribute of the report it shows (`"top1_agreement"`,
            `"max_abs_error"`, `"mean_abs_error"`, `"relative_error"`).
        value: Its value.
    """

    name: str
    value: float


@dataclasses.dataclass(frozen=True)
class ParityReport(Report):
    """How closely a `.tflite` file reproduces its Keras model's outputs.

    `str(report)` is one line; `report.table()` shows one row per figure
    (`rows`, `ParityMetric`s: `report.row("relative_error").value`).

    Attributes:
        path: Path of the `.tflite` file.
        num_examples: Number of inputs both were run on.
        top1_agreement: Fraction of examples whose argmax is the same in
            both, for a classifier output of shape `(N, num_classes)`;
            `None` for any other output shape.
        max_abs_error: Largest `|keras - litert|` over all output values.
        mean_abs_error: Mean `|keras - litert|` over all output values.
        relative_error: `||keras - litert|| / ||keras||` (Frobenius norms
            over the whole output): about 1e-7 for a float32 file, about
            1e-2 for a good int8 one.
        output_range: `(min, max)` of the Keras outputs, the scale to read
            the absolute errors against.
    """

    path: str
    num_examples: int
    top1_agreement: float | None
    max_abs_error: float
    mean_abs_error: float
    relative_error: float
    output_range: tuple

    @property
    def rows(self):
        """The figures as `ParityMetric` rows (top-1 agreement only for a
        classifier output)."""
        names = ("top1_agreement", "max_abs_error", "mean_abs_error")
        names += ("relative_error",)
        return tuple(
            ParityMetric(name, getattr(self, name))
            for name in names
            if getattr(self, name) is not None
        )

    def table(self):
        """Returns the figures as a fixed-width table, under the file."""
        cells = []
        for row in self.rows:
            if row.name == "top1_agreement":
                value = f"{row.value:.2%}"
            elif row.name == "relative_error":
                value = _format_relative(row.value)
            else:
                value = f"{row.value:.3g}"
            cells.append((row.name, value))
        low, high = self.output_range
        return "\n".join(
            [
                f"Parity of {self.path!r} with its Keras model on "
                f"{self.num_examples} examples (outputs in "
                f"[{low:.3g}, {high:.3g}])",
                *format_table(("Figure", "Value"), cells),
            ]
        )

    def __str__(self):
        # One line, where a report is usually a table: parity is a handful
        # of figures, read in logs and assertion messages.
        errors = (
            f"max |error| {self.max_abs_error:.3g}, "
            f"relative error {_format_relative(self.relative_error)}"
        )
        if self.top1_agreement is None:
            return f"{self.num_examples} examples; {errors}"
        return (
            f"top-1 agreement {self.top1_agreement:.2%} on "
            f"{self.num_examples} examples; {errors}"
        )

    def assert_parity(self, min_top1_agreement=0.99, max_relative_error=None):
        """Raises `AssertionError` if the file strays too far from Keras.

        Args:
            min_top1_agreement: Smallest accepted `top1_agreement`, in
                `[0, 1]`, or `None` not to check it. Defaults to `0.99`, what
                a quantization-aware trained int8 model reaches. Must be
                `None` for an output that is not `(N, num_classes)`.
            max_relative_error: Largest accepted `relative_error`, a number
                >= 0, or `None` not to check it. Defaults to `None`.

        Returns:
            The report itself, so that `verify(...).assert_parity()` can be
            kept.

        Raises:
            AssertionError: If a threshold is not met; the message holds
                the numbers.
            ValueError: If a threshold is out of range, or
                `min_top1_agreement` is set for an output without classes.
        """
        _check_fraction("min_top1_agreement", min_top1_agreement)
        if max_relative_error is not None and (
            isinstance(max_relative_error, bool)
            or not isinstance(max_relative_error, numbers.Real)
            or not max_relative_error >= 0
        ):
            raise ValueError(
                "`max_relative_error` must be a number >= 0 or None. "
                f"Received: max_relative_error={max_relative_error!r}"
            )
        if min_top1_agreement is not None and self.top1_agreement is None:
            raise ValueError(
                "Top-1 agreement is only defined for an output of shape "
                "(N, num_classes), and this model's is not. Pass "
                "min_top1_agreement=None and check max_relative_error "
                f"instead. Received: min_top1_agreement={min_top1_agreement!r}"
            )
        failures = []
        if (
            min_top1_agreement is not None
            and self.top1_agreement < min_top1_agreement
        ):
            differ = round((1.0 - self.top1_agreement) * self.num_examples)
            failures.append(
                f"top-1 agreement {self.top1_agreement:.2%} is below "
                f"min_top1_agreement={min_top1_agreement:.2%} ({differ} of "
                f"{self.num_examples} examples differ)"
            )
        if (
            max_relative_error is not None
            and not self.relative_error <= max_relative_error
        ):
            failures.append(
                f"relative error {self.relative_error:.3g} is above "
                f"max_relative_error={max_relative_error:.3g}"
            )
        if failures:
            raise AssertionError(
                f"The LiteRT file {self.path!r} does not match the Keras "
                f"model: {'; '.join(failures)}. Report: {self}"
            )
        return self


def verify(model, tflite_path, x, batch_size=256, num_threads=1, xnnpack=True):
    """Runs a Keras model and its `.tflite` file on `x` and compares them.

    Both get the same inputs: Keras through `model.predict`, the file through
    the LiteRT interpreter (`LiteRTModel`, which quantizes inputs and
    dequantizes outputs of an int8-I/O file). A float32 file should agree to
    float rounding (relative error around 1e-7); a quantized file shows what
    quantization changed.

    Only models with one input and one output are supported, as in
    `LiteRTModel.predict()`: a multi-output model has no single top-1 to
    agree on, and the file's output order need not be the model's.

    Args:
        model: The Keras model that was exported.
        tflite_path: Path to its `.tflite` file, or the `TFLiteExport` that
            `to_tflite()` returned.
        x: Inputs, an array of shape `(N, *input_shape)` with `N >= 1`.
            Held-out data: the agreement is only as meaningful as the inputs.
        batch_size: Examples per call, for both, an integer >= 1. Defaults
            to `256`.
        num_threads: CPU threads for the interpreter, an integer >= 1.
            Defaults to `1`.
        xnnpack: Whether the file runs with LiteRT's default XNNPACK
            delegate (`True`) or TFLite's builtin kernels only (`False`);
            see `LiteRTModel`. Defaults to `True`.

    Returns:
        A `ParityReport` with `top1_agreement`, `max_abs_error`,
        `mean_abs_error`, `relative_error`, `num_examples` and
        `output_range`; call `.assert_parity()` on it to fail below a
        threshold.

    Raises:
        FileNotFoundError: If there is no file at `tflite_path`.
        ValueError: If `x` does not match the file's input shape or is
            empty, if the model or file has more than one input or output,
            or if the model and the file give outputs of different shapes.

    Example:

    ```python
    # `model`: a trained classifier; x_train, x_test: its data.
    to_tflite(
        model,
        "model_int8.tflite",
        quantization="int8",
        data=x_train[:200],
    )
    report = verify(model, "model_int8.tflite", x_test)
    print(report)
    # top-1 agreement 99.56% on 450 examples; max |error| 0.168,
    # relative error 0.7%
    report.assert_parity(min_top1_agreement=0.99)
    ```
    """
    path = tflite_file_path(tflite_path, "tflite_path")
    # LiteRT first: it checks the path, batch_size, num_threads and x's shape
    # before Keras spends time on a prediction.
    litert_model = LiteRTModel(path, num_threads=num_threads, xnnpack=xnnpack)
    x = np.asarray(x)
    num_outputs = _num_outputs(model)
    if num_outputs is not None and num_outputs != 1:
        raise ValueError(
            "`verify` supports models with one output. Received: "
            f"model {getattr(model, 'name', type(model).__name__)!r} with "
            f"{num_outputs} outputs."
        )
    litert_outputs = litert_model.predict(x, batch_size=batch_size)
    keras_outputs = model.predict(x, batch_size=batch_size, verbose=0)
    if not hasattr(keras_outputs, "shape"):
        raise ValueError(
            "`verify` supports models with one output. Received: a model "
            f"whose predict() returns a {type(keras_outputs).__name__}."
        )
    keras_outputs = np.asarray(keras_outputs, dtype=np.float64)
    litert_outputs = litert_outputs.astype(np.float64)
    if keras_outputs.shape != litert_outputs.shape:
        raise ValueError(
            "The Keras model and the LiteRT file give outputs of different "
            f"shapes on `x`: {keras_outputs.shape} (Keras) and "
            f"{litert_outputs.shape} (LiteRT), so the file is not an export "
            f"of this model. Received: tflite_path={path!r}"
        )
    return _compare(path, keras_outputs, litert_outputs)


def _compare(path, expected, actual):
    error = np.abs(expected - actual)
    norm = float(np.linalg.norm(expected))
    error_norm = float(np.linalg.norm(expected - actual))
    if norm > 0:
        relative_error = error_norm / norm
    else:
        # All-zero reference: any difference is infinitely relative.
        relative_error = 0.0 if error_norm == 0 else float("inf")
    top1_agreement = None
    if expected.ndim == 2 and expected.shape[1] >= 2:
        top1_agreement = float(
            np.mean(np.argmax(expected, -1) == np.argmax(actual, -1))
        )
    return ParityReport(
        path=path,
        num_examples=len(expected),
        top1_agreement=top1_agreement,
        max_abs_error=float(np.max(error)),
        mean_abs_error=float(np.mean(error)),
        relative_error=relative_error,
        output_range=(float(np.min(expected)), float(np.max(expected))),
    )


def _num_outputs(model):
    """The model's number of outputs, or `None` if not known before a run."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    return len(outputs) if outputs else None


def _check_fraction(name, value):
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(
            f"`{name}` must be a number in [0, 1] or None. "
            f"Received: {name}={value!r}"
        )


def _format_relative(value):
    # Percent reads well for quantized files; float32 files sit near 1e-7,
    # where a percent would print as 0.00%.
    if value >= 1e-3:
        return f"{value:.1%}"
    return f"{value:.2g}"
