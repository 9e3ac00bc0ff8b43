"""Hardware-aware architecture search: `search_architecture`.

The search space, strategy and performance measure of NAS (Zoph & Le
2017; Elsken et al. 2019), made hardware-aware as in MnasNet (Tan et al.
2019):

- space: `SearchSpace`, per stage a block type among tfcompress's
  layers, kernel size, expansion, width and depth;
- strategy: Optuna's TPE sampler, on the same engine, storage and worker
  processes as the budget searches (`study_storage`, `worker_processes`),
  not a home-made reinforcement-learning controller: TPE needs tens of
  trials where MnasNet's controller needed thousands of samples;
- performance: each candidate is trained a few epochs on the user's
  data and scored on validation data, and its `.tflite` file (float32,
  or int8) is timed in LiteRT (batch 1, `num_threads`) side by side with
  a reference model's file by `LiteRTCostMeter`, so that the ratio holds
  while a shared machine's speed drifts.

Two strategies:

- `"mnasnet"` (default): maximize MnasNet's reward
  `accuracy * (latency / target) ** w` with `w = -0.07` (their soft
  constraint: 2x over the target costs 5% of the accuracy, 2x under
  gains 5%). Default because a search of 10 to 30 trials has a latency
  target: one scalar concentrates TPE's trials near the target, where
  the answer is, while a multi-objective search spreads them along the
  whole front.
- `"pareto"`: multi-objective TPE (accuracy up, latency down) with the
  target as a constraint; for when the front itself is wanted.

Either way the report lists every trial with its Pareto front, and the
returned model is the most accurate trial within the target.
"""

import math
import os
import tempfile
import time

import keras
import numpy as np
import optuna

from tfcompress import argument_validation
from tfcompress.search.architecture.report import ArchitectureSearchReport
from tfcompress.search.architecture.report import ArchitectureTrial
from tfcompress.search.architecture.report import pareto_front
from tfcompress.search.architecture.space import SearchSpace
from tfcompress.search.budget import measure_cost
from tfcompress.search.channel_search import top1_accuracy
from tfcompress.search.litert_cost import QUANTIZATIONS
from tfcompress.search.litert_cost import LiteRTCostMeter
from tfcompress.search.study_storage import completed_trials
from tfcompress.search.study_storage import open_study
from tfcompress.search.study_storage import set_constraints
from tfcompress.search.worker_processes import load_worker_inputs
from tfcompress.search.worker_processes import run_worker_processes
from tfcompress.search.worker_processes import save_worker_inputs
from tfcompress.search.worker_processes import shared_storage
from tfcompress.search.worker_processes import trial_shares
from tfcompress.search.worker_processes import worker_threads

STRATEGIES = ("mnasnet", "pareto")
# The `ArchitectureTrial` fields a trial keeps in the study (user attrs),
# so that a resumed or shared study rebuilds its rows.
_TRIAL_FIELDS = (
    "description",
    "accuracy",
    "latency_ms",
    "latency_ratio",
    "estimated_latency_ms",
    "macs",
    "params",
    "tflite_bytes",
    "reward",
    "within_target",
    "seconds",
)
# MnasNet's soft-constraint exponent (their alpha = beta = -0.07).
MNASNET_WEIGHT = -0.07


def mnasnet_reward(accuracy, latency_ms, target_ms, weight=MNASNET_WEIGHT):
    """MnasNet's reward: `accuracy * (latency_ms / target_ms) ** w`.

    `weight` is `w`, or a pair `(alpha, beta)`: `w = alpha` within the
    target, `beta` over it. MnasNet's soft constraint is `-0.07` (both);
    their hard one `(0, -1)`: no gain for being faster, a steep loss for
    being slower. With `w < 0` a candidate slower than the target scores
    below its accuracy.
    """
    alpha, beta = weight if isinstance(weight, tuple) else (weight, weight)
    w = alpha if latency_ms <= target_ms else beta
    return accuracy * (latency_ms / target_ms) ** w


