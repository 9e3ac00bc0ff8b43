"""HAQ-style search for each layer's precision under a size or latency budget.

HAQ (Wang et al. 2019) lets an agent pick every layer's bit width and
rewards it with the accuracy of the quantized model, under a latency or
size budget measured on the hardware itself. Here:

- the choices are the precisions LiteRT's CPU kernels run (int8, int8
  weights with int16 activations, int4 or int8 weights dequantized to
  float, float32 kept), applied op by op to the float `.tflite` file with
  ai-edge-quantizer (`precision_recipe`): the converter cannot mix them;
- each candidate is measured, not modelled: its accuracy by running the
  file in LiteRT on validation data, its size read from the written
  file, its latency with `compare_latency` side by side with the float
  file (one run, so the ratio holds on a noisy shared machine);
- the agent is Optuna's multi-objective TPE sampler (accuracy up, cost
  down) with the budget as a constraint. Why not a reinforcement-learning
  controller like HAQ's DDPG: it needs hundreds of episodes to learn what
  TPE finds in tens of trials on a space of a few categorical choices per
  layer, it would be one more thing to test, and Optuna brings what a
  search needs here for free: constraints, the Pareto front of a
  multi-objective study, storage that resumes an interrupted search and
  lets several processes (or machines) share one study.

The uniform assignments (every op int8, every op float32, ...) are
measured first, as the baselines and to tell at once whether the budget
is reachable.
"""

import os
import tempfile
import time

import numpy as np
import optuna

from tfcompress import argument_validation
from tfcompress.export import to_tflite
from tfcompress.litert import compare_latency
from tfcompress.litert import evaluate_tflite
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_file_path
from tfcompress.search.file_limits import FileLimits
from tfcompress.search.precision_recipe import CHOICES
from tfcompress.search.precision_recipe import DEFAULT_CHOICES
from tfcompress.search.precision_recipe import calibrate
from tfcompress.search.precision_recipe import import_quantizer
from tfcompress.search.precision_recipe import quantize_content
from tfcompress.search.precision_recipe import weighted_ops
from tfcompress.search.precision_recipe import write_export
from tfcompress.search.precision_report import PrecisionSearchReport
from tfcompress.search.precision_report import PrecisionTrial
from tfcompress.search.study_storage import completed_trials
from tfcompress.search.study_storage import storage_from
from tfcompress.search.worker_processes import run_worker_processes
from tfcompress.search.worker_processes import shared_storage
from tfcompress.search.worker_processes import trial_shares


