"""Export of the stages of a model with exits to LiteRT: one `.tflite` file
per stage (any `to_tflite` mode), and one file holding every stage as a
signature.

Integer modes calibrate each stage on the features the float stages before
it produce for the calibration data. Both kinds of file get that: per-stage
files through `to_tflite`, and the single file through the converter's
multi-signature calibration (a SavedModel with a signature per stage,
written by Keras's `ExportArchive`, and a representative dataset that
yields `(signature_key, inputs)` pairs: TF 2.21 calibrates every signature
on its own examples). What does not calibrate is a multi-signature file
from `TFLiteConverter.from_concrete_functions(functions, trackable)`: it
keeps the weights as resource variables, and the calibrator fails on
them (`READ_VARIABLE failed to invoke`).
"""

import dataclasses
import os
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfcompress.argument_validation import integer_at_least
from tfcompress.argument_validation import verbosity
from tfcompress.dynamic.exit_naming import exit_names
from tfcompress.dynamic.runner import CONFIDENCE
from tfcompress.dynamic.runner import FEATURES
from tfcompress.dynamic.runner import LOGITS
from tfcompress.dynamic.stages import kept_exits
from tfcompress.dynamic.stages import split_stages
from tfcompress.dynamic.stages import stage_macs
from tfcompress.export import to_tflite
from tfcompress.export.atomic_write import write_atomically
from tfcompress.export.converter import INTEGER_MODES
from tfcompress.export.converter import converter_settings
from tfcompress.export.export_arguments import check_quantization
from tfcompress.litert import inspect_tflite
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

# The names of every stage signature's tensors (FEATURES, LOGITS,
# CONFIDENCE) are the runner's, which reads them.
SINGLE_FILE = "stages.tflite"


@dataclasses.dataclass(frozen=True)
class StageFile(Row):
    """One stage's `.tflite` file.

    Attributes:
        name: `"stage_K"`, also the signature name in the single file.
        path: The file.
        size_bytes: Its size.
        macs: MACs per example of the stage (`split_stages` / `profile`).
        input_shape: The stage's input shape, without the batch dimension.
        integer_ops: Fraction of its weighted ops that compute in integers
            (read back from the file).
    """

    name: str
    path: str
    size_bytes: int
    macs: int
    input_shape: tuple
    integer_ops: float


@dataclasses.dataclass(frozen=True, repr=False)
class StageExport(Report):
    """Result of `export_stages`.

    Attributes:
        rows: One `StageFile` per stage.
        quantization: The mode of every file.
        single_file: The file with one signature per stage, or `None`.
        single_file_note: Why there is no single file, or `""`.
        single_file_bytes: Its size (0 without it).
        exits: Indices of the model's exits the stages end at (every exit
            unless `export_stages` was given `exits`).
    """

    rows: tuple
    quantization: str
    single_file: str | None
    single_file_note: str
    single_file_bytes: int
    exits: tuple = ()

    @property
    def paths(self):
        """The per-stage files, in order (for `EarlyExitRunner`)."""
        return [row.path for row in self.rows]

    def table(self):
        lines = format_table(
            ["stage", "input", "MACs", "bytes", "integer ops", "file"],
            [
                [
                    row.name,
                    "x".join(str(d) for d in row.input_shape),
                    f"{row.macs:,}",
                    f"{row.size_bytes:,}",
                    f"{row.integer_ops:.0%}",
                    os.path.basename(row.path),
                ]
                for row in self.rows
            ],
        )
        if self.single_file:
            lines.append(
                f"one file, a signature per stage: {self.single_file} "
                f"({self.single_file_bytes:,} bytes)"
            )
        else:
            lines.append(f"no single file: {self.single_file_note}")
        return "\n".join(lines)