class ArchitectureSearchProblem:
    """A space, data, a latency target and how candidates score.

    Built by `search_architecture`; each worker process builds its own.
    """

    def __init__(
        self,
        space,
        data,
        validation_data,
        reference,
        *,
        target_ms=None,
        reference_ms=None,
        strategy="mnasnet",
        latency_weight=MNASNET_WEIGHT,
        epochs=1,
        batch_size=64,
        learning_rate=1e-3,
        seed=0,
        quantization="none",
        num_threads=1,
        latency_fn=None,
        latency_runs=100,
    ):
        self.space = space
        self.x, self.y = data
        self.x_val, self.y_val = validation_data
        self.strategy = strategy
        self.latency_weight = latency_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        # A worker is given the reference's time measured by the main
        # process, so that every worker's estimates share one scale: its
        # meter skips timing the reference at start, then times every
        # candidate (side by side with the reference) all the same.
        self.meter = LiteRTCostMeter(
            reference,
            quantization=quantization,
            calibration_data=self.x,
            num_threads=num_threads,
            latency_fn=latency_fn,
            num_runs=latency_runs,
            measure_latency=reference_ms is None,
        )
        self.meter.measure_latency = True
        self.reference_ms = reference_ms or self.meter.reference_latency_ms
        self.target_ms = target_ms or self.reference_ms
        # The trained models that `best_of` may pick (the most accurate
        # within the target, the highest reward), so that the search's
        # answer need not be trained again: `{trial name: model}`.
        self.kept = {}
        self._leaders = {}

    def train(self, choices):
        """Builds the candidate, trains it; returns `(model, accuracy)`."""
        keras.utils.set_random_seed(self.seed)
        model = self.space.build(choices)
        model.compile(
            keras.optimizers.Adam(self.learning_rate),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            # XLA compiles each new candidate for longer than its short
            # training runs (small_mobilenet_v2, 3,000 Fashion-MNIST
            # images: 35 s with XLA, 19 s without, on 2 CPU cores).
            jit_compile=False,
        )
        model.fit(
            self.x, self.y, epochs=self.epochs, batch_size=self.batch_size, verbose=0
        )
        return model, top1_accuracy(model, self.x_val, self.y_val)

    def keep(self, row, model):
        """Keeps `model` while its row leads one of `best_of`'s rules."""
        keys = {"reward": row.reward}
        if row.within_target:
            keys["accuracy"] = row.accuracy
        for rule, value in keys.items():
            leader = self._leaders.get(rule)
            if leader is None or value > leader[0]:
                self._leaders[rule] = (value, row.name)
        leaders = {name for _, name in self._leaders.values()}
        if row.name in leaders:
            self.kept[row.name] = model
        self.kept = {n: m for n, m in self.kept.items() if n in leaders}

    def evaluate(self, choices, name):
        """Trains and measures one candidate.

        Returns:
            `(ArchitectureTrial, trained model)`.
        """
        start = time.perf_counter()
        model, accuracy = self.train(choices)
        cost = measure_cost(model)
        tflite_bytes, latency_ms, ratio = self.meter.measure(model)
        estimated = ratio * self.reference_ms
        row = ArchitectureTrial(
            name=name,
            choices=dict(choices),
            description=self.space.describe(choices),
            accuracy=accuracy,
            latency_ms=latency_ms,
            latency_ratio=ratio,
            estimated_latency_ms=estimated,
            macs=cost.macs,
            params=cost.params,
            tflite_bytes=tflite_bytes,
            reward=mnasnet_reward(
                accuracy, estimated, self.target_ms, self.latency_weight
            ),
            within_target=estimated <= self.target_ms,
            seconds=time.perf_counter() - start,
        )
        return row, model

    def objective(self, trial):
        """Optuna objective: the reward, or `(accuracy, latency)`."""
        choices = self.space.sample(trial)
        row, model = self.evaluate(choices, f"trial {trial.number}")
        self.keep(row, model)
        for field in _TRIAL_FIELDS:
            trial.set_user_attr(field, getattr(row, field))
        trial.set_user_attr("choices", row.choices)
        if self.strategy == "mnasnet":
            return row.reward
        # Feasible when <= 0: the estimated latency over the target.
        set_constraints(
            trial,
            {"latency": (row.estimated_latency_ms - self.target_ms) / self.target_ms},
        )
        return row.accuracy, row.estimated_latency_ms