class PrecisionSearchProblem:
    """A float file, its weighted ops, a budget and how candidates score.

    Built by `search_precision`; picklable, so each worker process gets
    a copy (the float file's bytes and the calibration ranges included).
    """

    def __init__(
        self,
        float_path,
        named,
        calibration,
        validation_data,
        budget,
        choices,
        scratch,
        num_threads=1,
        latency_runs=100,
    ):
        self.float_path = float_path
        with open(float_path, "rb") as file:
            self.content = file.read()
        self.inspection = inspect_tflite(float_path)
        self.named = named
        self.calibration = calibration
        self.x_val, self.y_val = validation_data
        self.budget = budget
        self.choices = tuple(choices)
        self.scratch = scratch
        self.num_threads = num_threads
        self.latency_runs = latency_runs
        self.objective_name = (
            "size_ratio" if "tflite_bytes" in budget.kinds else "latency_ratio"
        )
        self.float_size = len(self.content)
        self._measured = {}

    @property
    def times_latency(self):
        return "latency_ms" in self.budget.kinds

    def evaluate(self, path):
        return evaluate_tflite(
            path, self.x_val, self.y_val, batch_size=256, num_threads=self.num_threads
        )

    def latency(self, path):
        """`(candidate ms, float ms)` measured side by side in one run."""
        ms = compare_latency(
            [self.float_path, path],
            num_runs=self.latency_runs,
            rounds=3,
            num_threads=self.num_threads,
        )
        return ms[os.fspath(path)], ms[os.fspath(self.float_path)]

    def measure(self, assignment, name):
        """Quantizes by `assignment`, returns its `PrecisionTrial`.

        An assignment measured before in this process is not measured
        again (TPE may propose it twice on a small space).
        """
        key = tuple(assignment[op] for op in self.named)
        if key in self._measured:
            return self._measured[key]
        start = time.perf_counter()
        content = quantize_content(
            self.content, self.inspection, assignment, self.named, self.calibration
        )
        path = os.path.join(self.scratch, f"{name.replace(' ', '_')}.tflite")
        with open(path, "wb") as file:
            file.write(content)
        accuracy = self.evaluate(path)
        cost = {"tflite_bytes": len(content)}
        reference = {"tflite_bytes": self.float_size}
        latency_ms = latency_ratio = None
        if self.times_latency:
            latency_ms, float_ms = self.latency(path)
            latency_ratio = latency_ms / float_ms
            cost["latency_ms"], reference["latency_ms"] = latency_ms, float_ms
        violations = self.budget.violations(cost, reference)
        os.remove(path)
        trial = PrecisionTrial(
            name=name,
            assignment=dict(assignment),
            size_bytes=len(content),
            size_ratio=len(content) / self.float_size,
            latency_ms=latency_ms,
            latency_ratio=latency_ratio,
            accuracy=accuracy,
            within_budget=all(v <= 1e-12 for v in violations),
            seconds=time.perf_counter() - start,
        )
        self._measured[key] = (trial, violations)
        return trial, violations

    def objective(self, trial):
        """Optuna objective: `(accuracy, cost ratio)` of a trial's choices."""
        assignment = {
            op: trial.suggest_categorical(f"op_{i}", self.choices)
            for i, op in enumerate(self.named)
        }
        # On a few categorical choices per op TPE often proposes an
        # assignment again; measuring it again would teach it nothing. The
        # repeat is skipped and an unmeasured assignment drawn at random is
        # queued in its place (exploration, as TPE's own startup trials).
        seen = {
            tuple(other.params.get(f"op_{i}") for i in range(len(self.named)))
            for other in trial.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
        }
        if tuple(assignment.values()) in seen:
            rng = np.random.default_rng(trial.number)
            for _ in range(100):
                draw = tuple(rng.choice(self.choices) for _ in self.named)
                if draw not in seen:
                    trial.study.enqueue_trial(
                        {f"op_{i}": str(c) for i, c in enumerate(draw)}
                    )
                    break
            raise optuna.TrialPruned("an assignment measured before")
        measured, violations = self.measure(assignment, f"trial {trial.number}")
        trial.set_user_attr("assignment", assignment)
        trial.set_user_attr("size_bytes", measured.size_bytes)
        trial.set_user_attr("size_ratio", measured.size_ratio)
        trial.set_user_attr("latency_ms", measured.latency_ms)
        trial.set_user_attr("latency_ratio", measured.latency_ratio)
        trial.set_user_attr("within_budget", measured.within_budget)
        trial.set_user_attr("constraints", violations)
        if hasattr(trial, "set_constraint"):  # Optuna >= 5
            for kind, value in zip(self.budget.kinds, violations):
                trial.set_constraint(kind, value)
        trial.set_user_attr("seconds", measured.seconds)
        return measured.accuracy, getattr(measured, self.objective_name)


def _constraints(trial):
    """Optuna's constraints: feasible when every value is <= 0."""
    return trial.user_attrs["constraints"]