def stage_models(model, exits=None):
    """The stages of `model` as models with named outputs: stage K <
    last outputs `{"features", "logits", "confidence"}`, the last
    `{"logits"}`. `exits` as in `split_stages`.

    `confidence` is the exit's largest softmax probability, shape
    `(batch,)`, computed in the stage's graph: the runner reads one number
    per example instead of computing a softmax in NumPy after each call.
    """
    named = []
    for stage in split_stages(model, exits):
        outputs = stage.outputs
        if len(outputs) == 2:
            logits = outputs[1]
            outputs = {
                FEATURES: outputs[0],
                LOGITS: logits,
                CONFIDENCE: keras.ops.max(
                    keras.ops.softmax(logits, axis=-1), axis=-1
                ),
            }
        else:
            outputs = {LOGITS: outputs[0]}
        named.append(keras.Model(stage.inputs, outputs, name=stage.name))
    return named


def export_stages(
    model,
    directory,
    *,
    quantization="none",
    data=None,
    calibration_steps=100,
    single_file=True,
    exits=None,
    verbose="auto",
):
    """Writes the stages of a model with exits as `.tflite` files.

    Stage K's file maps `features` (the image, for stage 0) to `features`,
    `logits` (exit K's) and `confidence` (their largest softmax
    probability); the last stage's maps `features` to the final `logits`.
    With `exits` (`ExitPolicy.exits`), stages end only at those exits: the
    layers up to the next kept exit run as one stage, without the heads of
    the exits in between. Per-stage files go through `tfcompress.export.to_tflite` with
    `quantization`; for the integer modes, stage 0 is calibrated on `data`
    and stage K on the features the float stages 0..K-1 compute from
    `data`. The single file holds every stage as a signature
    (`"stage_K"`), converted from a SavedModel with one endpoint per stage
    (`keras.export.ExportArchive`) in the same mode, each signature
    calibrated on its own stage's examples (see the module's docstring).

    Args:
        model: A model from `attach_exits`.
        directory: Folder to write `stage_K.tflite` and `stages.tflite`
            into; created if missing.
        quantization: A `to_tflite` mode. Defaults to `"none"`.
        data: Calibration images, an array, for the integer modes.
        calibration_steps: Examples to calibrate on. Defaults to `100`.
        single_file: Whether to write `stages.tflite` too. Defaults to
            `True`.
        exits: Indices of the exits to keep (`ExitPolicy.exits`). Defaults
            to `None`: every exit.
        verbose: `0` silent; `1`, `2` or `"auto"` print one line per file.
            Defaults to `"auto"`.

    Returns:
        A `StageExport`.

    Raises:
        ValueError: If `quantization` is unknown, an integer mode has no
            `data`, or `exits` names an exit the model does not have.

    Example:

    ```python
    export = export_stages(with_exits, "stages", quantization="int8",
                           data=x_train[:500], exits=policy.exits)
    runner = EarlyExitRunner(export.paths, policy.stage_thresholds)
    ```
    """
    check_quantization(quantization)
    integer_at_least("calibration_steps", calibration_steps, minimum=1)
    verbose = verbosity(verbose)
    integer = quantization in INTEGER_MODES
    if integer and data is None:
        raise ValueError(
            f"`quantization={quantization!r}` calibrates each stage: pass "
            "calibration images as `data`. Received: data=None"
        )
    kept = kept_exits(exits, len(exit_names(model)))
    os.makedirs(directory, exist_ok=True)
    stages = stage_models(model, kept)
    macs = stage_macs(model, kept)
    features = None
    calibration = {}
    if integer:
        features = np.asarray(data, np.float32)[:calibration_steps]
    rows = []
    for stage, stage_cost in zip(stages, macs):
        path = os.path.join(directory, f"{stage.name}.tflite")
        calibration[stage.name] = features
        export = to_tflite(
            stage,
            path,
            quantization=quantization,
            data=features,
            calibration_steps=calibration_steps,
            verbose=0,
        )
        rows.append(
            StageFile(
                name=stage.name,
                path=path,
                size_bytes=export.size_bytes,
                macs=int(stage_cost),
                input_shape=tuple(int(d) for d in stage.inputs[0].shape[1:]),
                integer_ops=_integer_fraction(export.precision),
            )
        )
        if verbose:
            print(f"export_stages: {path} ({export.size_bytes:,} bytes)")
        if integer and FEATURES in stage.output:
            # The next stage is calibrated on what the float stages give.
            features = np.asarray(
                stage.predict(features, batch_size=256, verbose=0)[FEATURES]
            )
    single, note, single_bytes = None, "", 0
    if not single_file:
        note = "not asked for (single_file=False)"
    else:
        single = os.path.join(directory, SINGLE_FILE)
        content = write_multi_signature(
            stages, single, quantization,
            calibration=calibration if integer else None,
        )
        single_bytes = len(content)
        if verbose:
            print(f"export_stages: {single} ({single_bytes:,} bytes)")
    return StageExport(
        rows=tuple(rows),
        quantization=quantization,
        single_file=single,
        single_file_note=note,
        single_file_bytes=single_bytes,
        exits=kept,
    )


