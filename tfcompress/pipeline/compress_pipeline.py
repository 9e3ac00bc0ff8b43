"""`compress`: a trained model to an int8 LiteRT file under a budget, in
one call (Google's learn2compress, composed from tfcompress's tools).

search (`fit_channel_sparsity`, or `search_channel_sparsity` with trials)
-> `prune_channels` -> fine-tune with distillation from the original model
(`tfcompress.distillation.Distiller`) -> quantization-aware training
(`quantize_model`, sparsity preserved) -> int8 export (`to_tflite`) ->
`verify` in LiteRT -> a report with one row per step, every file timed
side by side with the original float32 file in one run.
"""

import dataclasses
import os
import tempfile
import time

import keras
import numpy as np

from tfcompress.analysis import profile
from tfcompress.argument_validation import integer_at_least
from tfcompress.argument_validation import verbosity
from tfcompress.distillation import Distiller
from tfcompress.export import TFLiteExport
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.litert import evaluate_tflite
from tfcompress.pipeline.compress_report import CompressReport
from tfcompress.pipeline.compress_report import CompressStep
from tfcompress.pruning import prune_channels
from tfcompress.quantization import quantize_model

STEPS = ("search", "prune", "distill", "qat", "int8", "verify")
# Steps that need an earlier one: the sparsity the search chose, a pruned
# model to train, a file to verify.
_NEEDS = {"prune": "search", "search": "prune", "distill": "prune", "verify": "int8"}
# Held out of `data` when no `validation_data` is given.
_VALIDATION_FRACTION = 0.1
# Inputs calibrating a post-training int8 export (no "qat" step).
_CALIBRATION_EXAMPLES = 256


@dataclasses.dataclass(frozen=True)
class CompressResult:
    """What `compress` returns besides its report.

    Attributes:
        model: The last Keras model (the quantization-aware one after
            `"qat"`); it computes what the file computes.
        export: The `TFLiteExport` of the file written (int8 after
            `"int8"`, float32 otherwise).
    """

    model: keras.Model
    export: TFLiteExport

    def __fspath__(self):
        return self.export.path


