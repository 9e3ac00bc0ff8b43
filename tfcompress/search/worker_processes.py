"""Worker processes that share one Optuna study.

Both searches run `workers` processes on one study in shared storage;
each gets its share of the trials left, so the study ends with exactly
the number asked for. Spawned, not forked: TensorFlow's runtime does not
survive a fork.
"""

import multiprocessing


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
