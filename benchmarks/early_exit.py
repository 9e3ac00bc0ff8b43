"""Early exit on the small MobileNetV2-style model, Fashion-MNIST.

A `small_mobilenet_v2` (width 16) is trained; exits are attached after
chosen blocks (`tfcompress.dynamic.attach_exits`) and trained heads-only,
distilled from the final head (the backbone and final head unchanged);
`calibrate_exits` picks each exit's confidence threshold on validation
images (held out of training) so that the policy stays at most
`--max-drop` below the final head there. The stages are exported to
LiteRT (per-stage files and one file with a signature per stage; float32
and int8, calibrated per stage) and run by `EarlyExitRunner` on the
10,000 test images: top-1, exit rates and average MACs per example, beside
the full model's file. Latency per example (batch 1, 1 thread) is measured
for the full model's file and the early-exit runner in alternating rounds;
peak resident memory of staged loading vs loading the whole file is
measured by `measure_peak_memory` (a fresh process per mode).

    .venv/bin/python benchmarks/early_exit.py [--epochs 4] [--quick]

Writes benchmarks/results/early_exit.md and .json.
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
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.dynamic import EarlyExitRunner  # noqa: E402
from tfcompress.dynamic import attach_exits  # noqa: E402
from tfcompress.dynamic import calibrate_exits  # noqa: E402
from tfcompress.dynamic import export_stages  # noqa: E402
from tfcompress.dynamic import measure_peak_memory  # noqa: E402
from tfcompress.dynamic import train_exits  # noqa: E402
from tfcompress.export import LiteRTModel  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def per_example_latency(run_one, x, rounds):
    """Median over rounds of the mean seconds per example of `run_one`."""
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for example in x:
            run_one(example[None])
        means.append((time.perf_counter() - start) / len(x))
    return means


def bare_runner(path):
    """A callable running one example through `path`'s signature."""
    interpreter = Interpreter(model_path=path, num_threads=1)
    runner = interpreter.get_signature_runner()
    (name,) = runner.get_input_details()
    (output,) = runner.get_output_details()

    def run(example):
        return runner(**{name: example})[output]

    run.interpreter = interpreter  # kept alive with the runner
    return run


def wide_memory(args, tmp, x):
    """Peak memory, staged vs whole, of wider (untrained) copies of the
    model with the same exits, every example through every stage (no
    exit taken: the worst case for staged loading). Memory does not
    depend on the weights' values, so these are not trained."""
    rows = []
    for width in args.memory_widths:
        keras.utils.set_random_seed(0)
        wide = tfcompress.models.small_mobilenet_v2(
            (28, 28, 1), 10, width=width
        )
        with_exits, _ = attach_exits(wide, at=args.at)
        export = export_stages(
            with_exits, os.path.join(tmp, f"wide{width}"), verbose=0
        )
        never = [float("inf")] * len(args.at)
        memory = measure_peak_memory(
            {"whole file": (export.single_file, False),
             "staged": (export.paths, True)},
            x[:20], never, batch_size=1,
        )
        for row in memory.to_dict()["rows"]:
            rows.append({"width": width,
                         "params": int(with_exits.count_params()),
                         "single_file_bytes": export.single_file_bytes,
                         "largest_stage_bytes": max(
                             r.size_bytes for r in export.rows),
                         **row})
        log(f"width {width}:\n{memory}")
    return rows


