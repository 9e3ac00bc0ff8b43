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
    storage, study_name, seed, direction="maximize", directions=None, startup_trials=None
):
    """Creates the study, or loads it when its storage holds it already.

    The sampler is TPE; with `directions` (e.g. `["maximize",
    "minimize"]`) the study is multi-objective. `startup_trials` random
    trials come first (Optuna's default, 10, when `None`).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = {"direction": direction} if directions is None else {
        "directions": directions
    }
    startup = {} if startup_trials is None else {"n_startup_trials": startup_trials}
    return optuna.create_study(
        storage=storage_from(storage),
        study_name=study_name,
        sampler=optuna.samplers.TPESampler(seed=seed, **startup),
        load_if_exists=study_name is not None,
        **objectives,
    )


def completed_trials(study):
    """The number of the study's trials that completed (all workers')."""
    return sum(
        trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials
    )