def compress(
    model,
    data,
    *,
    budget,
    validation_data=None,
    steps=STEPS,
    path=None,
    trials=0,
    search_epochs=1,
    search_examples=5000,
    epochs=2,
    qat_epochs=1,
    batch_size=64,
    learning_rate=1e-3,
    temperature=4.0,
    student_loss_weight=0.5,
    loss=None,
    max_sparsity=0.9,
    filters=None,
    num_threads=1,
    latency_fn=None,
    latency_margin=0.1,
    seed=0,
    verbose="auto",
):
    """Compresses a trained classifier to fit `budget`, losing the least.

    The steps, in this order (`steps` picks a subset):

    1. `"search"`: each channel group's sparsity so that the pruned model
       just fits `budget`: uniform sparsity scaled to the budget
       (`fit_channel_sparsity`) with `trials=0`, else an AMC-style search
       of `trials` Optuna trials (`search_channel_sparsity`, each
       candidate fine-tuned `search_epochs` on `search_examples`). A
       budget on bytes or latency is measured on each candidate's file:
       int8 when the pipeline exports int8, float32 otherwise.
    2. `"prune"`: `prune_channels` with those sparsities.
    3. `"distill"`: `epochs` of fine-tuning with distillation from the
       original model (Hinton et al.: `temperature`,
       `student_loss_weight` on the labels' loss).
    4. `"qat"`: `quantize_model` (zeros of an unstructured pruning kept),
       `qat_epochs` of training (distilled too after `"distill"`), at a
       tenth of `learning_rate`.
    5. `"int8"`: the int8 `.tflite` file (from the quantization-aware
       model, or calibrated post-training without `"qat"`).
    6. `"verify"`: the file against its Keras model in LiteRT (top-1
       agreement) and its accuracy in LiteRT.

    The report has a row for the original model and for each step: the
    step's `.tflite` file (float32 until `"qat"`, then int8), its bytes,
    MACs, LiteRT latency (every file timed side by side with the original
    float32 file in one run: the files take turns) and validation
    accuracy. The user's model is not modified (the teacher and the
    pruning source are copies).

    Args:
        model: A trained, built Sequential or functional classifier that
            outputs logits for integer labels. Not modified.
        data: `(x, y)` arrays to fine-tune on.
        budget: A `tfcompress.search.Budget`, e.g.
            `Budget(latency_ratio=0.33)`.
        validation_data: `(x, y)` arrays to score on. Defaults to `None`:
            a seeded random 10% of `data` is held out.
        steps: The steps to run, a subset of `STEPS` (kept in order).
            `"search"` and `"prune"` go together; `"distill"` needs
            `"prune"`; `"verify"` needs `"int8"`. Defaults to all.
        path: The `.tflite` file to write. Defaults to `None`: a file in a
            new temporary directory (`result.export.path`).
        trials: Searched trials; `0` fits uniform sparsity. Defaults to
            `0`.
        search_epochs: Fine-tune epochs per searched candidate. Defaults
            to `1`.
        search_examples: Training examples per searched candidate.
            Defaults to `5000`.
        epochs: Epochs of distillation (or plain fine-tuning). Defaults to
            `2`.
        qat_epochs: Epochs of quantization-aware training. Defaults to `1`.
        batch_size: Training batch size. Defaults to `64`.
        learning_rate: Adam's learning rate for fine-tuning. Defaults to
            `1e-3`.
        temperature: Distillation temperature. Defaults to `4.0`.
        student_loss_weight: Weight of the labels' loss in distillation.
            Defaults to `0.5`.
        loss: The supervised loss. Defaults to `None`: the model's compiled
            loss, or `SparseCategoricalCrossentropy(from_logits=True)`.
        max_sparsity, filters: As in `search_channel_sparsity`.
        num_threads: LiteRT threads for every timing. Defaults to `1`.
        latency_fn: `fn(tflite_path) -> seconds` to time files elsewhere
            (a phone) instead of `benchmark_tflite` here. Defaults to
            `None`.
        latency_margin: The search fits a latency limit scaled by
            `1 - latency_margin`, so that the final file, timed again,
            stays within the limit despite timing noise (about 10% on a
            shared machine). The report checks the limit itself. Defaults
            to `0.1`.
        seed: Seeds the split, the search and the training. Defaults to
            `0`.
        verbose: `0` silent; `1`, `2`, `"auto"` a line per step (Keras's
            convention). Defaults to `"auto"`.

    Returns:
        `(result, report)`: a `CompressResult` (`.model`, `.export`) and a
        `CompressReport`.

    Raises:
        ValueError: On bad arguments (the message names them), empty data,
            a budget that pruning cannot reach (with how close it got).

    Example:

    ```python
    result, report = tfcompress.compress(
        model, (x_train, y_train), budget=Budget(latency_ratio=0.33),
        validation_data=(x_val, y_val), path="model_int8.tflite")
    print(report)
    ```
    """
    from tfcompress.search import Budget  # Optuna: the `search` extra.

    start = time.perf_counter()
    verbose = verbosity(verbose)
    say = print if verbose else (lambda *_: None)
    steps = _check_steps(steps)
    if not isinstance(budget, Budget):
        raise ValueError(
            "`budget` must be a tfcompress.search.Budget, e.g. "
            f"Budget(latency_ratio=0.33). Received: budget={budget!r}"
        )
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "`model` must be a built Keras model. Received: "
            f"{type(model).__name__}"
        )
    for name, value in (("trials", trials), ("search_epochs", search_epochs),
                        ("epochs", epochs), ("qat_epochs", qat_epochs)):
        integer_at_least(name, value, 0)
    integer_at_least("batch_size", batch_size, 1)
    integer_at_least("search_examples", search_examples, 1)
    if isinstance(latency_margin, bool) or not (
        isinstance(latency_margin, (int, float)) and 0 <= latency_margin < 1
    ):
        raise ValueError(
            "`latency_margin` must be a fraction in [0, 1). Received: "
            f"latency_margin={latency_margin!r}"
        )
    (x, y), (x_val, y_val) = _split(data, validation_data, seed)
    quantize = "int8" in steps
    work = tempfile.TemporaryDirectory(prefix="tfcompress_compress_")
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="tfcompress_"), f"{model.name}.tflite")
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"`path` must end with .tflite. Received: path={path!r}")
    loss = loss if loss is not None else _model_loss(model)
    source = _copy(model, loss, learning_rate)  # The user's model stays as it is.

    files = {}  # row name -> .tflite path, timed together at the end

    def export(name, keras_model, fmt):
        file = os.path.join(work.name, f"{name}.tflite")
        if fmt == "int8":
            to_tflite(keras_model, file, quantization="int8",
                      data=x[:_CALIBRATION_EXAMPLES],
                      calibration_steps=min(len(x), _CALIBRATION_EXAMPLES), verbose=0)
        else:
            to_tflite(keras_model, file, verbose=0)
        files[name] = file
        return file

    rows = []  # (name, format, macs, accuracy, accuracy_in, seconds, note)

    def record(name, fmt, macs, accuracy, accuracy_in, step_start, note):
        seconds = time.perf_counter() - step_start
        rows.append((name, fmt, macs, accuracy, accuracy_in, seconds, note))
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        say(f"compress {name}: {note}; accuracy {shown} ({seconds:.1f} s)")

    step_start = time.perf_counter()
    export("original", model, "float32")
    original_macs = _macs(model)
    record("original", "float32", original_macs, _top1(model, x_val, y_val),
           "keras", step_start, f"{original_macs:,} MACs")

    current, sparsity, teacher = source, {}, source
    if "search" in steps:
        step_start = time.perf_counter()
        sparsity, search_accuracy, note = _search(
            source, _with_margin(budget, latency_margin), (x, y), (x_val, y_val), quantize=quantize,
            trials=trials, search_epochs=search_epochs,
            search_examples=search_examples, batch_size=batch_size,
            max_sparsity=max_sparsity, filters=filters,
            num_threads=num_threads, latency_fn=latency_fn, seed=seed,
            verbose=verbose,
        )
        candidate, prune_report = prune_channels(source, sparsity=sparsity, verbose=0)
        # The file the budget was measured on (int8 when the pipeline
        # quantizes); for a budget on MACs or parameters, the float file,
        # which is also the pruned model's.
        fmt = "int8" if quantize and budget.needs_litert else "float32"
        export("search", candidate, fmt)
        record("search", fmt, _macs(candidate), search_accuracy, "keras",
               step_start, note)

    if "prune" in steps:
        step_start = time.perf_counter()
        current = candidate  # `prune_channels(source, sparsity=sparsity)`
        if fmt == "float32":
            files["prune"] = files["search"]
        else:
            export("prune", current, "float32")
        record("prune", "float32", _macs(current), _top1(current, x_val, y_val),
               "keras", step_start,
               f"MACs {prune_report.macs_ratio:.3f}x, params "
               f"{prune_report.params_ratio:.3f}x")

    if "distill" in steps:
        step_start = time.perf_counter()
        current = _train(current, teacher, loss, (x, y), epochs=epochs,
                         learning_rate=learning_rate, batch_size=batch_size,
                         temperature=temperature,
                         student_loss_weight=student_loss_weight, seed=seed,
                         distill=True)
        export("distill", current, "float32")
        record("distill", "float32", _macs(current), _top1(current, x_val, y_val),
               "keras", step_start,
               f"{epochs} epoch(s), T={temperature:g}, from the original")

    float_model, final_model = current, current
    if "qat" in steps:
        step_start = time.perf_counter()
        qat, _ = quantize_model(current, data=x[:_CALIBRATION_EXAMPLES],
                                preserve_sparsity=True)
        qat = _train(qat, teacher, loss, (x, y), epochs=qat_epochs,
                     learning_rate=learning_rate / 10, batch_size=batch_size,
                     temperature=temperature,
                     student_loss_weight=student_loss_weight, seed=seed,
                     distill="distill" in steps)
        final_model = qat
        if quantize:
            # The QAT model's file is the pipeline's output: written once.
            exported = to_tflite(qat, path, quantization="int8", verbose=0)
            files["qat"] = exported.path
        else:
            export("qat", qat, "int8")
        record("qat", "int8", _macs(float_model), _top1(qat, x_val, y_val),
               "keras", step_start,
               f"{qat_epochs} epoch(s), sparsity preserved")

    if quantize:
        step_start = time.perf_counter()
        if "qat" in steps:
            how = "the QAT model's file"
        else:
            exported = to_tflite(final_model, path, quantization="int8",
                                 data=x[:_CALIBRATION_EXAMPLES],
                                 calibration_steps=min(len(x), _CALIBRATION_EXAMPLES),
                                 verbose=0)
            how = f"post-training, {min(len(x), _CALIBRATION_EXAMPLES)} calibration examples"
        files["int8"] = exported.path
        precision = exported.precision
        record("int8", "int8", _macs(float_model),
               evaluate_tflite(exported.path, x_val, y_val, num_threads=num_threads),
               "litert", step_start,
               f"{how}; {precision.num_integer_ops}/{precision.num_weighted_ops} "
               "weighted ops integer")
    else:
        exported = to_tflite(final_model, path, verbose=0)

    top1_agreement = None
    if "verify" in steps:
        step_start = time.perf_counter()
        parity = verify(final_model, exported.path, x_val, num_threads=num_threads)
        top1_agreement = float(parity.top1_agreement)
        files["verify"] = exported.path
        record("verify", "int8", _macs(float_model),
               evaluate_tflite(exported.path, x_val, y_val, num_threads=num_threads),
               "litert", step_start,
               f"top-1 agreement with Keras {top1_agreement:.2%}")

    # Every file timed in one run, the original float32 file among them.
    from tfcompress.search.litert_cost import side_by_side_ms

    say(f"compress: timing {len(set(files.values()))} files side by side")
    distinct = list(dict.fromkeys(files.values()))
    ms = dict(zip(distinct, side_by_side_ms(
        distinct, num_threads=num_threads, latency_fn=latency_fn,
        num_runs=200, rounds=3)))
    reference_ms = ms[files["original"]]
    steps_rows = tuple(
        CompressStep(
            name=name,
            file_format=fmt,
            size_bytes=os.path.getsize(files[name]),
            macs=int(macs),
            latency_ms=ms[files[name]],
            latency_ratio=ms[files[name]] / reference_ms,
            accuracy=accuracy,
            accuracy_in=accuracy_in,
            seconds=seconds,
            note=note,
        )
        for name, fmt, macs, accuracy, accuracy_in, seconds, note in rows
    )
    report = CompressReport(
        model=model.name,
        budget=str(budget),
        rows=steps_rows,
        sparsity=dict(sparsity),
        top1_agreement=top1_agreement,
        budget_met=_within(budget, steps_rows, source, final_model, float_model),
        latency_setting=(
            "by latency_fn" if latency_fn is not None
            else f"benchmark_tflite, {num_threads} thread(s)"
        ),
        output=exported.path,
        seconds=time.perf_counter() - start,
    )
    work.cleanup()
    say(report.table().splitlines()[-1])
    return CompressResult(model=final_model, export=exported), report