def open_precision_study(storage, study_name, seed):
    """The multi-objective study (accuracy up, cost down), budget as a
    constraint; created, or loaded when its storage holds it already."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    constraints = {}
    if not hasattr(optuna.trial.Trial, "set_constraint"):
        # Optuna 4 reads constraints through the sampler (deprecated in 5).
        constraints["constraints_func"] = _constraints
    return optuna.create_study(
        storage=storage_from(storage),
        study_name=study_name,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=5, **constraints
        ),
        load_if_exists=study_name is not None,
    )


def search_precision(
    model_or_float_tflite,
    *,
    budget,
    data,
    validation_data,
    trials=30,
    choices=DEFAULT_CHOICES,
    path=None,
    num_threads=1,
    latency_runs=100,
    calibration_steps=100,
    storage=None,
    study_name=None,
    workers=1,
    seed=0,
    verbose=1,
):
    """Searches each weighted op's precision for a size or latency budget.

    The model is exported to a float32 `.tflite` file (or the float file
    is taken as given). Every trial gives each weighted op (convolution,
    fully connected) one of `choices`; ai-edge-quantizer writes that
    assignment into a copy of the float file (ops between weighted ops
    follow the op before them; the file's input and output stay float32),
    and the copy is measured: top-1 accuracy on `validation_data` run in
    LiteRT, bytes of the written file, and, when the budget bounds
    latency, median latency side by side with the float file. Optuna's
    multi-objective TPE sampler proposes the next assignment from the
    accuracy and the cost so far, with the budget as a constraint (an
    assignment it proposes again is skipped, not counted). The
    uniform assignments (every op the same choice) are measured first.
    The most accurate assignment within the budget is written to `path`.

    Args:
        model_or_float_tflite: A built Keras model (exported to float32
            with `to_tflite`; ops are named after its layers), or a float32
            `.tflite` file (a path or `TFLiteExport`) with one input.
        budget: A `tfcompress.search.Budget` on the file only, e.g.
            `Budget(tflite_bytes_ratio=0.4)` or `Budget(latency_ratio=0.8)`
            (ratios to the float32 file; precision changes no MACs).
        data: Calibration inputs: an array `x`, or `(x, y)` (the labels are
            not used). The first `calibration_steps` examples set the
            activation ranges, once for all trials.
        validation_data: `(x, y)` arrays (integer or one-hot labels) to
            score every candidate on, in LiteRT.
        trials: Searched assignments after the uniform ones. A resumed
            study runs only those it lacks. Defaults to `30`.
        choices: The precisions an op may get, from `"int8"`,
            `"int16_activations"`, `"int8_weights"`, `"int4_weights"`,
            `"float32"`. Defaults to `("int8", "int16_activations",
            "int4_weights", "float32")`.
        path: Where to write the best file. Defaults to `None`: a
            `mixed_precision.tflite` in a new temporary folder (kept).
        num_threads: LiteRT interpreter threads for accuracy and latency.
            Defaults to `1`.
        latency_runs: Timed runs per file and round of `compare_latency`
            (3 rounds). Defaults to `100`.
        calibration_steps: Examples of `data` that calibrate. Defaults to
            `100`, as `to_tflite`.
        storage: Where the trials are kept: `None` (memory), a journal file
            path, a `.db` path or a database URL (see `storage_from`). With
            a `study_name`, a search resumes where it stopped.
        study_name: The Optuna study's name. Defaults to `None` (a new
            study; required to resume or share one).
        workers: Processes that run trials of the one study at the same
            time. With `workers > 1` and no `storage`, a temporary journal
            file is used. Latencies measured by processes running side by
            side disturb each other: the side-by-side ratios hold better
            than the absolute times. Defaults to `1`.
        seed: Seeds the sampler (worker `i` uses `seed + 1 + i`).
            Defaults to `0`.
        verbose: `0` silent, `1` (or `2`, `"auto"`) a line per trial.
            Defaults to `1`.

    Returns:
        `(export, report)`: a `TFLiteExport` of the best file (its
        `precision` read back from it) and a `PrecisionSearchReport`
        (every trial, the Pareto front, `plot(path)`).

    Raises:
        ValueError: On bad arguments (the message says which), empty data,
            a file that is not float32, a model without weighted ops, or
            a budget no uniform assignment meets (with how close the
            cheapest came).
        ImportError: If ai-edge-quantizer is not installed.

    Example:

    ```python
    export, report = search_precision(
        model, budget=Budget(tflite_bytes_ratio=0.4),
        data=x_train[:500], validation_data=(x_val, y_val), trials=30)
    print(report)
    report.plot("pareto.png")
    ```
    """
    import_quantizer()
    limits = FileLimits.of(budget)
    x_calibration = _check_data(data, validation_data)
    choices = _check_choices(choices)
    trials = argument_validation.integer_at_least("trials", trials, 0)
    workers = argument_validation.positive_int("workers", workers)
    num_threads = argument_validation.positive_int("num_threads", num_threads)
    latency_runs = argument_validation.positive_int("latency_runs", latency_runs)
    calibration_steps = argument_validation.positive_int(
        "calibration_steps", calibration_steps
    )
    verbose = argument_validation.verbosity(verbose)
    say = print if verbose else (lambda *_: None)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        model = None
        if hasattr(model_or_float_tflite, "layers"):
            model = model_or_float_tflite
            float_path = os.path.join(scratch, "float.tflite")
            to_tflite(model, float_path, verbose=0)
            name = model.name
        else:
            float_path = tflite_file_path(model_or_float_tflite, "model_or_float_tflite")
            name = os.path.basename(float_path)
        named = weighted_ops(float_path, model)
        _check_float_file(float_path, named)
        calibration = calibrate(float_path, x_calibration, calibration_steps)
        problem = PrecisionSearchProblem(
            float_path,
            named,
            calibration,
            validation_data,
            limits,
            choices,
            scratch,
            num_threads=num_threads,
            latency_runs=latency_runs,
        )
        float_accuracy = problem.evaluate(float_path)
        float_latency = None
        if problem.times_latency:
            float_latency = compare_latency(
                [float_path], num_runs=latency_runs, rounds=3, num_threads=num_threads
            )[float_path]
        say(
            f"Precision search on {name!r}: {len(named)} weighted ops, "
            f"choices {list(choices)}, budget {budget}, {trials} trials after "
            f"{len(choices)} uniform ones, {workers} worker(s); float32 "
            f"{problem.float_size:,} bytes, accuracy {float_accuracy:.4f}"
        )

        if workers > 1 and storage is None:
            storage = os.path.join(scratch, "study.log")
        if workers > 1 and study_name is None:
            study_name = "precision_search"
        study = open_precision_study(storage, study_name, seed)
        _check_study(study, named, choices)
        total = len(choices) + trials
        progress = _Progress(total, say)
        if not study.trials:
            for choice in choices:
                study.enqueue_trial({f"op_{i}": choice for i in range(len(named))})
            study.optimize(problem.objective, n_trials=len(choices), callbacks=[progress])
        _check_reachable(study, budget)
        remaining = total - completed_trials(study)
        if remaining > 0 and workers == 1:
            study.optimize(
                problem.objective,
                n_trials=remaining * _ATTEMPTS,
                callbacks=[progress, _StopAt(total)],
            )
        elif remaining > 0:
            _run_workers(problem, storage, study_name, (total, remaining), workers, seed, verbose)
            study = open_precision_study(storage, study_name, seed)
        rows = tuple(
            _trial_row(trial, len(named))
            for trial in study.trials
            if trial.state == optuna.trial.TrialState.COMPLETE
        )
        feasible = [row for row in rows if row.within_budget]
        best = max(
            feasible,
            key=lambda r: (r.accuracy, -getattr(r, problem.objective_name)),
        )
        if path is None:
            path = os.path.join(tempfile.mkdtemp(), "mixed_precision.tflite")
        # By position: a study resumed from a file named its ops after
        # their tensors, one resumed from the model after its layers.
        assignment = dict(zip(named, best.assignment.values()))
        export = write_export(
            path,
            quantize_content(
                problem.content, problem.inspection, assignment, named, calibration
            ),
            assignment,
        )
    report = PrecisionSearchReport(
        model=name,
        budget=str(budget),
        objective=problem.objective_name,
        float_size_bytes=problem.float_size,
        float_accuracy=float_accuracy,
        float_latency_ms=float_latency,
        rows=rows,
        best=best.name,
        num_threads=num_threads,
        workers=workers,
        seconds=time.perf_counter() - start,
    )
    say(
        f"Best within budget: {best.name}, accuracy {best.accuracy:.4f} "
        f"(float {float_accuracy:.4f}), size {best.size_ratio:.3f}x"
        + (
            f", latency {best.latency_ratio:.3f}x"
            if best.latency_ratio is not None
            else ""
        )
        + f"; {report.seconds:.0f} s"
    )
    return export, report


def _check_study(study, named, choices):
    """A resumed study must hold trials of this model's ops and choices."""
    for trial in study.trials:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        params = trial.params
        if len(params) != len(named) or not set(params.values()) <= set(choices):
            raise ValueError(
                f"The study {study.study_name!r} holds trials of another "
                f"search ({len(params)} ops, choices "
                f"{sorted(set(params.values()))}); this one has "
                f"{len(named)} ops and choices {list(choices)}. Use another "
                "`study_name` or `storage`."
            )


