"""Where a search keeps its trials: an Optuna study and its storage.

Optuna is the search engine (TPE, multi-objective samplers, pruners), not a
home-made controller: its storage lets one study run in several processes
on one machine (a journal file) or on many machines (a database URL), and a
study interrupted at any point resumes from what the storage holds.
"""

import os

import optuna


def storage_from(storage):
    """An Optuna storage for `storage`.

    Args:
        storage: `None` (in memory: one process, nothing kept), a path to a
            journal file (`"search.log"`: any number of processes on this
            machine, resumable), a path ending in `.db` / `.sqlite`
            (SQLite), a database URL (`"sqlite:///..."`,
            `"postgresql://..."`, for many machines), or an Optuna storage.
    """
    if storage is None or not isinstance(storage, (str, os.PathLike)):
        return storage
    storage = os.fspath(storage)
    if "://" in storage:
        return storage
    if storage.endswith((".db", ".sqlite", ".sqlite3")):
        return f"sqlite:///{os.path.abspath(storage)}"
    directory = os.path.dirname(os.path.abspath(storage))
    if not os.path.isdir(directory):
        raise ValueError(
            f"The folder of the study's journal file {storage!r} does not "
            "exist. Create it, or pass another `storage` path."
        )
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)
    )


def open_study(
    storage,
    study_name,
    seed,
    direction="maximize",
    directions=None,
    startup_trials=None,
    constrained=False,
):
    """Creates the study, or loads it when its storage holds it already.

    The sampler is TPE; with `directions` (e.g. `["maximize",
    "minimize"]`) the study is multi-objective. `startup_trials` random
    trials come first (Optuna's default, 10, when `None`). With
    `constrained`, trials report constraints with `set_constraint`, which
    Optuna 4 lacks: there they go to the trial's `"constraints"` user
    attribute (`set_constraints`), which the sampler then reads.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {} if startup_trials is None else {"n_startup_trials": startup_trials}
    if constrained and not hasattr(optuna.trial.Trial, "set_constraint"):
        sampler["constraints_func"] = _user_constraints
    objectives = (
        {"direction": direction} if directions is None else {"directions": directions}
    )
    return optuna.create_study(
        storage=storage_from(storage),
        study_name=study_name,
        sampler=optuna.samplers.TPESampler(seed=seed, **sampler),
        load_if_exists=study_name is not None,
        **objectives,
    )


def set_constraints(trial, constraints):
    """Reports `{name: value}` constraints (feasible when every value is
    <= 0) on any Optuna >= 4 (see `open_study`)."""
    trial.set_user_attr("constraints", list(constraints.values()))
    if hasattr(trial, "set_constraint"):
        for name, value in constraints.items():
            trial.set_constraint(name, value)


def _user_constraints(trial):
    return trial.user_attrs["constraints"]


def completed_trials(study):
    """The number of the study's trials that completed (all workers')."""
    return sum(
        trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials
    )
