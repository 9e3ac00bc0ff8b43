"""Hardware-aware architecture search vs the hand-designed small MobileNetV2.

On Fashion-MNIST: `tfcompress.search.search_architecture` searches the
default `SearchSpace` (per stage a block type among depthwise-separable,
inverted residual, shuffle and partial convolution; kernel, expansion,
width, depth) under a LiteRT latency target equal to `small_mobilenet_v2`'s
(float32, batch 1, 1 thread), every candidate timed side by side with it.
Each trial trains on a subset for a short time and is scored on held-out
training images. The found architecture and `small_mobilenet_v2` are then
trained from scratch with the same seeds, epochs and data, and scored on
the 10,000 test images; their float32 files are timed side by side.

    .venv/bin/python benchmarks/nas.py [--trials 12] [--search-examples 5000]
        [--search-epochs 1] [--final-examples 10000] [--final-epochs 2]
        [--final-schedule constant|cosine]
        [--seeds 0 1 2] [--latency-weight -0.07 | 0 -1] [--strategy mnasnet]
        [--name nas] [--search-from benchmarks/results/nas.json]
        [--reference-from benchmarks/results/nas_final20k.json] [--quick]

Writes benchmarks/results/<name>.md and .json (after the search and after
each seed, so an interrupted run keeps what it measured).
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
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.analysis import profile  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.litert import compare_latency  # noqa: E402
from tfcompress.search import SearchSpace  # noqa: E402
from tfcompress.search import search_architecture  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
VALIDATION = 5000  # The last training images: the search's validation set.


def trained(model, x, y, epochs, seed, schedule="constant"):
    """`model` trained as every search candidate is (Adam 1e-3, batch 64,
    no XLA), with `seed`; `schedule="cosine"` decays the learning rate to 0
    over the training, so the test top-1 is not that of whichever noisy last
    step a constant rate ends on (the seed spread is the must-show's bar)."""
    keras.utils.set_random_seed(seed)
    learning_rate = 1e-3
    if schedule == "cosine":
        steps = epochs * -(-len(x) // 64)
        learning_rate = keras.optimizers.schedules.CosineDecay(1e-3, steps)
    model.compile(keras.optimizers.Adam(learning_rate), LOSS, jit_compile=False)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def cell(text):
    """`text` for a Markdown table cell (architectures hold `|`)."""
    return text.replace("|", "\\|")


def spread(values):
    return max(values) - min(values)


def write(results, name):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{name}.md").write_text("\n".join(markdown(results)) + "\n")
    log(f"Wrote {RESULTS / name}.md and .json")


def markdown(results):
    search = results["search"]
    lines = [
        "# Hardware-aware architecture search: Fashion-MNIST",
        "",
        f"Search: `search_architecture` ({search['strategy']}: "
        + (
            "Optuna TPE on MnasNet's reward accuracy x (latency / target)^w, "
            f"w = {search['latency_weight']}"
            if search["strategy"] == "mnasnet"
            else "Optuna multi-objective TPE, accuracy up, latency down, the "
            "target as a constraint"
        )
        + "),"
        f" {search['trials']} trials of a space of {search['space_size']:,} "
        f"architectures, each trained {search['epochs']} epoch(s) on "
        f"{search['train_examples']:,} training images and scored on "
        f"{VALIDATION:,} held-out training images. Target: "
        f"`small_mobilenet_v2`'s latency ({search['latency_target_ms']:.4f} ms; "
        f"{search['measurement']}), every candidate timed side by side with "
        f"it. Search cost: {search['seconds']:.0f} s wall-clock on this "
        "shared 2-core machine.",
        "",
        *(
            [f"(Search reused from `{search['reused_from']}`.)", ""]
            if "reused_from" in search
            else []
        ),
        "Trials (validation accuracy after the short training; latency = "
        "ratio to the reference in the same run x the reference's time at "
        "the start; `*` returned, `P` on the Pareto front):",
        "",
        "| trial | accuracy | latency ms | x reference | MACs | params | reward | architecture |",
        "|---|---|---|---|---|---|---|---|",
    ]
    pareto = set(search["pareto"])
    for row in search["rows"]:
        mark = (" *" if row["name"] == search["best"] else "") + (
            " P" if row["name"] in pareto else ""
        )
        lines.append(
            f"| {row['name']}{mark} | {row['accuracy']:.4f} | "
            f"{row['estimated_latency_ms']:.4f}"
            f"{'' if row['within_target'] else ' (over)'} | "
            f"{row['latency_ratio']:.3f} | {row['macs']:,} | {row['params']:,} | "
            f"{row['reward']:.4f} | {cell(row['description'])} |"
        )
    final = results.get("final")
    if final:
        lines += [
            "",
            f"Final comparison: both models trained from scratch "
            f"{final['epochs']} epoch(s) on {final['train_examples']:,} "
            "training images (Adam 1e-3, batch 64"
            + (", learning rate cosine-decayed to 0"
               if final.get("schedule") == "cosine" else "")
            + f"; seeds {', '.join(map(str, final['seeds']))}), "
            "top-1 on the 10,000 test images (Keras). Latency: float32 "
            f"`.tflite`, batch 1, 1 thread, {final['latency_rounds']} "
            "alternating rounds (median), the two files side by side.",
            "",
            "| model | top-1 mean | spread (max-min) | per seed | LiteRT ms | x small_mobilenet_v2 | MACs | params |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key in ("small_mobilenet_v2", "found"):
            m = final[key]
            accs = m["test_accuracy"]
            lines.append(
                f"| {cell(m['label'])} | {100 * statistics.mean(accs):.2f}% | "
                f"{100 * spread(accs):.2f} pt | "
                + ", ".join(f"{100 * a:.2f}" for a in accs)
                + f" | {m['latency_ms']:.4f} | {m['latency_ratio']:.3f} | "
                f"{m['macs']:,} | {m['params']:,} |"
            )
        if "reused_from" in final["small_mobilenet_v2"]:
            lines += [
                "",
                "`small_mobilenet_v2`'s accuracies are those of "
                f"`{final['small_mobilenet_v2']['reused_from']}` (same seeds, "
                "data and training); its latency is measured in this run.",
            ]
        lines += ["", final["verdict"]]
    return lines + command_lines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--search-examples", type=int, default=5000)
    parser.add_argument("--search-epochs", type=int, default=1)
    parser.add_argument("--final-examples", type=int, default=10000)
    parser.add_argument("--final-epochs", type=int, default=2)
    parser.add_argument(
        "--final-schedule", default="constant", choices=["constant", "cosine"],
        help="the final training's learning rate: Adam 1e-3 throughout, or "
        "cosine-decayed from 1e-3 to 0",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--latency-rounds", type=int, default=5)
    parser.add_argument(
        "--latency-weight", type=float, nargs="+", default=[-0.07],
        help="MnasNet's w, or alpha beta (0 -1: their hard constraint)",
    )
    parser.add_argument("--strategy", default="mnasnet", choices=["mnasnet", "pareto"])
    parser.add_argument("--name", default="nas", help="results file name")
    parser.add_argument(
        "--search-from", help="an earlier run's .json: reuse its search"
    )
    parser.add_argument(
        "--reference-from",
        help="an earlier run's .json: reuse small_mobilenet_v2's test top-1 "
        "of the seeds it has with the same final training",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    name = args.name
    weight = (
        args.latency_weight[0]
        if len(args.latency_weight) == 1
        else tuple(args.latency_weight)
    )
    if args.quick:
        args.trials, args.search_examples, args.final_examples = 2, 256, 256
        args.search_epochs = args.final_epochs = 1
        args.seeds, args.latency_rounds, name = [0, 1], 2, "nas_quick"

    (x_train, y_train), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir
    )
    x_val, y_val = x_train[-VALIDATION:], y_train[-VALIDATION:]
    x_train, y_train = x_train[:-VALIDATION], y_train[:-VALIDATION]
    log(f"Fashion-MNIST: {len(x_train)} train, {VALIDATION} validation, "
        f"{len(x_test)} test images")

    reference = build("mobilenet")
    space = SearchSpace((28, 28, 1), 10)
    with tempfile.TemporaryDirectory() as tmp:
        if args.search_from:
            # The search of an earlier run, for a longer final comparison.
            search = json.loads(pathlib.Path(args.search_from).read_text())["search"]
            results = {"search": {**search, "reused_from": args.search_from}}
            best = next(r for r in search["rows"] if r["name"] == search["best"])
            choices, description = best["choices"], best["description"]
        else:
            _, report = search_architecture(
                space=space,
                data=(x_train[: args.search_examples], y_train[: args.search_examples]),
                validation_data=(x_val, y_val),
                reference=reference,
                trials=args.trials,
                epochs=args.search_epochs,
                strategy=args.strategy,
                latency_weight=weight,
                path=os.path.join(tmp, "found.keras"),
                seed=0,
            )
            print(report)
            results = {"search": {**report.to_dict(), "trials": len(report.rows)}}
            choices = report.best_row.choices
            description = report.best_row.description
        write(results, name)

        x_final, y_final = x_train[: args.final_examples], y_train[: args.final_examples]
        final = {
            "epochs": args.final_epochs,
            "schedule": args.final_schedule,
            "train_examples": len(x_final),
            "seeds": [],
            "latency_rounds": args.latency_rounds,
            "small_mobilenet_v2": {"label": "small_mobilenet_v2 (hand-designed)",
                                   "test_accuracy": []},
            "found": {"label": f"found: {description}",
                      "choices": choices, "test_accuracy": []},
        }
        for key, model in (("small_mobilenet_v2", build("mobilenet")),
                           ("found", space.build(choices))):
            cost = profile(model)
            final[key]["macs"], final[key]["params"] = int(cost.macs), int(cost.params)
            final[key]["path"] = to_tflite(
                model, os.path.join(tmp, f"{key}.tflite"), verbose=0
            ).path
        paths = [final[k]["path"] for k in ("small_mobilenet_v2", "found")]
        ms = compare_latency(paths, num_runs=300, rounds=args.latency_rounds)
        for key in ("small_mobilenet_v2", "found"):
            final[key]["latency_ms"] = ms[os.fspath(final[key].pop("path"))]
            final[key]["latency_ratio"] = (
                final[key]["latency_ms"] / ms[os.fspath(paths[0])]
            )
        log(f"LiteRT side by side: {ms}")
        for seed in args.seeds:
            for key, model in (("small_mobilenet_v2", build("mobilenet")),
                               ("found", space.build(choices))):
                earlier = earlier_reference(args, final, seed) if key != "found" else None
                if earlier is not None:
                    final[key]["test_accuracy"].append(earlier)
                    final[key]["reused_from"] = args.reference_from
                    log(f"seed {seed} {key}: test top-1 {earlier:.4f} (from "
                        f"{args.reference_from})")
                    continue
                start = time.perf_counter()
                model = trained(
                    model, x_final, y_final, args.final_epochs, seed,
                    args.final_schedule,
                )
                accuracy = top1(model, x_test, y_test)
                final[key]["test_accuracy"].append(accuracy)
                log(f"seed {seed} {key}: test top-1 {accuracy:.4f} "
                    f"({time.perf_counter() - start:.0f} s)")
            final["seeds"].append(seed)
            final["verdict"] = verdict(final)
            results["final"] = final
            write(results, name)
    log(final["verdict"])


def earlier_reference(args, final, seed):
    """`small_mobilenet_v2`'s test top-1 for `seed` from an earlier run with
    the same final training, or `None` (then it is trained here)."""
    if not args.reference_from:
        return None
    earlier = json.loads(pathlib.Path(args.reference_from).read_text()).get("final")
    if (
        not earlier
        or seed not in earlier["seeds"]
        or (earlier["epochs"], earlier["train_examples"],
            earlier.get("schedule", "constant"))
        != (final["epochs"], final["train_examples"], final["schedule"])
    ):
        return None
    return earlier["small_mobilenet_v2"]["test_accuracy"][earlier["seeds"].index(seed)]


def verdict(final):
    ref, found = final["small_mobilenet_v2"], final["found"]
    gain = statistics.mean(found["test_accuracy"]) - statistics.mean(
        ref["test_accuracy"]
    )
    noise = max(spread(found["test_accuracy"]), spread(ref["test_accuracy"]))
    faster = found["latency_ratio"] <= 1.0
    beats = gain > noise and faster
    return (
        f"Found vs small_mobilenet_v2: {100 * gain:+.2f} pt top-1 (largest seed "
        f"spread {100 * noise:.2f} pt), latency {found['latency_ratio']:.3f}x "
        f"over {len(final['seeds'])} seed(s): "
        + ("beats it at the same or lower latency by more than the seed spread."
           if beats else "does NOT beat it by more than the seed spread at the "
           "same or lower latency.")
    )


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