def search_architecture(
    *,
    space,
    data,
    validation_data,
    latency_target_ms=None,
    reference=None,
    strategy="mnasnet",
    latency_weight=MNASNET_WEIGHT,
    trials=20,
    epochs=1,
    batch_size=64,
    learning_rate=1e-3,
    quantization="none",
    num_threads=1,
    latency_fn=None,
    latency_runs=100,
    path=None,
    storage=None,
    study_name=None,
    workers=1,
    seed=0,
    verbose=1,
):
    """Searches `space` for the most accurate model within a LiteRT latency.

    Each trial draws an architecture from `space` (Optuna's TPE sampler),
    builds it, trains it `epochs` on `data` (Adam, sparse categorical
    cross-entropy on logits, the same seed for every trial) and scores
    top-1 accuracy on `validation_data`; its `.tflite` file is timed in
    LiteRT side by side with `reference`'s (batch 1, median of 3 rounds of
    taking turns). Its latency is estimated as that ratio times the
    reference's latency measured at the start: noise on a shared machine
    hits both files alike. The most accurate trial within
    `latency_target_ms` (the highest reward when none is) is saved to
    `path` and returned (trained again when a worker process or an
    earlier run trained it).

    Args:
        space: A `SearchSpace`.
        data: `(x, y)` arrays to train each candidate on (integer labels).
            A subset of the full training set keeps trials short.
        validation_data: `(x, y)` arrays to score each candidate on.
        latency_target_ms: The latency to stay within, in ms per LiteRT
            call (batch 1). Defaults to `None`: `reference`'s latency.
        reference: A built Keras model timed beside every candidate, e.g.
            the hand-designed model to beat. Defaults to `None`: the
            space's `default_choices()` model (then `latency_target_ms`
            is required).
        strategy: `"mnasnet"` (TPE on MnasNet's reward) or `"pareto"`
            (multi-objective TPE, the target as a constraint). Defaults to
            `"mnasnet"`; the module docstring says why.
        latency_weight: MnasNet's exponent `w <= 0`, or a pair `(alpha,
            beta)` for within / over the target (`mnasnet_reward`).
            Defaults to `-0.07` (MnasNet's soft constraint); `(0, -1)` is
            their hard one, which spends trials closer to the target.
        trials: Trials to run; a resumed study runs only those it lacks.
            Defaults to `20`.
        epochs: Training epochs per candidate (and for the returned
            model). Defaults to `1`.
        batch_size: Training batch size. Defaults to `64`.
        learning_rate: Adam's learning rate. Defaults to `1e-3`.
        quantization: How candidates' files are exported to be timed:
            `"none"` (float32) or `"int8"` (calibrated on `data`); the
            reference's file is float32 either way. Defaults to `"none"`.
        num_threads: LiteRT threads for timing. Defaults to `1`.
        latency_fn: `fn(tflite_path) -> seconds` to time files elsewhere
            (a phone); picklable when `workers > 1`. Defaults to `None`.
        latency_runs: Timed runs per file and round. Defaults to `100`.
        path: Where to save the returned model (`.keras`). Defaults to
            `None`: `searched.keras` in a new temporary folder (kept).
        storage: Where the trials are kept: `None` (memory), a journal file
            path, a `.db` path or a database URL (see `storage_from`).
        study_name: The Optuna study's name, to resume or share one.
        workers: Processes that run trials of the one study at the same
            time; latencies timed side by side in several processes
            disturb each other, the ratios less than the times. Defaults
            to `1`.
        seed: Seeds the sampler (worker `i` uses `seed + 1 + i`) and every
            training. Defaults to `0`.
        verbose: `0` silent, `1` a line per trial. Defaults to `1`.

    Returns:
        `(model, report)`: the found model, trained, and an
        `ArchitectureSearchReport` (every trial with accuracy, latency,
        MACs and parameters; the Pareto front; the search's wall time).

    Raises:
        ValueError: On bad arguments; the message says which.

    Example:

    ```python
    space = SearchSpace((28, 28, 1), 10)
    model, report = search_architecture(
        space=space, data=(x_train[:10000], y_train[:10000]),
        validation_data=(x_val, y_val), reference=small_mobilenet_v2(...),
        trials=15, epochs=2)
    print(report)
    ```
    """
    _check_arguments(space, data, validation_data, strategy, quantization)
    latency_target_ms = _check_target(latency_target_ms, reference)
    latency_weight = _check_weight(latency_weight)
    trials = argument_validation.positive_int("trials", trials)
    epochs = argument_validation.positive_int("epochs", epochs)
    workers = argument_validation.positive_int("workers", workers)
    verbose = argument_validation.verbosity(verbose)
    if path is not None and not os.fspath(path).endswith(".keras"):
        raise ValueError(f"`path` must end in `.keras`. Received: path={path!r}")
    say = print if verbose else (lambda *_: None)
    start = time.perf_counter()
    if reference is None:
        reference = space.build(space.default_choices(), name="reference")
    settings = dict(
        strategy=strategy,
        latency_weight=latency_weight,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        quantization=quantization,
        num_threads=num_threads,
        latency_fn=latency_fn,
        latency_runs=latency_runs,
    )
    problem = ArchitectureSearchProblem(
        space,
        data,
        validation_data,
        reference,
        target_ms=latency_target_ms,
        **settings,
    )
    settings.update(target_ms=problem.target_ms, reference_ms=problem.reference_ms)
    say(
        f"Architecture search ({strategy}): {space.size:,} architectures, "
        f"target {problem.target_ms:.4f} ms (reference {reference.name!r}: "
        f"{problem.reference_ms:.4f} ms, {problem.meter.setting}), "
        f"{trials} trials, {workers} worker(s)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        if workers > 1 and storage is None:
            storage = os.path.join(scratch, "study.log")
        if workers > 1 and study_name is None:
            study_name = "architecture_search"
        study = _open(storage, study_name, seed, strategy, trials)
        remaining = trials - completed_trials(study)
        if remaining > 0 and workers == 1:
            study.optimize(
                problem.objective,
                n_trials=remaining,
                callbacks=[_Progress(trials, problem, say)],
            )
        elif remaining > 0:
            _run_workers(
                problem,
                reference,
                settings,
                storage,
                study_name,
                (trials, remaining),
                workers,
                scratch,
                verbose,
            )
            study = _open(storage, study_name, seed, strategy, trials)
        rows = tuple(
            _trial_row(trial)
            for trial in study.trials
            if trial.state == optuna.trial.TrialState.COMPLETE
        )
    best = best_of(rows)
    if problem.kept.get(best.name) is not None:
        model, accuracy = problem.kept[best.name], best.accuracy
    else:  # Trained in a worker process, or before a resume.
        model, accuracy = problem.train(best.choices)
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="tfcompress_nas_"), "searched.keras")
    model.save(path)
    report = ArchitectureSearchReport(
        strategy=strategy,
        latency_target_ms=problem.target_ms,
        latency_weight=latency_weight,
        reference_latency_ms=problem.reference_ms,
        measurement=problem.meter.setting,
        space_size=space.size,
        rows=rows,
        pareto=pareto_front(rows),
        best=best.name,
        final_accuracy=accuracy,
        path=os.fspath(path),
        epochs=epochs,
        train_examples=len(problem.x),
        workers=workers,
        seconds=time.perf_counter() - start,
    )
    say(
        f"Best: {best.name} ({best.description}), accuracy {best.accuracy:.4f},"
        f" {best.estimated_latency_ms:.4f} ms"
        + ("" if best.within_target else " (no trial met the target)")
        + f"; returned model: {accuracy:.4f}; {report.seconds:.0f} s"
    )
    return model, report