def _check_reachable(study, budget):
    """Raises when no uniform assignment meets the budget, saying how
    close the cheapest came (mixing choices cannot go below the cheapest
    uniform one's size; int8 everywhere is the fastest on LiteRT's CPU)."""
    rows = [
        t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
    ]
    if any(t.user_attrs["within_budget"] for t in rows):
        return
    closest = min(rows, key=lambda t: max(t.user_attrs["constraints"]))
    choice = next(iter(closest.user_attrs["assignment"].values()))
    ratio = closest.user_attrs["size_ratio"]
    latency = closest.user_attrs["latency_ratio"]
    raise ValueError(
        f"The budget ({budget}) is not reachable by choosing precisions: the "
        f"closest uniform assignment, every op {choice}, keeps "
        f"{ratio:.3f}x of the float file's bytes"
        + (f" and {latency:.3f}x of its latency" if latency is not None else "")
        + f" ({max(closest.user_attrs['constraints']):+.1%} over the tightest "
        "limit). Allow a larger budget, add a cheaper choice (\"int4_weights\" "
        "is the smallest, \"int8\" the fastest), or prune the model first."
    )


class _Progress:
    """Optuna callback: one line per finished trial."""

    def __init__(self, trials, say, prefix=""):
        self.trials, self.say, self.prefix = trials, say, prefix

    def __call__(self, study, trial):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        row = _trial_row(trial, len(trial.user_attrs["assignment"]))
        latency = (
            f", latency {row.latency_ratio:.3f}x" if row.latency_ratio is not None else ""
        )
        self.say(
            f"  {self.prefix}{row.name} ({completed_trials(study)}/{self.trials}): "
            f"size {row.size_ratio:.3f}x{latency}, accuracy {row.accuracy:.4f}, "
            f"{'within' if row.within_budget else 'over'} budget, "
            f"{row.seconds:.1f} s"
        )


