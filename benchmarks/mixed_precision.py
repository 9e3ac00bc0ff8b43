"""Per-layer precision search (HAQ-style) vs hand rules, measured in LiteRT.

For a plain CNN and a small MobileNetV2-style model on Fashion-MNIST: a
float model is trained and exported to float32 `.tflite`. Two budgets
between all-int8 and float: the file's bytes, and its LiteRT latency (1
thread, side by side with the float file), each a third of the way from all-int8 to float32. At each
budget,
`tfcompress.search.search_precision` (Optuna multi-objective TPE,
ai-edge-quantizer recipes; choices int8, int16 activations, int4 weights,
float32) searches each weighted op's precision, scored on 2,000
validation images; then the searched file, the two hand rules ("first and
last float", and "the most sensitive layer float": the one layer whose
keeping in float gives the best validation accuracy, all others int8),
all-int8 and float32 are scored on the 10,000 test images in LiteRT, and
timed side by side. Last, tfcompress's own calibrated post-training
quantization (`to_tflite(..., "int8")`) against ai-edge-quantizer's
`static_wi8_ai8` recipe on the same float model and the same 100
calibration images.

`--models vit` runs the model zoo's ViT (6 blocks) without its input
`Rescaling`, on 32x32x3 raw pixels in [0, 255] (as keras.applications
models take them) that its patch convolution sees unscaled: a model that
full int8 breaks, so precision has something to win. `--uniform-rules
int16_activations int4_weights` adds "every op int16 activations" and
"every op int4 weights" to the hand rules.

    .venv/bin/python benchmarks/mixed_precision.py [--models cnn mobilenet]
        [--trials 16] [--quick]
    .venv/bin/python benchmarks/mixed_precision.py --models vit \
        --objectives size --trials 30 \
        --uniform-rules int16_activations int4_weights --name mixed_precision_vit
    .venv/bin/python benchmarks/mixed_precision.py --speed-up [--trials 16]

Writes benchmarks/results/mixed_precision.md and .json. `--speed-up`
instead runs the same size-budget search on the first model with 1 and
with 2 worker processes sharing one study (a size budget: no latency is
timed, so the two workers do not disturb each other's measurements) and
writes mixed_precision_speed_up.md and .json.
"""

import argparse
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from model_zoo import image_data  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402
from tfcompress.export import evaluate_tflite  # noqa: E402
from tfcompress.export import inspect_tflite  # noqa: E402
from tfcompress.export import tflite_precision  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.search import Budget  # noqa: E402
from tfcompress.search import quantize_per_op  # noqa: E402
from tfcompress.search import search_precision  # noqa: E402
from tfcompress.search import weighted_ops  # noqa: E402
from tfcompress.search.precision_recipe import calibrate  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def hand_rules(model, float_path, calibration, validation, tmp, uniform=()):
    """The hand assignments, "most sensitive float" chosen on validation
    data; `uniform` adds "every op <choice>" for each choice given."""
    names = list(weighted_ops(float_path, model))
    first_last = {n: "int8" for n in names}
    first_last[names[0]] = first_last[names[-1]] = "float32"
    best, best_accuracy = None, -1.0
    for name in names:
        path = os.path.join(tmp, "sensitivity.tflite")
        quantize_per_op(
            float_path, path, assignment={name: "float32"}, data=calibration, model=model
        )
        accuracy = evaluate_tflite(path, *validation)
        if accuracy > best_accuracy:
            best, best_accuracy = name, accuracy
    sensitive = {n: "int8" for n in names}
    sensitive[best] = "float32"
    rules = {
        "first and last float": first_last,
        f"most sensitive float ({best})": sensitive,
    }
    for choice in uniform:
        rules[f"all {choice.replace('_', ' ')}"] = {n: choice for n in names}
    return rules


def size_budget(float_path, int8_path):
    """A third of the way from the all-int8 file's bytes to float32's."""
    ratio = os.path.getsize(int8_path) / os.path.getsize(float_path)
    return Budget(tflite_bytes_ratio=round(ratio + (1 - ratio) / 3, 3))


def model_of(kind):
    """`build(kind)`, or the model zoo's ViT without its `Rescaling`
    (`"vit"`, 32x32x3 raw pixels)."""
    if kind == "vit":
        return tfcompress.models.small_vit(
            (32, 32, 3), 10, patch=4, dim=64, heads=4, blocks=6, name="vit_full"
        )
    return build(kind)