def runner_summary(name, logits, exits, y, policy, num_exits):
    rates = np.bincount(exits, minlength=num_exits + 1) / len(exits)
    macs = np.array([row.macs for row in policy.rows])
    return {
        "name": name,
        "top1": float(np.mean(np.argmax(logits, -1) == y)),
        "exit_rates": rates.tolist(),
        "average_macs": float(macs[exits].mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--train", type=int, default=30000)
    parser.add_argument("--validation", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--exit-epochs", type=int, default=2)
    parser.add_argument("--at", nargs="*",
                        default=["separable", "block1", "block2"])
    parser.add_argument("--max-drop", type=float, default=0.003)
    parser.add_argument("--latency-examples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-examples", type=int, default=200)
    parser.add_argument("--memory-widths", type=int, nargs="*",
                        default=[64, 128])
    parser.add_argument("--name", default="early_exit")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.validation, args.epochs = 3000, 1000, 1
        args.exit_epochs, args.latency_examples, args.rounds = 1, 100, 1
        args.memory_examples, args.memory_widths = 50, [64]
        args.name += "_quick"
    started = time.perf_counter()
    (x_all, y_all), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir
    )
    x_train, y_train = x_all[: args.train], y_all[: args.train]
    x_val, y_val = x_all[-args.validation :], y_all[-args.validation :]

    keras.utils.set_random_seed(0)
    model = compile_keras3(build("mobilenet"), 1e-3)
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    full_keras = top1(model, x_test, y_test)
    log(f"full model: test top-1 {full_keras:.4f}")

    with_exits, exit_report = attach_exits(model, at=args.at)
    log(f"exits attached:\n{exit_report}")
    with_exits, training = train_exits(
        with_exits, x_train, y_train, mode="heads", epochs=args.exit_epochs,
        optimizer=keras.optimizers.Adam(3e-3),
        validation_data=(x_val, y_val),
    )
    log(f"exits trained:\n{training}")
    policy = calibrate_exits(
        with_exits, (x_val, y_val), max_accuracy_drop=args.max_drop
    )
    log(f"thresholds (validation):\n{policy}")

    results = {"args": vars(args), "full_keras_top1": full_keras,
               "exits": exit_report.to_dict(), "training": training.to_dict(),
               "policy": policy.to_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        full_path = os.path.join(tmp, "full.tflite")
        to_tflite(model, full_path, verbose=0)
        full_litert = LiteRTModel(full_path, num_threads=1)
        full_logits = full_litert.predict(x_test, batch_size=1000)
        full_top1 = float(np.mean(np.argmax(full_logits, -1) == y_test))
        exports = {
            "float32": export_stages(with_exits, os.path.join(tmp, "f32")),
            "int8": export_stages(
                with_exits, os.path.join(tmp, "int8"), quantization="int8",
                data=x_train[:1000], calibration_steps=200,
            ),
        }
        full_int8 = os.path.join(tmp, "full_int8.tflite")
        to_tflite(model, full_int8, quantization="int8",
                  data=x_train[:1000], calibration_steps=200, verbose=0)
        full_int8_logits = LiteRTModel(full_int8).predict(x_test, 1000)
        accuracy_rows = [{
            "name": "full model, float32", "top1": full_top1,
            "exit_rates": [0.0] * len(args.at) + [1.0],
            "average_macs": float(exit_report.backbone_macs),
        }, {
            "name": "full model, int8",
            "top1": float(np.mean(np.argmax(full_int8_logits, -1) == y_test)),
            "exit_rates": [0.0] * len(args.at) + [1.0],
            "average_macs": float(exit_report.backbone_macs),
        }]
        runners = {}
        for mode, export in exports.items():
            runner = EarlyExitRunner(export.single_file, policy.thresholds)
            runners[mode] = runner
            logits, exits = runner.predict(x_test, batch_size=1000)
            accuracy_rows.append(runner_summary(
                f"early exit, {mode}", logits, exits, y_test, policy,
                len(args.at)))
            log(f"{accuracy_rows[-1]}")
        results["accuracy"] = accuracy_rows
        results["files"] = {m: e.to_dict() for m, e in exports.items()}

        # Latency per example, batch 1, 1 thread, in alternating rounds.
        # The full model runs through a bare signature runner, the
        # cheapest Python path: the runner's own bookkeeping counts
        # against early exit.
        x_lat = x_test[: args.latency_examples]
        full_one = bare_runner(full_path)
        full_one_int8 = bare_runner(full_int8)
        per_stage_runner = EarlyExitRunner(
            exports["float32"].paths, policy.thresholds
        )
        contenders = {
            "full model, float32": full_one,
            "early exit, float32 (one file)":
                lambda e: runners["float32"].predict(e, 1),
            "early exit, float32 (per-stage files, all loaded)":
                lambda e: per_stage_runner.predict(e, 1),
            "full model, int8": full_one_int8,
            "early exit, int8 (one file)":
                lambda e: runners["int8"].predict(e, 1),
        }
        staged = EarlyExitRunner(
            exports["float32"].paths, policy.thresholds, staged=True
        )
        contenders["early exit, float32, staged loading"] = (
            lambda e: staged.predict(e, 1)
        )
        means = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, run_one in contenders.items():
                means[name] += per_example_latency(run_one, x_lat, 1)
        results["latency_ms"] = {
            name: 1000 * statistics.median(v) for name, v in means.items()
        }
        log(f"latency: {results['latency_ms']}")

        x_mem = x_test[: args.memory_examples]
        memory = measure_peak_memory(
            {
                "whole file, float32": (exports["float32"].single_file, False),
                "staged, float32": (exports["float32"].paths, True),
                "whole file, int8": (exports["int8"].single_file, False),
                "staged, int8": (exports["int8"].paths, True),
            },
            x_mem, policy.thresholds, batch_size=1,
        )
        log(f"peak memory:\n{memory}")
        results["peak_memory"] = memory.to_dict()
        results["peak_memory_wide"] = wide_memory(args, tmp, x_mem)
    results["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    text = markdown(results, args, policy, exit_report)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


def markdown(results, args, policy, exit_report):
    lines = [
        "# Early exit: small MobileNetV2-style model, Fashion-MNIST",
        "",
        f"`small_mobilenet_v2` (width 16) trained {args.epochs} epoch(s) on "
        f"{args.train} images; exits after {', '.join(args.at)} (global "
        "average pooling + Dense), trained heads-only for "
        f"{args.exit_epochs} epoch(s), distilled from the final head. "
        f"Thresholds chosen on {args.validation} validation images (held "
        f"out of training) for at most {100 * args.max_drop:.1f} point "
        "below the final head there; every figure below is on the 10,000 "
        "test images, run in LiteRT.",
        "",
        "Exits (MACs per example from `tfcompress.analysis.profile` of each "
        "stage):",
        "",
        "| exit | after | head MACs | MACs to exit | threshold |",
        "|---|---|---|---|---|",
    ]
    for row, decision in zip(exit_report.rows, policy.rows):
        threshold = ("never" if decision.threshold is None
                     else f"{decision.threshold:.4f}")
        lines.append(f"| {row.name} | {row.layer} | {row.head_macs:,} | "
                     f"{row.macs_to_exit:,} | {threshold} |")
    lines += [
        "",
        f"Validation: policy top-1 {policy.accuracy:.2%} vs final head "
        f"{policy.full_accuracy:.2%}; average MACs {policy.average_macs:,.0f}"
        f" = {policy.macs_ratio:.3f}x the model without exits "
        f"({policy.full_macs:,}).",
        "",
        "Test (LiteRT):",
        "",
        "| run | top-1 | vs full float32 | average MACs | x full | exit rates "
        "(exits..., final) | latency / example |",
        "|---|---|---|---|---|---|---|",
    ]
    full = results["accuracy"][0]
    latency = results["latency_ms"]
    latency_of = {
        "full model, float32": "full model, float32",
        "full model, int8": "full model, int8",
        "early exit, float32": "early exit, float32 (one file)",
        "early exit, int8": "early exit, int8 (one file)",
    }
    for row in results["accuracy"]:
        rates = ", ".join(f"{r:.1%}" for r in row["exit_rates"])
        ms = latency.get(latency_of.get(row["name"], ""), None)
        lines.append(
            f"| {row['name']} | {row['top1']:.2%} | "
            f"{100 * (row['top1'] - full['top1']):+.2f} pt | "
            f"{row['average_macs']:,.0f} | "
            f"{row['average_macs'] / full['average_macs']:.3f}x | {rates} | "
            + ("-" if ms is None else f"{ms:.3f} ms") + " |"
        )
    staged_ms = latency["early exit, float32, staged loading"]
    per_stage_ms = latency["early exit, float32 (per-stage files, all loaded)"]
    lines += [
        "",
        f"Latency: batch 1, 1 thread, mean over {args.latency_examples} test "
        f"images, median of {args.rounds} alternating rounds, on this "
        "machine's shared CPU (it ranks runs; it does not predict a phone). "
        "The full model runs through a bare signature runner; early exit "
        "through `EarlyExitRunner.predict` (one signature call per stage "
        "reached, a softmax per exit). Per-stage files, all loaded: "
        f"{per_stage_ms:.3f} ms per example; staged loading (each stage's "
        f"file loaded per example and freed): {staged_ms:.3f} ms, the loads "
        "included.",
        "",
        "Peak resident memory (`measure_peak_memory`: a fresh process per "
        "mode importing only NumPy and the LiteRT interpreter; high-water "
        "mark reset after the imports, read from `VmHWM`; "
        f"{args.memory_examples} test images, batch 1):",
        "",
        "| mode | peak RSS | baseline | added by model and runs |",
        "|---|---|---|---|",
    ]
    for row in results["peak_memory"]["rows"]:
        lines.append(
            f"| {row['name']} | {row['peak_bytes'] / 2**20:.2f} MiB | "
            f"{row['baseline_bytes'] / 2**20:.2f} MiB | "
            f"{row['added_bytes'] / 2**10:,.0f} KiB |"
        )
    wide = results.get("peak_memory_wide", [])
    if wide:
        lines += [
            "",
            "Wider copies of the model (same exits, untrained: memory does "
            "not depend on weight values), 20 images through every stage "
            "(no exit taken, the worst case for staged loading):",
            "",
            "| width | params | one file | largest stage file | mode | peak "
            "RSS | added |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in wide:
            lines.append(
                f"| {row['width']} | {row['params']:,} | "
                f"{row['single_file_bytes'] / 2**20:.2f} MiB | "
                f"{row['largest_stage_bytes'] / 2**20:.2f} MiB | "
                f"{row['name']} | {row['peak_bytes'] / 2**20:.2f} MiB | "
                f"{row['added_bytes'] / 2**10:,.0f} KiB |"
            )
    sizes = {
        mode: (files["single_file_bytes"],
               [row["size_bytes"] for row in files["rows"]])
        for mode, files in results["files"].items()
    }
    lines += [""]
    for mode, (single, stages) in sizes.items():
        lines.append(
            f"{mode} files: one file {single:,} bytes; per stage "
            + ", ".join(f"{size:,}" for size in stages) + " bytes."
        )
    lines += [
        "",
        f"Total run time {results['seconds']:.0f} s.",
        *command_lines(),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