def write_multi_signature(stages, path, quantization="none",
                          calibration=None):
    """Writes `stages` (from `stage_models`) as one `.tflite` file with a
    signature per stage, named after the stage; returns the bytes.

    Args:
        stages: Models with one input and named outputs.
        path: The file to write.
        quantization: A `to_tflite` mode. Defaults to `"none"`.
        calibration: For the integer modes, `{stage name: array of that
            stage's input examples}`.

    Raises:
        ValueError: If an integer mode lacks a stage's calibration.
    """
    integer = quantization in INTEGER_MODES
    missing = [s.name for s in stages if s.name not in (calibration or {})]
    if integer and missing:
        raise ValueError(
            f"`quantization={quantization!r}` calibrates each signature: "
            f"`calibration` needs examples for {missing}."
        )
    # Keras's ExportArchive writes one SavedModel with an endpoint per
    # stage; the converter turns each signature of it into a signature of
    # one file, with the variables frozen into constants.
    archive = keras.export.ExportArchive()
    for stage in stages:
        archive.track(stage)
        spec = tf.TensorSpec(
            (None, *stage.inputs[0].shape[1:]), tf.float32, name=FEATURES
        )
        archive.add_endpoint(
            stage.name, _inference(stage), input_signature=[spec]
        )
    with tempfile.TemporaryDirectory() as scratch:
        archive.write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            scratch, signature_keys=[stage.name for stage in stages]
        )
        settings = converter_settings(quantization, select_tf_ops=False)
        for name, value in settings.get("target_spec", {}).items():
            setattr(converter.target_spec, name, value)
        if "optimizations" in settings:
            converter.optimizations = settings["optimizations"]
        if integer:
            converter.representative_dataset = _per_signature_examples(
                calibration
            )
        with warnings.catch_warnings():
            # The calibrator builds a `tf.lite.Interpreter`, which warns
            # that the class is deprecated: nothing the user can act on.
            warnings.filterwarnings(
                "ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated"
            )
            content = converter.convert()

    def write(tmp_path):
        with open(tmp_path, "wb") as f:
            f.write(content)

    write_atomically(path, write)
    # Read back: the file must parse.
    inspect_tflite(path)
    return content


def _per_signature_examples(calibration):
    # The converter's multi-signature form: `(signature_key, {input name:
    # one example})`, each signature's own examples.
    def examples():
        for name, features in calibration.items():
            for example in np.asarray(features, np.float32):
                yield name, {FEATURES: example[None]}

    return examples


def _inference(stage):
    # A closure, not a default argument: the endpoint's signature must be
    # the features alone.
    def run(features):
        return stage(features, training=False)

    return run


def _integer_fraction(precision):
    if precision is None or not precision.num_weighted_ops:
        return 0.0
    return precision.num_integer_ops / precision.num_weighted_ops