def data_of(kind, args):
    """`(train, validation, test)`: Fashion-MNIST as the model takes it.

    The ViT takes the model zoo's images: resized to 32x32, gray copied to
    3 channels, raw pixels in [0, 255] (as keras.applications models take
    them), which its patch convolution sees unscaled.
    """
    if kind == "vit":
        (x, y), test = image_data(
            (32, 32, 3), args.train + args.validation, 10000, args.data_dir
        )
        return (
            (x[: args.train], y[: args.train]),
            (x[args.train :], y[args.train :]),
            test,
        )
    (x_train, y_train), test = tfcompress.datasets.load_fashion_mnist(args.data_dir)
    return (
        (x_train[: args.train], y_train[: args.train]),
        (x_train[-args.validation :], y_train[-args.validation :]),
        test,
    )


def trained_model(kind, args, x_train, y_train):
    keras.utils.set_random_seed(0)
    model = compile_keras3(model_of(kind), 1e-3)
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    return model


def file_row(path, test):
    precision = tflite_precision(path)
    return {
        "bytes": os.path.getsize(path),
        "test_accuracy": evaluate_tflite(path, *test, batch_size=500),
        "integer_ops": f"{precision.num_integer_ops}/{precision.num_weighted_ops}",
    }


def run_budget(kind, model, float_path, files, rules, data, args, tmp, objective):
    """One search at the cost of the first-and-last rule; all files on test."""
    calibration, validation, test = data
    int8_path = files["all int8"]
    # A third of the way from all-int8 to float32: between the two.
    if objective == "size":
        budget = size_budget(float_path, int8_path)
    else:
        ms = compare_latency([float_path, int8_path], num_runs=200, rounds=3)
        ratio = ms[int8_path] / ms[float_path]
        budget = Budget(latency_ratio=round(min(1.0, ratio + (1 - ratio) / 3), 3))
    log(f"{kind} {objective}: budget {budget}")
    start = time.perf_counter()
    export, report = search_precision(
        model,
        budget=budget,
        data=calibration,
        validation_data=validation,
        trials=args.trials,
        path=os.path.join(tmp, f"{kind}_{objective}_searched.tflite"),
        latency_runs=args.latency_runs,
        seed=0,
        verbose=1,
    )
    seconds = time.perf_counter() - start
    report.plot(RESULTS / f"mixed_precision_{kind}_{objective}.png")
    candidates = {"float32": float_path, "all int8": files["all int8"]}
    candidates.update({name: files[name] for name in rules})
    candidates["searched"] = export.path
    ms = compare_latency(list(candidates.values()), num_runs=200, rounds=5)
    rows = {}
    for name, path in candidates.items():
        row = file_row(path, test)
        row["size_ratio"] = row["bytes"] / os.path.getsize(float_path)
        row["latency_ms"] = ms[path]
        row["latency_ratio"] = ms[path] / ms[float_path]
        limit = (
            budget.tflite_bytes_ratio if objective == "size" else budget.latency_ratio
        )
        cost = row["size_ratio"] if objective == "size" else row["latency_ratio"]
        # Latency is measured again here: 3% of slack for timing noise.
        row["within_budget"] = cost <= limit * (1.0005 if objective == "size" else 1.03)
        rows[name] = row
        log(f"  {name}: {row}")
    assignment = report.row(report.best).assignment
    return {
        "objective": objective,
        "budget": str(budget),
        "trials": len(report.rows),
        "search_seconds": seconds,
        "search_validation_best": report.best_accuracy,
        "searched_assignment": assignment,
        "rules": rules,
        "files": rows,
        "search_table": report.table(),
    }


def ptq_vs_aeq(kind, model, float_path, calibration, test, tmp):
    """tfcompress's calibrated PTQ vs ai-edge-quantizer's static int8 recipe."""
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe

    ptq = os.path.join(tmp, f"{kind}_ptq_int8.tflite")
    start = time.perf_counter()
    to_tflite(model, ptq, quantization="int8", data=calibration[:100], verbose=0)
    ptq_seconds = time.perf_counter() - start
    aeq = os.path.join(tmp, f"{kind}_aeq_int8.tflite")
    start = time.perf_counter()
    runner = quantizer.Quantizer(float_path, recipe.static_wi8_ai8())
    ranges = calibrate(float_path, calibration, 100)
    result = runner.quantize(ranges, enable_progress_report=False)
    with open(aeq, "wb") as file:
        file.write(result.quantized_model)
    aeq_seconds = time.perf_counter() - start
    ms = compare_latency([float_path, ptq, aeq], num_runs=200, rounds=5)
    rows = {}
    for name, path, seconds in (
        ("tfcompress to_tflite int8", ptq, ptq_seconds),
        ("ai-edge-quantizer static_wi8_ai8", aeq, aeq_seconds),
    ):
        row = file_row(path, test)
        inspection = inspect_tflite(path)
        row.update(
            latency_ms=ms[path],
            latency_ratio=ms[path] / ms[float_path],
            seconds=seconds,
            io=f"{inspection.input_dtypes[0]} -> {inspection.output_dtypes[0]}",
            ops=len(inspection.ops),
        )
        rows[name] = row
        log(f"  {name}: {row}")
    return rows


