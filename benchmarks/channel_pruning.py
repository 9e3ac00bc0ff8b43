"""Structured channel pruning on Fashion-MNIST: smaller models that run faster.

For a plain CNN (`tfcompress.models.plain_cnn`) and a small MobileNetV2-style
model (`small_mobilenet_v2`, tfcompress layers): a dense model is trained,
then `prune_channels` removes 25% and 50% of the channels (L1 importance)
and the smaller model is fine-tuned. The dense model is fine-tuned as long,
so both have seen the same epochs. For each: MACs and params ratio to the
dense model, accuracy lost, and the float32 and int8 LiteRT latency ratio
(1 thread, files measured side by side in interleaved rounds). Also the
sensitivity of each layer of the dense models (accuracy without fine-tuning
when only that layer is pruned), as tables and plots.

    .venv/bin/python benchmarks/channel_pruning.py [--data-dir DIR] [--quick]

Writes benchmarks/results/channel_pruning_<model>.md, .json and
channel_sensitivity_<model>.png.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import float_and_int8_exports as exports  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import compile_keras3 as compiled  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.pruning import prune_channels  # noqa: E402
from tfcompress.pruning import sensitivity_analysis  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def run(kind, args, data, tmp):
    x_train, y_train, x_test, y_test = data
    calibration = x_train[:200]
    fit = dict(batch_size=args.batch_size, verbose=0)

    keras.utils.set_random_seed(args.seed)
    dense = compiled(build(kind), args.learning_rate)
    log(f"{kind}: training dense for {args.epochs} epochs")
    dense.fit(x_train, y_train, epochs=args.epochs, **fit)
    trained = keras.models.clone_model(dense)
    trained.set_weights(dense.get_weights())

    log(f"{kind}: sensitivity of each layer (no fine-tuning)")
    sensitivity = sensitivity_analysis(
        trained,
        data=(x_test[: args.sensitivity_images],
              y_test[: args.sensitivity_images]),
        sparsities=(0.25, 0.5, 0.75),
        verbose=False,
    )
    sensitivity.plot(
        os.path.join(args.output_dir, f"channel_sensitivity_{kind}.png")
    )

    dense.compile(
        keras.optimizers.Adam(args.finetune_learning_rate), LOSS,
        metrics=["accuracy"],
    )
    log(f"{kind}: fine-tuning dense for {args.finetune_epochs} epochs")
    dense.fit(x_train, y_train, epochs=args.finetune_epochs, **fit)
    dense_profile = tfcompress.profile(dense)
    dense_paths, dense_litert = exports(dense, f"{kind}_dense", tmp,
                                        calibration, x_test, y_test)
    rows = [{
        "model": kind,
        "sparsity": 0.0,
        "params": dense_profile.params,
        "macs": dense_profile.macs,
        "keras_accuracy": top1(dense, x_test, y_test),
        "litert_float32_accuracy": dense_litert["none"],
        "litert_int8_accuracy": dense_litert["int8"],
        "paths": dense_paths,
    }]
    for sparsity in args.sparsities:
        pruned, report = prune_channels(trained, sparsity=sparsity, importance="l1")
        before = top1(pruned, x_test, y_test)
        compiled(pruned, args.finetune_learning_rate)
        log(f"{kind}: {sparsity:.0%} channels pruned (MACs x"
            f"{report.macs_ratio:.3f}), accuracy before fine-tuning "
            f"{before:.4f}; fine-tuning {args.finetune_epochs} epochs")
        pruned.fit(x_train, y_train, epochs=args.finetune_epochs, **fit)
        paths, litert = exports(pruned, f"{kind}_{sparsity}", tmp,
                                calibration, x_test, y_test)
        rows.append({
            "model": kind,
            "sparsity": sparsity,
            "params": report.params_after,
            "macs": report.macs_after,
            "accuracy_before_finetune": before,
            "keras_accuracy": top1(pruned, x_test, y_test),
            "litert_float32_accuracy": litert["none"],
            "litert_int8_accuracy": litert["int8"],
            "paths": paths,
            "report": str(report),
        })
        log(f"{kind}: {sparsity:.0%}: {rows[-1]['keras_accuracy']:.4f}")

    log(f"{kind}: latency, {args.rounds} interleaved rounds")
    for quantization in ("none", "int8"):
        medians = compare_latency(
            [r["paths"][quantization] for r in rows],
            num_runs=args.runs, rounds=args.rounds, num_threads=1,
        )
        for r in rows:
            r[f"{quantization}_ms"] = medians[r["paths"][quantization]]
    for r in rows:
        del r["paths"]
    return rows, sensitivity


# Input shapes and widths of `plain_cnn` for the latency-scaling table.
# (model, input shape, its size in the table, builder) for --latency-scaling.
SCALING = [
    ("plain CNN", (28, 28, 1), "filters (32, 64), dense 128",
     lambda shape: tfcompress.models.plain_cnn(
         shape, 10, filters=(32, 64), dense_units=128)),
    ("plain CNN", (56, 56, 3), "filters (64, 128), dense 256",
     lambda shape: tfcompress.models.plain_cnn(
         shape, 10, filters=(64, 128), dense_units=256)),
    ("plain CNN", (112, 112, 3), "filters (64, 128), dense 256",
     lambda shape: tfcompress.models.plain_cnn(
         shape, 10, filters=(64, 128), dense_units=256)),
    ("small MobileNetV2", (28, 28, 1), "width 16",
     lambda shape: tfcompress.models.small_mobilenet_v2(shape, 10)),
    ("small MobileNetV2", (56, 56, 3), "width 32",
     lambda shape: tfcompress.models.small_mobilenet_v2(shape, 10, width=32)),
    ("small MobileNetV2", (112, 112, 3), "width 32",
     lambda shape: tfcompress.models.small_mobilenet_v2(shape, 10, width=32)),
]


def latency_scaling(args, tmp):
    """Latency ratio of 50% channel pruning as the models grow.

    Latency does not depend on the weights' values, so untrained models
    (calibrated on random images) measure it as well as trained ones.
    """
    lines = [
        "# Channel pruning: latency ratio as the model grows",
        "",
        "`plain_cnn` and `small_mobilenet_v2` at growing input sizes and "
        "widths, 50% of the channels "
        "pruned (L1), untrained weights (latency does not depend on their "
        "values). LiteRT, batch 1, 1 thread, XNNPACK, median over "
        f"{args.rounds} interleaved rounds of {args.runs} runs.",
        "",
        "| model | input | size | MACs | MACs ratio | float32 ms | "
        "float32 ratio | int8 ms | int8 ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, (kind, shape, size, builder) in enumerate(SCALING):
        keras.utils.set_random_seed(args.seed)
        model = builder(shape)
        pruned, report = prune_channels(model, sparsity=0.5)
        calibration = np.random.default_rng(0).random((50, *shape))
        paths = {}
        for name, variant in (("dense", model), ("pruned", pruned)):
            for quantization in ("none", "int8"):
                path = os.path.join(
                    tmp, f"scaling_{index}_{name}_{quantization}.tflite"
                )
                to_tflite(
                    variant, path, quantization=quantization,
                    data=(
                        calibration.astype("float32")
                        if quantization == "int8" else None
                    ),
                )
                paths[name, quantization] = path
        ms = compare_latency(list(paths.values()), num_runs=args.runs,
                             rounds=args.rounds)
        t = {key: ms[path] for key, path in paths.items()}
        lines.append(
            f"| {kind} | {shape[0]}x{shape[1]}x{shape[2]} | {size} | "
            f"{report.macs_before:,} | {report.macs_ratio:.3f} | "
            f"{t['dense', 'none']:.3f} -> {t['pruned', 'none']:.3f} | "
            f"{t['pruned', 'none'] / t['dense', 'none']:.2f} | "
            f"{t['dense', 'int8']:.3f} -> {t['pruned', 'int8']:.3f} | "
            f"{t['pruned', 'int8'] / t['dense', 'int8']:.2f} |"
        )
        log(lines[-1])
    lines += command_lines()
    return "\n".join(lines)


def markdown(rows, sensitivities, args):
    lines = [
        "# Structured channel pruning on Fashion-MNIST",
        "",
        f"Training images: {args.train_limit or 60000:,}. "
        f"Dense models trained {args.epochs} epochs; `prune_channels` "
        "(L1 importance) on the trained model, then "
        f"{args.finetune_epochs} epochs of fine-tuning (Adam "
        f"{args.finetune_learning_rate}); the dense model fine-tuned as "
        "long. Accuracy on the 10,000 test images. LiteRT latency: batch 1, "
        f"1 thread, XNNPACK, median over {args.rounds} interleaved rounds "
        f"of {args.runs} runs; ratios are pruned / dense in the same run.",
        "",
        "| model | channels pruned | params | MACs | MACs ratio | "
        "acc before fine-tune | Keras acc | LiteRT int8 acc | "
        "acc change (pts) | float32 ms | float32 latency ratio | int8 ms | "
        "int8 latency ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dense = {r["model"]: r for r in rows if r["sparsity"] == 0}
    for r in rows:
        d = dense[r["model"]]
        before = r.get("accuracy_before_finetune")
        lines.append(
            f"| {r['model']} | {r['sparsity']:.0%} | {r['params']:,} | "
            f"{r['macs']:,} | {r['macs'] / d['macs']:.3f} | "
            + (f"{before:.2%}" if before is not None else "-")
            + f" | {r['keras_accuracy']:.2%} | "
            f"{r['litert_int8_accuracy']:.2%} | "
            f"{100 * (r['keras_accuracy'] - d['keras_accuracy']):+.2f} | "
            f"{r['none_ms']:.3f} | {r['none_ms'] / d['none_ms']:.2f} | "
            f"{r['int8_ms']:.3f} | {r['int8_ms'] / d['int8_ms']:.2f} |"
        )
    for kind, sensitivity in sensitivities.items():
        lines += [
            "",
            f"## Sensitivity: {kind} (accuracy on "
            f"{args.sensitivity_images} test images, one layer pruned, no "
            "fine-tuning)",
            "",
            "```",
            sensitivity.table(),
            "```",
            "",
            f"![sensitivity]({'channel_sensitivity_' + kind}.png)",
        ]
    lines += command_lines()
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR),
                        help="folder with the official Fashion-MNIST files "
                        "(default: ../shared/data/fashion-mnist beside the "
                        "checkout)")
    parser.add_argument("--models", nargs="+", default=["cnn", "mobilenet"],
                        choices=["cnn", "mobilenet"])
    parser.add_argument("--sparsities", nargs="+", type=float,
                        default=[0.25, 0.5])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-learning-rate", type=float, default=5e-4)
    parser.add_argument("--sensitivity-images", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, 1+1 epochs (smoke run)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training images")
    parser.add_argument("--latency-scaling", action="store_true",
                        help="only measure the latency ratio of 50%% "
                        "pruning on growing untrained CNNs")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.finetune_epochs = 1, 1
        args.runs, args.rounds, args.sensitivity_images = 20, 1, 500
        args.train_limit = 5000
    os.makedirs(args.output_dir, exist_ok=True)
    if args.latency_scaling:
        with tempfile.TemporaryDirectory() as tmp:
            table = latency_scaling(args, tmp)
        path = os.path.join(args.output_dir,
                            "channel_pruning_latency_scaling.md")
        with open(path, "w") as f:
            f.write(table)
        print(table)
        return
    (x_train, y_train), (x_test, y_test) = (
        tfcompress.datasets.load_fashion_mnist(
            args.data_dir, train_limit=args.train_limit
        )
    )
    data = (x_train, y_train, x_test, y_test)
    # One result file per model, written as soon as its runs end.
    suffix = "_quick" if args.quick else ""
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            rows, sensitivity = run(kind, args, data, tmp)
            table = markdown(rows, {kind: sensitivity}, args)
            name = f"channel_pruning_{kind}{suffix}"
            with open(os.path.join(args.output_dir, f"{name}.md"), "w") as f:
                f.write(table)
            with open(os.path.join(args.output_dir, f"{name}.json"),
                      "w") as f:
                json.dump({"args": vars(args), "rows": rows,
                           "sensitivity": sensitivity.to_dict()}, f,
                          indent=2)
            print(table, flush=True)


if __name__ == "__main__":
    main()
