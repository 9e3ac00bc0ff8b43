"""Early exit on the small MobileNetV2-style model, Fashion-MNIST.

A `small_mobilenet_v2` (width 16) is trained; exits are attached after
chosen blocks (`tfcompress.dynamic.attach_exits`) and trained heads-only,
distilled from the final head (the backbone and final head unchanged);
`calibrate_exits` picks each exit's confidence threshold on validation
images (held out of training) so that the policy stays at most
`--max-drop` below the final head there: once by MACs (every exit kept),
and once per file type by measured latency (`measure_stage_latency` times
every segment between exits in LiteRT; the exits that do not pay for
themselves are dropped and the stages between kept exits fused). The
stages are exported to LiteRT (per-stage files and one file with a
signature per stage; float32 and int8, calibrated per stage) and run by
`EarlyExitRunner` on the 10,000 test images: top-1, exit rates and average
MACs per example, beside the full model's file. Latency per example
(batch 1, 1 thread) is measured for the full model's file and the
early-exit runners in alternating rounds, each through the same lean call
path (`StageCall`: tensor indices resolved once, set / invoke / get); the
per-stage call overhead of the old signature-runner path and of
`StageCall` is measured on the same stage files. Peak resident memory of
staged loading vs loading the whole file is measured by
`measure_peak_memory` (a fresh process per mode).

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

from tfcompress.dynamic.runner import StageCall  # noqa: E402
from tfcompress.dynamic.runner import confidence  # noqa: E402

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
from tfcompress.dynamic import measure_stage_latency  # noqa: E402
from tfcompress.dynamic import train_exits  # noqa: E402
from tfcompress.dynamic.exits import exit_report as exit_report_of  # noqa: E402
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
    """A callable running one example through `path`'s only signature by
    the cheapest Python path (`StageCall`: set, invoke, get), the one the
    early-exit runner uses for each stage."""
    call = StageCall(Interpreter(model_path=path, num_threads=1))

    def run(example):
        call.invoke(example)
        return call.get(call.logits_index)

    return run


def call_overhead(paths, x, rounds, examples=300):
    """Per stage of `paths` (every exit kept): microseconds per call, batch
    1, through the signature runner as `EarlyExitRunner` called it before
    (a dict of copied outputs, a NumPy softmax) and through `StageCall`
    (set, invoke, one confidence read, a view of the features), in
    alternating rounds on the features each stage really gets."""
    interpreters = [Interpreter(model_path=p, num_threads=1) for p in paths]
    signature = [i.get_signature_runner() for i in interpreters]
    lean = [StageCall(Interpreter(model_path=p, num_threads=1))
            for p in paths]
    inputs, features = [], x[:examples]
    for runner in signature:
        inputs.append([f[None] for f in features])
        (name,) = runner.get_input_details()
        features = np.concatenate([
            runner(**{name: f[None]}).get("features", f[None])
            for f in features
        ])

    # The input names read once, as the old runner cached them.
    names = [next(iter(r.get_input_details())) for r in signature]

    def old(index, example):
        outputs = signature[index](**{names[index]: example})
        logits = np.array(outputs["logits"], np.float32)
        if "features" in outputs:
            np.array(outputs["features"], np.float32)
            confidence(logits)

    def new(index, example):
        call = lean[index]
        call.invoke(example)
        if call.features_index is None:
            call.get(call.logits_index)
        else:
            call.confidences()[0]
            call.view(call.features_index)

    times = {(way, k): [] for way in ("old", "new") for k in range(len(paths))}
    for _ in range(rounds):
        for k in range(len(paths)):
            for way, run in (("old", old), ("new", new)):
                start = time.perf_counter()
                for example in inputs[k]:
                    run(k, example)
                times[way, k].append(
                    (time.perf_counter() - start) / len(inputs[k]))
    return [
        {"stage": k,
         "signature_runner_us": 1e6 * statistics.median(times["old", k]),
         "stage_call_us": 1e6 * statistics.median(times["new", k])}
        for k in range(len(paths))
    ]


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
    """Top-1, exit rates over the model's exits (and the final) and
    average MACs of a runner whose stages end at `policy.exits`."""
    stage_exits = [*policy.exits, num_exits]
    exits = np.asarray(stage_exits)[exits]  # stage index -> exit index
    rates = np.bincount(exits, minlength=num_exits + 1) / len(exits)
    macs = np.array([row.macs for row in policy.rows])
    return {
        "name": name,
        "top1": float(np.mean(np.argmax(logits, -1) == y)),
        "exit_rates": rates.tolist(),
        "average_macs": float(macs[exits].mean()),
        "kept_exits": list(policy.exits),
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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--segment-examples", type=int, default=300)
    parser.add_argument("--segment-rounds", type=int, default=7)
    parser.add_argument("--memory-examples", type=int, default=200)
    parser.add_argument("--memory-widths", type=int, nargs="*",
                        default=[64, 128])
    parser.add_argument("--name", default="early_exit")
    parser.add_argument(
        "--cache", default=None,
        help="folder to save the trained model with exits to, or load it "
             "from if there (skips training; for iterating on the rest)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train, args.validation, args.epochs = 3000, 1000, 1
        args.exit_epochs, args.latency_examples, args.rounds = 1, 100, 1
        args.segment_examples, args.segment_rounds = 50, 1
        args.memory_examples, args.memory_widths = 50, [64]
        args.name += "_quick"
    started = time.perf_counter()
    (x_all, y_all), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir
    )
    x_train, y_train = x_all[: args.train], y_all[: args.train]
    x_val, y_val = x_all[-args.validation :], y_all[-args.validation :]

    cached = args.cache and os.path.exists(
        os.path.join(args.cache, "with_exits.keras"))
    if cached:
        with_exits = keras.saving.load_model(
            os.path.join(args.cache, "with_exits.keras"))
        model = keras.Model(with_exits.inputs, with_exits.outputs[-1])
        exit_report = exit_report_of(with_exits)
        training = None
        log(f"loaded the model with exits from {args.cache}")
    else:
        keras.utils.set_random_seed(0)
        model = compile_keras3(build("mobilenet"), 1e-3)
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=64,
                  verbose=0)
    full_keras = top1(model, x_test, y_test)
    log(f"full model: test top-1 {full_keras:.4f}")

    if not cached:
        with_exits, exit_report = attach_exits(model, at=args.at)
        log(f"exits attached:\n{exit_report}")
        with_exits, training = train_exits(
            with_exits, x_train, y_train, mode="heads",
            epochs=args.exit_epochs, optimizer=keras.optimizers.Adam(3e-3),
            validation_data=(x_val, y_val),
        )
        log(f"exits trained:\n{training}")
        if args.cache:
            os.makedirs(args.cache, exist_ok=True)
            with_exits.save(os.path.join(args.cache, "with_exits.keras"))
    policy = calibrate_exits(
        with_exits, (x_val, y_val), max_accuracy_drop=args.max_drop
    )
    log(f"thresholds by MACs, every exit kept (validation):\n{policy}")

    results = {"args": vars(args), "full_keras_top1": full_keras,
               "exits": exit_report.to_dict(),
               "training": training and training.to_dict(),
               "policy": policy.to_dict()}
    calibration = dict(data=x_train[:1000], calibration_steps=200)
    modes = {"float32": {"quantization": "none"},
             "int8": {"quantization": "int8", **calibration}}
    timing = {"float32": {"quantization": "none"},
              "int8": {"quantization": "int8",
                       "calibration_data": calibration["data"],
                       "calibration_steps": 200}}
    # Latency-aware exit choice, per file type: every segment between
    # exits exported and timed on validation images.
    latencies, fast = {}, {}
    for mode in modes:
        latencies[mode] = measure_stage_latency(
            with_exits, x_val, examples=args.segment_examples,
            rounds=args.segment_rounds, verbose=0, **timing[mode],
        )
        log(f"segment latencies, {mode}:\n{latencies[mode]}")
        fast[mode] = calibrate_exits(
            with_exits, (x_val, y_val), max_accuracy_drop=args.max_drop,
            latency=latencies[mode],
        )
        log(f"thresholds by measured latency, {mode}:\n{fast[mode]}")
    results["segment_latency"] = {m: v.to_dict() for m, v in latencies.items()}
    results["latency_policy"] = {m: v.to_dict() for m, v in fast.items()}

    with tempfile.TemporaryDirectory() as tmp:
        full_path = os.path.join(tmp, "full.tflite")
        to_tflite(model, full_path, verbose=0)
        full_litert = LiteRTModel(full_path, num_threads=1)
        full_logits = full_litert.predict(x_test, batch_size=1000)
        full_top1 = float(np.mean(np.argmax(full_logits, -1) == y_test))
        full_int8 = os.path.join(tmp, "full_int8.tflite")
        to_tflite(model, full_int8, quantization="int8", verbose=0,
                  **calibration)
        full_int8_logits = LiteRTModel(full_int8).predict(x_test, 1000)
        exports, fused = {}, {}
        for mode, options in modes.items():
            exports[mode] = export_stages(
                with_exits, os.path.join(tmp, mode), verbose=0, **options)
            fused[mode] = export_stages(
                with_exits, os.path.join(tmp, f"{mode}_fused"),
                exits=fast[mode].exits, verbose=0, **options)
        accuracy_rows = [{
            "name": "full model, float32", "top1": full_top1,
            "exit_rates": [0.0] * len(args.at) + [1.0],
            "average_macs": float(exit_report.backbone_macs),
            "kept_exits": [],
        }, {
            "name": "full model, int8",
            "top1": float(np.mean(np.argmax(full_int8_logits, -1) == y_test)),
            "exit_rates": [0.0] * len(args.at) + [1.0],
            "average_macs": float(exit_report.backbone_macs),
            "kept_exits": [],
        }]
        runners = {}
        for mode in modes:
            for kind, export, chosen in (
                ("every exit, by MACs", exports[mode], policy),
                ("by latency", fused[mode], fast[mode]),
            ):
                name = f"early exit {kind}, {mode}"
                runner = EarlyExitRunner(export.single_file,
                                         chosen.stage_thresholds)
                runners[name] = runner
                logits, exits = runner.predict(x_test, batch_size=1000)
                accuracy_rows.append(runner_summary(
                    name, logits, exits, y_test, chosen, len(args.at)))
                log(f"{accuracy_rows[-1]}")
        results["accuracy"] = accuracy_rows
        results["files"] = {m: e.to_dict() for m, e in exports.items()}
        results["fused_files"] = {m: e.to_dict() for m, e in fused.items()}

        # Per-stage call overhead: the old signature-runner path vs
        # StageCall, on the float32 stage files (every exit kept).
        results["call_overhead"] = call_overhead(
            exports["float32"].paths, x_test, max(3, args.rounds),
            examples=min(300, args.latency_examples))
        log(f"call overhead: {results['call_overhead']}")

        # Latency per example, batch 1, 1 thread, in alternating rounds.
        # The full model runs through the same lean call as each stage.
        x_lat = x_test[: args.latency_examples]
        per_stage = {
            mode: EarlyExitRunner(fused[mode].paths,
                                  fast[mode].stage_thresholds)
            for mode in modes
        }
        contenders = {
            "full model, float32": bare_runner(full_path),
            "full model, int8": bare_runner(full_int8),
        }
        for name, runner in runners.items():
            contenders[name + " (one file)"] = runner.predict_one
        for mode, runner in per_stage.items():
            contenders[f"early exit by latency, {mode} (per-stage files)"] = (
                runner.predict_one)
        staged = EarlyExitRunner(
            exports["float32"].paths, policy.thresholds, staged=True
        )
        contenders["early exit every exit, float32, staged loading"] = (
            staged.predict_one
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
    text = markdown(results, args, policy, exit_report, fast, latencies)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


def markdown(results, args, policy, exit_report, fast, latencies):
    lines = [
        "# Early exit: small MobileNetV2-style model, Fashion-MNIST",
        "",
        f"`small_mobilenet_v2` (width 16) trained {args.epochs} epoch(s) on "
        f"{args.train} images; exits after {', '.join(args.at)} (global "
        "average pooling + Dense), trained heads-only for "
        f"{args.exit_epochs} epoch(s), distilled from the final head. "
        f"Thresholds chosen on {args.validation} validation images (held "
        f"out of training) for at most {100 * args.max_drop:.1f} point "
        "below the final head there, two ways: by MACs with every exit "
        "kept (`calibrate_exits`), and by measured latency "
        "(`calibrate_exits(latency=measure_stage_latency(...))`, per file "
        "type: every subset of the exits tried, the stages between kept "
        "exits fused into one file, the subset with the lowest expected "
        "latency kept). Every figure below the validation lines is on the "
        "10,000 test images, run in LiteRT.",
        "",
        "Exits (MACs per example from `tfcompress.analysis.profile` of each "
        "stage):",
        "",
        "| exit | after | head MACs | MACs to exit | threshold by MACs | "
        "by latency, float32 | by latency, int8 |",
        "|---|---|---|---|---|---|---|",
    ]

    def shown(decision, chosen, index):
        if index not in chosen.exits:
            return "dropped"
        return ("never" if decision.threshold is None
                else f"{decision.threshold:.4f}")

    for index, (row, decision) in enumerate(zip(exit_report.rows,
                                                policy.rows)):
        lines.append(
            f"| {row.name} | {row.layer} | {row.head_macs:,} | "
            f"{row.macs_to_exit:,} | {shown(decision, policy, index)} | "
            + " | ".join(shown(fast[m].rows[index], fast[m], index)
                         for m in ("float32", "int8")) + " |")
    lines += [
        "",
        "Segment latencies measured for the choice "
        f"(`measure_stage_latency`: {args.segment_examples} validation "
        f"images, batch 1, median of {args.segment_rounds} alternating "
        "rounds; a segment runs from the input or an exit's cut to a later "
        "exit, its head and confidence included, or to the final logits):",
        "",
        "| segment | MACs | float32 | int8 |",
        "|---|---|---|---|",
    ]
    for row, int8_row in zip(latencies["float32"].rows,
                             latencies["int8"].rows):
        lines.append(
            f"| {row.name} | {row.macs:,} | {1e6 * row.seconds:.1f} us | "
            f"{1e6 * int8_row.seconds:.1f} us |")
    lines += [
        "",
        f"Validation, by MACs: policy top-1 {policy.accuracy:.2%} vs final "
        f"head {policy.full_accuracy:.2%}; average MACs "
        f"{policy.average_macs:,.0f} = {policy.macs_ratio:.3f}x the model "
        f"without exits ({policy.full_macs:,}).",
    ]
    for mode, chosen in fast.items():
        kept = ", ".join(f"exit_{i}" for i in chosen.exits) or "none"
        lines.append(
            f"Validation, by latency, {mode}: exits kept: {kept}; top-1 "
            f"{chosen.accuracy:.2%}; average MACs {chosen.macs_ratio:.3f}x; "
            f"expected latency {1e6 * chosen.average_seconds:.1f} us = "
            f"{chosen.latency_ratio:.3f}x the model without exits "
            f"({1e6 * chosen.full_seconds:.1f} us, same measurement).")
    lines += [
        "",
        "Test (LiteRT; latency per example through the one-file runner, "
        "`EarlyExitRunner.predict_one`; ratios to the full model of the "
        "same type):",
        "",
        "| run | top-1 | vs full float32 | average MACs | x full | exit rates "
        "(exits..., final) | latency / example | x full |",
        "|---|---|---|---|---|---|---|---|",
    ]
    full = results["accuracy"][0]
    latency = results["latency_ms"]
    for row in results["accuracy"]:
        rates = ", ".join(f"{r:.1%}" for r in row["exit_rates"])
        mode = "int8" if row["name"].endswith("int8") else "float32"
        key = row["name"]
        if not key.startswith("full"):
            key += " (one file)"
        ms = latency.get(key)
        ratio = (ms / latency[f"full model, {mode}"]) if ms else None
        lines.append(
            f"| {row['name']} | {row['top1']:.2%} | "
            f"{100 * (row['top1'] - full['top1']):+.2f} pt | "
            f"{row['average_macs']:,.0f} | "
            f"{row['average_macs'] / full['average_macs']:.3f}x | {rates} | "
            + ("-" if ms is None else f"{ms:.3f} ms") + " | "
            + ("-" if ratio is None else f"{ratio:.3f}x") + " |"
        )
    lines += [
        "",
        f"Latency: batch 1, 1 thread, mean over {args.latency_examples} test "
        f"images, median of {args.rounds} alternating rounds, on this "
        "machine's shared CPU (2 cores shared with other jobs: it ranks "
        "runs; it does not predict a phone). Every contender goes through "
        "the same lean call (`StageCall`: tensor indices resolved once; "
        "set the input, invoke, read one confidence per exit).",
        "",
    ]
    for key, ms in latency.items():
        if "per-stage" in key or "staged" in key:
            lines.append(f"- {key}: {ms:.3f} ms per example.")
    lines += [
        "",
        "Per-stage call cost, float32 stage files with every exit (batch 1, "
        "the features each stage really receives): the signature-runner "
        "path the runner used before (resize and allocate per call, a dict "
        "of copied outputs, a NumPy softmax) vs `StageCall`:",
        "",
        "| stage | signature runner | StageCall | saved per call |",
        "|---|---|---|---|",
    ]
    for row in results["call_overhead"]:
        old, new = row["signature_runner_us"], row["stage_call_us"]
        lines.append(f"| stage_{row['stage']} | {old:.1f} us | {new:.1f} us "
                     f"| {old - new:.1f} us |")
    lines += [
        "",
        "Peak resident memory (`measure_peak_memory`: a fresh process per "
        "mode importing only NumPy and the LiteRT interpreter; high-water "
        "mark reset after the imports, read from `VmHWM`; "
        f"{args.memory_examples} test images, batch 1, thresholds by MACs, "
        "every exit):",
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
    lines += [""]
    for title, files in (("every exit", results["files"]),
                         ("by latency", results["fused_files"])):
        for mode, export in files.items():
            stages = [row["size_bytes"] for row in export["rows"]]
            lines.append(
                f"{mode} files, {title}: one file "
                f"{export['single_file_bytes']:,} bytes; per stage "
                + ", ".join(f"{size:,}" for size in stages) + " bytes.")
    lines += [
        "",
        f"Total run time {results['seconds']:.0f} s.",
        *command_lines(),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