def run_model(kind, args, data):
    (x_train, y_train), validation, test = data
    model = trained_model(kind, args, x_train, y_train)
    log(f"{kind}: Keras test accuracy {top1(model, *test):.4f}")
    calibration = x_train[: args.calibration]
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, f"{kind}_float.tflite")
        to_tflite(model, float_path, verbose=0)
        rules = hand_rules(
            model, float_path, calibration, validation, tmp, args.uniform_rules
        )
        names = list(weighted_ops(float_path, model))
        files = {}
        for name, assignment in [("all int8", {n: "int8" for n in names})] + list(
            rules.items()
        ):
            files[name] = os.path.join(tmp, f"{kind}_{len(files)}.tflite")
            quantize_per_op(
                float_path, files[name], assignment=assignment, data=calibration, model=model
            )
        budgets = [
            run_budget(
                kind, model, float_path, files, rules,
                (calibration, validation, test), args, tmp, objective,
            )
            for objective in args.objectives
        ]
        comparison = ptq_vs_aeq(kind, model, float_path, calibration, test, tmp)
    return {
        "model": kind,
        "weighted_ops": len(names),
        "budgets": budgets,
        "ptq_vs_aeq": comparison,
    }


def speed_up(kind, args, data):
    """Wall time of one size-budget search with 1 and with 2 workers."""
    (x_train, y_train), validation, _ = data
    model = trained_model(kind, args, x_train, y_train)
    calibration = x_train[: args.calibration]
    seconds, best, runs = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, "float.tflite")
        int8_path = os.path.join(tmp, "int8.tflite")
        to_tflite(model, float_path, verbose=0)
        names = list(weighted_ops(float_path, model))
        quantize_per_op(float_path, int8_path, assignment={n: "int8" for n in names},
                        data=calibration, model=model)
        budget = size_budget(float_path, int8_path)
        for workers in (1, 2):
            start = time.perf_counter()
            _, report = search_precision(
                model, budget=budget, data=calibration, validation_data=validation,
                trials=args.trials, path=os.path.join(tmp, f"searched_{workers}.tflite"),
                storage=os.path.join(tmp, f"study_{workers}.log"),
                study_name=f"speed_up_{workers}", workers=workers, seed=0, verbose=1,
            )
            seconds[workers] = time.perf_counter() - start
            best[workers] = report.best_accuracy
            runs[workers] = len(report.rows)
            log(f"{kind}: {workers} worker(s): {seconds[workers]:.0f} s, "
                f"{len(report.rows)} trials")
    return {
        "model": kind, "budget": str(budget), "trials": args.trials,
        "seconds": seconds, "best_validation_accuracy": best,
        "trials_run": runs,
        "speed_up": seconds[1] / seconds[2],
    }


def speed_up_markdown(speed):
    return "\n".join([
        "# Mixed-precision search: 1 vs 2 worker processes",
        "",
        f"`search_precision` on the {speed['model']} model, size budget "
        f"{speed['budget']}, `trials={speed['trials']}` (after the "
        f"uniform assignments), on {os.cpu_count()} cores; the two workers "
        "share one Optuna journal study (each starts its own process: "
        "TensorFlow's import and the model's load are in the wall time; a "
        "worker may finish the trial it began when the count was reached).",
        "",
        "| workers | wall time | trials run | s per trial | best validation accuracy |",
        "|---|---|---|---|---|",
        *(f"| {w} | {speed['seconds'][w]:.0f} s | {speed['trials_run'][w]} | "
          f"{speed['seconds'][w] / speed['trials_run'][w]:.1f} | "
          f"{speed['best_validation_accuracy'][w]:.4f} |" for w in (1, 2)),
        "",
        f"Speed-up with 2 workers: {speed['speed_up']:.2f}x in wall time, "
        f"{speed['speed_up'] * speed['trials_run'][2] / speed['trials_run'][1]:.2f}x "
        "in trials per second.",
        *command_lines(),
    ])