def _trial_row(trial, num_ops):
    assignment = dict(trial.user_attrs["assignment"])
    name = f"trial {trial.number}"
    if len(set(assignment.values())) == 1:
        name += f" (all {next(iter(assignment.values()))})"
    return PrecisionTrial(
        name=name,
        assignment=assignment,
        size_bytes=trial.user_attrs["size_bytes"],
        size_ratio=trial.user_attrs["size_ratio"],
        latency_ms=trial.user_attrs["latency_ms"],
        latency_ratio=trial.user_attrs["latency_ratio"],
        accuracy=float(trial.values[0]),
        within_budget=trial.user_attrs["within_budget"],
        seconds=trial.user_attrs["seconds"],
    )


# Proposals per counted trial at most, duplicates included: a small space
# can run out of new assignments.
_ATTEMPTS = 5


class _StopAt:
    """Optuna callback: stops the study once it holds `total` trials."""

    def __init__(self, total):
        self.total = total

    def __call__(self, study, trial):
        if completed_trials(study) >= self.total:
            study.stop()


# Worker processes.


def _run_workers(problem, storage, study_name, trials, workers, seed, verbose):
    """Runs `workers` processes on the one study; the `remaining` trials
    are shared out, so the study ends with exactly `total`."""
    total, remaining = trials
    storage = shared_storage(storage)
    arguments = [
        (
            index,
            problem,
            storage,
            study_name,
            share,
            seed,
            verbose,
        )
        for index, share in enumerate(
            trial_shares(total, remaining, workers)
        )
    ]
    run_worker_processes(_worker_main, arguments)



def _worker_main(index, problem, storage, study_name, trials, seed, verbose):
    """Entry point of one worker process (spawned: a fresh interpreter)."""
    study = open_precision_study(storage, study_name, seed + 1 + index)

    def say(line):
        if verbose:
            print(line, flush=True)

    total, share = trials
    study.optimize(
        problem.objective,
        n_trials=share * _ATTEMPTS,
        callbacks=[_Progress(total, say, f"worker {index}: "), _StopAt(total)],
    )


# Argument checks.


def _check_data(data, validation_data):
    x = data[0] if isinstance(data, (tuple, list)) and len(data) == 2 else data
    x = np.asarray(x) if x is not None else None
    if x is None or x.ndim == 0 or len(x) == 0:
        raise ValueError(
            "`data` (calibration inputs) is empty: pass an array `x` or a "
            "tuple `(x, y)` with at least one example. Received: "
            f"{None if x is None else x.shape}"
        )
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise ValueError(
            "`validation_data` must be a tuple `(x, y)` of arrays. Received: "
            f"{type(validation_data).__name__}"
        )
    x_val, y_val = validation_data
    if len(x_val) == 0 or len(x_val) != len(y_val):
        raise ValueError(
            "`validation_data` must hold as many labels as examples, at least "
            f"one. Received: {len(x_val)} examples, {len(y_val)} labels"
        )
    return x


def _check_choices(choices):
    if isinstance(choices, str) or not choices:
        raise ValueError(
            f"`choices` must be a non-empty sequence of precisions from "
            f"{list(CHOICES)}. Received: choices={choices!r}"
        )
    unknown = [c for c in choices if c not in CHOICES]
    if unknown or len(set(choices)) != len(choices):
        raise ValueError(
            f"`choices` must name distinct precisions from {list(CHOICES)}. "
            f"Received: choices={list(choices)!r}"
        )
    return tuple(choices)


def _check_float_file(float_path, named):
    if not named:
        raise ValueError(
            f"The file {float_path!r} has no weighted op with a float kernel "
            "(convolution, fully connected): there is no precision to choose. "
            "Pass a float32 file or a Keras model."
        )
