"""Worker processes that share one Optuna study.

Both searches run `workers` processes on one study in shared storage;
each gets its share of the trials left, so the study ends with exactly
the number asked for. Spawned, not forked: TensorFlow's runtime does not
survive a fork.
"""

import multiprocessing
import os

import keras
import numpy as np


def trial_shares(total, remaining, workers):
    """`(total, share)` for each worker: `remaining` trials shared out."""
    return [
        (total, remaining // workers + (index < remaining % workers))
        for index in range(workers)
    ]


def run_worker_processes(target, arguments):
    """Runs `target(*args)` in one spawned process per `args` in `arguments`.

    Raises:
        RuntimeError: If a worker fails; the trials finished are kept in
            the study's storage.
    """
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in arguments]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(processes)} search workers failed (exit "
            f"codes {failed}); their output above says why. The trials they "
            "finished are kept in the storage: run again to resume."
        )


def shared_storage(storage):
    """`storage` as a path or URL the worker processes can all open.

    Raises:
        ValueError: For an in-memory storage (`None`, an Optuna storage
            object), which other processes cannot reach.
    """
    if not isinstance(storage, (str, os.PathLike)):
        raise ValueError(
            "`workers > 1` needs a `storage` the processes can share: a "
            "journal file path, a `.db` path or a database URL. Received: "
            f"storage={storage!r}"
        )
    return os.fspath(storage)


def save_worker_inputs(scratch, model, problem):
    """Writes `model` and the problem's data where spawned workers read them.

    Returns:
        `(model_path, data_path)`, for `load_worker_inputs`.
    """
    model_path = os.path.join(scratch, "model.keras")
    data_path = os.path.join(scratch, "data.npz")
    model.save(model_path)
    np.savez(
        data_path, x=problem.x, y=problem.y, x_val=problem.x_val, y_val=problem.y_val
    )
    return model_path, data_path


def worker_threads(workers):
    """TensorFlow threads per worker: the machine's cores shared out."""
    return max(1, (os.cpu_count() or 1) // workers)


def load_worker_inputs(model_path, data_path, threads):
    """In a worker: its TensorFlow threads set, then `save_worker_inputs`'s
    files read back as `(model, (x, y), (x_val, y_val))`."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    model = keras.saving.load_model(model_path)
    arrays = np.load(data_path)
    return (
        model,
        (arrays["x"], arrays["y"]),
        (arrays["x_val"], arrays["y_val"]),
    )