def markdown(results, args):
    lines = [
        "# Mixed precision: searched per-layer precision vs hand rules (LiteRT)",
        "",
        f"Fashion-MNIST, models trained {args.epochs} epochs on {args.train} "
        f"images; search scored on {args.validation} validation images, "
        f"{args.trials} searched trials after the 4 uniform assignments; "
        f"calibration on {args.calibration} training images. Every accuracy "
        "below is top-1 on the 10,000 test images, run in LiteRT; every "
        "latency is the median of one example on 1 thread, all files of a "
        "table timed side by side in one run (5 rounds of 200 runs). The "
        "budget lies a third of the way from all-int8 to float32; "
        "\"within\" says whether a file meets it as measured here (latency "
        "with 3% slack for timing noise).",
        "",
    ]
    for result in results:
        for entry in result["budgets"]:
            lines += [
                f"## {result['model']} ({result['weighted_ops']} weighted ops), "
                f"{entry['objective']} budget: {entry['budget']}",
                "",
                f"Search: {entry['trials']} trials, {entry['search_seconds']:.0f} s "
                "(1 worker, 2 shared cores).",
                "",
                "| File | Test accuracy | Bytes | Size | Latency | Within | Integer ops |",
                "|---|---|---|---|---|---|---|",
            ]
            for name, row in entry["files"].items():
                lines.append(
                    f"| {name} | {row['test_accuracy']:.2%} | {row['bytes']:,} | "
                    f"{row['size_ratio']:.3f}x | {row['latency_ms']:.3f} ms "
                    f"({row['latency_ratio']:.2f}x) | "
                    f"{'yes' if row['within_budget'] else 'no'} | "
                    f"{row['integer_ops']} |"
                )
            fitting = {
                name: row for name, row in entry["files"].items()
                if name in entry["rules"] and row["within_budget"]
            }
            searched = entry["files"]["searched"]
            if fitting:
                best_rule = max(fitting, key=lambda n: fitting[n]["test_accuracy"])
                gain = searched["test_accuracy"] - fitting[best_rule]["test_accuracy"]
                lines += [
                    "",
                    f"Searched vs the best hand rule within the budget "
                    f"({best_rule}): {gain:+.2%} test accuracy.",
                ]
            lines += [
                "",
                "Searched assignment: "
                + ", ".join(f"{op}: {c}" for op, c in entry["searched_assignment"].items()),
                "",
            ]
        lines += [
            f"## {result['model']}: tfcompress PTQ vs ai-edge-quantizer static int8",
            "",
            "| Quantizer | Test accuracy | Bytes | Latency | Integer ops | I/O | Ops | Time |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in result["ptq_vs_aeq"].items():
            lines.append(
                f"| {name} | {row['test_accuracy']:.2%} | {row['bytes']:,} | "
                f"{row['latency_ms']:.3f} ms ({row['latency_ratio']:.2f}x float) | "
                f"{row['integer_ops']} | {row['io']} | {row['ops']} | "
                f"{row['seconds']:.1f} s |"
            )
        lines.append("")
    return "\n".join(lines + command_lines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["cnn", "mobilenet"])
    parser.add_argument("--objectives", nargs="*", default=["size", "latency"])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--validation", type=int, default=2000)
    parser.add_argument("--calibration", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--name", default="mixed_precision")
    parser.add_argument(
        "--uniform-rules",
        nargs="*",
        default=[],
        help="also compare 'every op <choice>' as hand rules "
        "(e.g. int16_activations int4_weights)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speed-up", action="store_true",
                        help="only time the search with 1 and 2 workers")
    args = parser.parse_args()
    if args.quick:
        args.train, args.validation, args.epochs, args.trials = 3000, 500, 1, 3
        args.latency_runs = 20
        args.name += "_quick"
    RESULTS.mkdir(exist_ok=True)
    if args.speed_up:
        speed = speed_up(args.models[0], args, data_of(args.models[0], args))
        name = f"{args.name}_speed_up"
        (RESULTS / f"{name}.json").write_text(json.dumps(speed, indent=2, default=float))
        text = speed_up_markdown(speed)
        (RESULTS / f"{name}.md").write_text(text)
        print(text)
        return
    start = time.perf_counter()
    results = [run_model(kind, args, data_of(kind, args)) for kind in args.models]
    log(f"total {time.perf_counter() - start:.0f} s")
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"results": results}, indent=2, default=float)
    )
    text = markdown(results, args)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