def best_of(rows):
    """The most accurate row within the target; the highest reward when
    none is."""
    within = [row for row in rows if row.within_target]
    if within:
        return max(within, key=lambda row: row.accuracy)
    return max(rows, key=lambda row: row.reward)


def _open(storage, study_name, seed, strategy, trials):
    # A quarter of the trials (3 to 10) drawn at random before TPE models.
    startup = min(10, max(3, trials // 4))
    if strategy == "pareto":
        return open_study(
            storage,
            study_name,
            seed,
            directions=["maximize", "minimize"],
            startup_trials=startup,
            constrained=True,
        )
    return open_study(storage, study_name, seed, startup_trials=startup)


class _Progress:
    """Optuna callback: one line per finished trial."""

    def __init__(self, trials, problem, say, prefix=""):
        self.trials, self.problem, self.say, self.prefix = trials, problem, say, prefix

    def __call__(self, study, trial):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        row = _trial_row(trial)
        flag = "" if row.within_target else " over target"
        self.say(
            f"  {self.prefix}trial {trial.number + 1}/{self.trials}: "
            f"{row.description}: accuracy {row.accuracy:.4f}, "
            f"{row.estimated_latency_ms:.4f} ms ({row.latency_ratio:.2f}x "
            f"reference{flag}), {row.macs:,} MACs, {row.params:,} params, "
            f"reward {row.reward:.4f}, {row.seconds:.1f} s"
        )


def _trial_row(trial):
    attrs = trial.user_attrs
    return ArchitectureTrial(
        name=f"trial {trial.number}",
        choices=dict(attrs["choices"]),
        **{
            field: attrs[field]
            for field in _TRIAL_FIELDS
        },
    )


# Worker processes.


def _run_workers(
    problem, reference, settings, storage, study_name, trials, workers, scratch, verbose
):
    """Runs `workers` processes on the one study, sharing out the trials
    left (`trials` is `(total, remaining)`)."""
    total, remaining = trials
    storage = shared_storage(storage)
    reference_path, data_path = save_worker_inputs(scratch, reference, problem)
    threads = worker_threads(workers)
    arguments = [
        (
            index,
            problem.space,
            reference_path,
            data_path,
            settings,
            storage,
            study_name,
            share,
            threads,
            verbose,
        )
        for index, share in enumerate(trial_shares(total, remaining, workers))
    ]
    run_worker_processes(_worker_main, arguments)


def _worker_main(
    index,
    space,
    reference_path,
    data_path,
    settings,
    storage,
    study_name,
    trials,
    threads,
    verbose,
):
    """Entry point of one worker process (spawned: a fresh interpreter)."""
    reference, data, validation_data = load_worker_inputs(
        reference_path, data_path, threads
    )
    problem = ArchitectureSearchProblem(
        space, data, validation_data, reference, **settings
    )
    total, share = trials
    study = _open(
        storage, study_name, settings["seed"] + 1 + index, settings["strategy"], total
    )

    def say(line):
        if verbose:
            print(line, flush=True)

    study.optimize(
        problem.objective,
        n_trials=share,
        callbacks=[_Progress(total, problem, say, f"worker {index}: ")],
    )


# Argument checks.


def _check_arguments(space, data, validation_data, strategy, quantization):
    if not isinstance(space, SearchSpace):
        raise ValueError(
            "`space` must be a tfcompress.search.SearchSpace. Received: "
            f"space={space!r}"
        )
    if strategy not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES}. Received: "
            f"strategy={strategy!r}"
        )
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "`quantization` (how candidates are exported to be timed) must "
            f"be one of {QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    for name, value in (("data", data), ("validation_data", validation_data)):
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError(
                f"`{name}` must be a tuple `(x, y)` of arrays. Received: "
                f"{type(value).__name__}"
            )
        x, y = (np.asarray(v) for v in value)
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(
                f"`{name}` must hold as many labels as examples, at least "
                f"one. Received: {len(x)} examples, {len(y)} labels"
            )
        if tuple(x.shape[1:]) != space.input_shape:
            raise ValueError(
                f"`{name}`'s examples must have the space's input_shape "
                f"{space.input_shape}. Received: {tuple(x.shape[1:])}"
            )
        if y.ndim != 1 or y.min() < 0 or y.max() >= space.num_classes:
            raise ValueError(
                f"`{name}`'s labels must be integers in [0, "
                f"{space.num_classes}) (the space's num_classes), one per "
                f"example. Received: shape {y.shape}, range "
                f"[{y.min()}, {y.max()}]"
            )


def _check_target(target, reference):
    if target is None:
        if reference is None:
            raise ValueError(
                "Give a `latency_target_ms`, or a `reference` model whose "
                "latency is the target."
            )
        return None
    if (
        isinstance(target, bool)
        or not isinstance(target, (int, float))
        or math.isnan(target)
        or not target > 0
    ):
        raise ValueError(
            "`latency_target_ms` must be a positive number of milliseconds "
            f"per LiteRT call. Received: latency_target_ms={target!r}"
        )
    return float(target)


def _check_weight(weight):
    pair = tuple(weight) if isinstance(weight, (tuple, list)) else (weight,)
    if len(pair) not in (1, 2) or any(
        isinstance(w, bool)
        or not isinstance(w, (int, float))
        or math.isnan(w)
        or w > 0
        for w in pair
    ):
        raise ValueError(
            "`latency_weight` must be a number <= 0, or a pair (alpha, beta) "
            "of them (MnasNet uses -0.07, or (0, -1) as a hard constraint; 0 "
            f"ignores latency). Received: latency_weight={weight!r}"
        )
    return float(pair[0]) if len(pair) == 1 else tuple(float(w) for w in pair)
