"""Per-layer channel sparsity search vs uniform sparsity, at one MACs budget.

For a plain CNN and a small MobileNetV2-style model on Fashion-MNIST: a
dense model is trained; then, for each of 3 seeds,
`tfcompress.search.search_channel_sparsity` searches each channel group's
sparsity under `Budget(macs_ratio=0.5)` (Optuna TPE, every candidate fitted
to the budget, scored by validation accuracy after a short fine-tune), and
uniform sparsity fitted to the same budget is the baseline. What the
search returns (its best trial, or uniform sparsity when no trial beat
uniform on validation) and the uniform model are then fine-tuned the same
longer way, with the same seed, and scored on the 10,000 test images. Last, the same search
runs with 1 and with 2 worker processes sharing one study, for the
speed-up.

`--decompose` lets each trial also pick which layers to decompose and at
what kept energy (`search_channel_sparsity(..., decompose="auto")`); the
searched model is then pruned and decomposed.

`--latency-ratio 0.5` bounds the float32 `.tflite` file's LiteRT latency (1
thread, timed side by side with the dense model's file) instead of the
MACs: every candidate is exported and timed while it is fitted to the
budget, and the final uniform and searched files are timed side by side
with the dense file once more.

    .venv/bin/python benchmarks/budget_search.py [--models cnn mobilenet]
        [--trials 12] [--seeds 0 1 2] [--macs-ratio 0.5 | --latency-ratio 0.5]
        [--quick]

Writes benchmarks/results/budget_search.md and .json.
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.decomposition import decompose  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.litert import compare_latency  # noqa: E402
from tfcompress.pruning import prune_channels  # noqa: E402
from tfcompress.search import Budget  # noqa: E402
from tfcompress.search import measure_cost  # noqa: E402
from tfcompress.search import search_channel_sparsity  # noqa: E402
from tfcompress.search.candidate_fine_tuning import LEARNING_RATE_DECAYS  # noqa: E402
from tfcompress.search.candidate_fine_tuning import fine_tune  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def fine_tuned(model, sparsity, ranks, x, y, epochs, seed, schedule="none"):
    """`model` pruned by `sparsity` (then decomposed by `ranks`, as the
    search built it), fine-tuned `epochs` with `seed`; and its MACs and
    parameters against `model`'s.

    `schedule="cosine"` decays Adam's learning rate from 1e-3 to 0 over the
    fine-tune: the last steps at a constant rate move test accuracy by a
    point or more from seed to seed on a heavily pruned model, which hides
    the difference between two allocations."""
    pruned, _ = prune_channels(model, sparsity=sparsity, verbose=0)
    if ranks:
        pruned, _ = decompose(pruned, rank=ranks, verbose=0)
    cost, dense = measure_cost(pruned), measure_cost(model)
    fine_tune(
        pruned,
        x,
        y,
        epochs=epochs,
        batch_size=64,
        seed=seed,
        learning_rate_decay=schedule,
    )
    return pruned, {
        "macs_ratio": cost.macs / dense.macs,
        "params_ratio": cost.params / dense.params,
    }


def budget_of(args):
    if args.latency_ratio:
        return Budget(latency_ratio=args.latency_ratio)
    return Budget(macs_ratio=args.macs_ratio)


def run_model(kind, args, data, tmp):
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    model = compile_keras3(build(kind), 1e-3)
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    dense_accuracy = top1(model, x_test, y_test)
    log(f"{kind}: dense test accuracy {dense_accuracy:.4f}")
    dense_file = to_tflite(
        model, os.path.join(tmp, f"{kind}_dense.tflite"), verbose=0
    ).path
    budget = budget_of(args)
    search_x = x_train[: args.search_examples]
    search_y = y_train[: args.search_examples]
    runs = []
    for seed in args.seeds:
        start = time.perf_counter()
        _, report = search_channel_sparsity(
            model,
            budget=budget,
            data=(search_x, search_y),
            validation_data=(x_val, y_val),
            trials=args.trials,
            fine_tune_epochs=1,
            learning_rate_decay=args.search_schedule,
            seed=seed,
            decompose="auto" if args.decompose else None,
            verbose=1,
        )
        search_seconds = time.perf_counter() - start
        final = {}
        files = {}
        best = report.row(report.best)
        for label, sparsity, ranks in (
            ("uniform", report.uniform.sparsity, {}),
            ("searched", best.sparsity, best.ranks),
        ):
            pruned, ratios = fine_tuned(
                model,
                sparsity,
                ranks,
                x_train,
                y_train,
                args.fine_tune_epochs,
                seed,
                args.fine_tune_schedule,
            )
            final[label] = {
                "test_accuracy": top1(pruned, x_test, y_test),
                **ratios,
                "sparsity": sparsity,
                "ranks": ranks,
            }
            if args.latency_ratio:
                files[label] = to_tflite(
                    pruned, os.path.join(tmp, f"{label}.tflite"), verbose=0
                ).path
            log(
                f"{kind} seed {seed} {label}: test "
                f"{final[label]['test_accuracy']:.4f}, MACs "
                f"{final[label]['macs_ratio']:.3f}x"
            )
        if args.latency_ratio:
            # The final files, timed side by side with the dense file.
            ms = compare_latency([dense_file, *files.values()], num_runs=200, rounds=5)
            for label, path in files.items():
                final[label]["latency_ratio"] = ms[path] / ms[dense_file]
        runs.append(
            {
                "seed": seed,
                "search_seconds": search_seconds,
                "trials": len(report.rows),
                "search_validation": {
                    "uniform": report.uniform.accuracy,
                    # What the search returns: its best trial, or uniform
                    # when no trial beat it (then "searched" is uniform).
                    "best": report.best_accuracy,
                    "best_trial": report.best_trial_accuracy,
                    "returned": report.best,
                },
                **final,
            }
        )
    return {
        "model": kind,
        "dense_test_accuracy": dense_accuracy,
        "budget": str(budget),
        "runs": runs,
    }


def speed_up(kind, args, data, tmp):
    """Wall time of one search with 1 and with 2 worker processes."""
    (x_train, y_train), (x_val, y_val), _ = data
    keras.utils.set_random_seed(0)
    model = compile_keras3(build(kind), 1e-3)
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    seconds = {}
    for workers in (1, 2):
        start = time.perf_counter()
        search_channel_sparsity(
            model,
            budget=budget_of(args),
            data=(x_train[: args.search_examples], y_train[: args.search_examples]),
            validation_data=(x_val, y_val),
            trials=args.speed_up_trials,
            fine_tune_epochs=1,
            storage=os.path.join(tmp, f"speed_up_{workers}.log"),
            study_name=f"speed_up_{workers}",
            workers=workers,
            verbose=1,
        )
        seconds[workers] = time.perf_counter() - start
        log(f"{kind}: {workers} worker(s): {seconds[workers]:.0f} s")
    return {
        "model": kind,
        "trials": args.speed_up_trials,
        "seconds_1_worker": seconds[1],
        "seconds_2_workers": seconds[2],
        "speed_up": seconds[1] / seconds[2],
    }


def spread(values):
    return max(values) - min(values)


def markdown(results, speed, args):
    lines = [
        "# Per-layer channel sparsity search vs uniform sparsity",
        "",
        f"Fashion-MNIST. Budget: {results[0]['budget']} (of the dense "
        + (
            "model's float32 file's LiteRT latency, 1 thread, timed side by "
            "side with it; every candidate exported and timed while it is "
            "fitted to the budget, the final files timed again side by side "
            "with the dense file"
            if args.latency_ratio
            else "model's MACs"
        )
        + f"). Dense models trained {args.epochs} epoch(s) on "
        f"{args.train} images. Search: {args.trials} Optuna TPE trials per "
        f"seed, each candidate fitted to the budget, pruned (L1)"
        + (
            ", each layer decomposed or not at the energy the trial chose "
            '(`decompose="auto"`; the uniform baseline is not decomposed),'
            if args.decompose
            else ","
        )
        + " fine-tuned "
        f"1 epoch on {args.search_examples} images"
        + (
            " (learning rate decayed to 0 on a cosine)"
            if args.search_schedule == "cosine"
            else ""
        )
        + f" and scored on "
        f"{args.validation} validation images (held out of training). Then "
        f"what the search returns (its best trial, or uniform sparsity when "
        f"no trial beat uniform on validation) and the uniform model are "
        f"fine-tuned "
        f"{args.fine_tune_epochs} epoch(s) on the training images with the "
        "same seed"
        + (
            " (Adam, learning rate decayed from 1e-3 to 0 on a cosine)"
            if args.fine_tune_schedule == "cosine"
            else ""
        )
        + " and scored on the 10,000 test images.",
        "",
        "| model | dense | uniform (mean, spread) | searched (mean, spread) "
        "| gain | gain > spread | MACs uniform / searched "
        + ("| latency uniform / searched " if args.latency_ratio else "")
        + "| search time |",
        "|---|---|---|---|---|---|---|"
        + ("---|" if args.latency_ratio else "")
        + "---|",
    ]
    for result in results:
        uniform = [r["uniform"]["test_accuracy"] for r in result["runs"]]
        searched = [r["searched"]["test_accuracy"] for r in result["runs"]]
        gain = statistics.mean(searched) - statistics.mean(uniform)
        largest_spread = max(spread(uniform), spread(searched))
        macs = (
            f"{statistics.mean(r['uniform']['macs_ratio'] for r in result['runs']):.3f}x"
            f" / {statistics.mean(r['searched']['macs_ratio'] for r in result['runs']):.3f}x"
        )
        if args.latency_ratio:
            macs += " | " + " / ".join(
                f"{statistics.mean(r[label]['latency_ratio'] for r in result['runs']):.3f}x"
                for label in ("uniform", "searched")
            )
        seconds = statistics.mean(r["search_seconds"] for r in result["runs"])
        lines.append(
            f"| {result['model']} | {result['dense_test_accuracy']:.2%} | "
            f"{statistics.mean(uniform):.2%} ({spread(uniform):.2%}) | "
            f"{statistics.mean(searched):.2%} ({spread(searched):.2%}) | "
            f"{gain:+.2%} | {'yes' if gain > largest_spread else 'no'} | "
            f"{macs} | {seconds:.0f} s |"
        )
    lines += [
        "",
        "Per seed:",
        "",
        "| model | seed | uniform | searched | searched sparsity |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for run in result["runs"]:
            sparsity = ", ".join(
                f"{name} {value:.0%}"
                for name, value in run["searched"]["sparsity"].items()
            ) + "".join(
                f", {name} decomposed at {energy:.0%} energy"
                for name, energy in run["searched"].get("ranks", {}).items()
            )
            lines.append(
                f"| {result['model']} | {run['seed']} | "
                f"{run['uniform']['test_accuracy']:.2%} | "
                f"{run['searched']['test_accuracy']:.2%} | {sparsity} |"
            )
    if speed:
        lines += [
            "",
            f"Two worker processes sharing one study ({speed['model']}, "
            f"{speed['trials']} trials, {os.cpu_count()} cores): "
            f"{speed['seconds_1_worker']:.0f} s with 1 worker, "
            f"{speed['seconds_2_workers']:.0f} s with 2: "
            f"{speed['speed_up']:.2f}x.",
        ]
    return "\n".join(lines + command_lines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["cnn", "mobilenet"])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--validation", type=int, default=2000)
    parser.add_argument("--search-examples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fine-tune-epochs", type=int, default=2)
    parser.add_argument(
        "--fine-tune-schedule",
        choices=LEARNING_RATE_DECAYS,
        default="none",
        help="learning rate of the final fine-tune: 1e-3 throughout (none), "
        "or decayed from 1e-3 to 0 on a cosine",
    )
    parser.add_argument(
        "--search-schedule",
        choices=LEARNING_RATE_DECAYS,
        default="none",
        help="learning rate of each candidate's 1-epoch fine-tune in the "
        "search (learning_rate_decay)",
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--speed-up-trials", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--macs-ratio", type=float, default=0.5)
    parser.add_argument(
        "--latency-ratio",
        type=float,
        default=None,
        help="bound LiteRT latency (float32 file, 1 thread) instead of MACs",
    )
    parser.add_argument(
        "--decompose",
        action="store_true",
        help='search each layer\'s decomposition rank too (decompose="auto")',
    )
    parser.add_argument("--name", default="budget_search")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.validation, args.search_examples = 3000, 500, 1000
        args.epochs, args.fine_tune_epochs, args.trials = 1, 1, 3
        args.speed_up_trials, args.seeds = 2, [0, 1]
        args.name += "_quick"
    (x_train, y_train), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir
    )
    data = (
        (x_train[: args.train], y_train[: args.train]),
        (
            x_train[-args.validation :],
            y_train[-args.validation :],
        ),
        (x_test, y_test),
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_model(kind, args, data, tmp) for kind in args.models]
        speed = (
            speed_up(args.models[0], args, data, tmp) if args.speed_up_trials else None
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"results": results, "speed_up": speed}, indent=2)
    )
    text = markdown(results, speed, args)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