def _with_margin(budget, margin):
    """`budget` with its latency limit scaled by `1 - margin`."""
    changes = {}
    if budget.latency_ratio is not None:
        changes["latency_ratio"] = budget.latency_ratio * (1 - margin)
    if budget.latency_ms is not None:
        changes["latency_ms"] = budget.latency_ms * (1 - margin)
    return dataclasses.replace(budget, **changes)


def _check_steps(steps):
    if isinstance(steps, str) or not all(step in STEPS for step in steps):
        raise ValueError(
            f"`steps` must be a list of steps among {STEPS}. Received: "
            f"steps={steps!r}"
        )
    steps = [step for step in STEPS if step in steps]
    if not steps:
        raise ValueError("`steps` is empty: give at least one step.")
    for step, needed in _NEEDS.items():
        if step in steps and needed not in steps:
            raise ValueError(
                f"Step {step!r} needs step {needed!r}. Received: steps={steps!r}"
            )
    return steps


def _split(data, validation_data, seed):
    """`(train, validation)`: checked arrays; 10% held out if no validation."""

    def arrays(name, value):
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError(
                f"`{name}` must be a tuple `(x, y)` of arrays (integer labels)."
                f" Received: {type(value).__name__}"
            )
        x, y = np.asarray(value[0]), np.asarray(value[1])
        if len(x) == 0:
            raise ValueError(f"`{name}` is empty: give at least one example.")
        if len(x) != len(y):
            raise ValueError(
                f"`{name}` must hold as many labels as examples. Received: "
                f"{len(x)} examples, {len(y)} labels"
            )
        return x, y

    x, y = arrays("data", data)
    if validation_data is not None:
        return (x, y), arrays("validation_data", validation_data)
    if len(x) < 2:
        raise ValueError(
            "`data` needs at least 2 examples to hold some out for "
            f"validation, or give `validation_data`. Received: {len(x)}"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    held = max(1, int(round(_VALIDATION_FRACTION * len(x))))
    return (x[order[held:]], y[order[held:]]), (x[order[:held]], y[order[:held]])


def _model_loss(model):
    if getattr(model, "compiled", False) and model.loss is not None:
        return model.loss
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _copy(model, loss, learning_rate):
    """A compiled copy of `model` with its weights: the teacher and the
    source of pruning (a Distiller freezes its teacher; this leaves the
    user's model trainable)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile(keras.optimizers.Adam(learning_rate), loss)
    return copy


def _macs(model):
    return int(profile(model).macs)


def _top1(model, x, y):
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y).reshape(-1)))


def _search(source, budget, data, validation_data, *, quantize, trials,
            search_epochs, search_examples, batch_size, max_sparsity, filters,
            num_threads, latency_fn, seed, verbose):
    """`(sparsity, accuracy or None, note)` of the search step."""
    from tfcompress.search import fit_channel_sparsity
    from tfcompress.search import search_channel_sparsity

    quantization = "int8" if quantize else "none"
    x, y = data
    if trials:
        _, report = search_channel_sparsity(
            source, budget=budget,
            data=(x[:search_examples], y[:search_examples]),
            validation_data=validation_data, trials=trials,
            fine_tune_epochs=search_epochs, batch_size=batch_size,
            max_sparsity=max_sparsity, filters=filters,
            quantization=quantization, num_threads=num_threads,
            latency_fn=latency_fn, seed=seed, verbose=verbose,
        )
        best = report.row(report.best)
        return (
            dict(best.sparsity),
            best.accuracy,
            f"{trials} trials, best {report.best_trial_accuracy:.4f} vs "
            f"uniform {report.uniform.accuracy:.4f} ({search_epochs} "
            f"epoch(s) each); {report.best} kept",
        )
    sparsity, cost, reference = fit_channel_sparsity(
        source, budget=budget, data=(x, y), max_sparsity=max_sparsity,
        filters=filters, quantization=quantization,
        num_threads=num_threads, latency_fn=latency_fn,
    )
    ratios = cost.ratio_to(reference)
    fitted = ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items())
    value = next(iter(sparsity.values()))
    return sparsity, None, f"uniform {value:.1%} fitted: {fitted}"


def _train(student, teacher, loss, data, *, epochs, learning_rate, batch_size,
           temperature, student_loss_weight, seed, distill):
    """`student` trained `epochs` on `data`, distilled from `teacher`."""
    x, y = data
    keras.utils.set_random_seed(seed)
    if not epochs:
        return student
    if not distill:
        student.compile(keras.optimizers.Adam(learning_rate), loss)
        student.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
        return student
    distiller = Distiller(
        teacher,
        student,
        keras.distillation.LogitsDistillation(
            temperature=temperature, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=student_loss_weight,
    )
    distiller.compile(keras.optimizers.Adam(learning_rate), loss=loss)
    distiller.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return distiller.student


def _within(budget, rows, source, final_model, float_model):
    """Whether the last row meets every limit of `budget`."""
    from tfcompress.search import Cost
    from tfcompress.search import measure_cost

    last, original = rows[-1], rows[0]
    counted, reference = measure_cost(float_model), measure_cost(source)
    cost = Cost(
        macs=counted.macs, params=counted.params, tflite_bytes=last.size_bytes,
        latency_ms=last.latency_ms, latency_ratio=last.latency_ratio,
    )
    reference = Cost(
        macs=reference.macs, params=reference.params,
        tflite_bytes=original.size_bytes, latency_ms=original.latency_ms,
        latency_ratio=1.0,
    )
    return bool(budget.allows(cost, reference))
