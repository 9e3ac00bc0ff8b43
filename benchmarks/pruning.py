"""Magnitude pruning on Fashion-MNIST: tfcompress on Keras 3 vs tfmot on tf_keras.

For a plain CNN (`tfcompress.models.plain_cnn`) and a small MobileNetV2-style
model (`small_mobilenet_v2`, tfcompress layers):

1. A dense model is trained, then fine-tuned with `MagnitudePruning` to 50%,
   80% and 90% sparsity (PolynomialDecay over the first 75% of the
   fine-tune). tfmot's `prune_low_magnitude` does the same from the same
   dense weights on the same architecture in tf_keras (CNN only: tfmot
   cannot wrap Keras 3 layers). The dense model is fine-tuned as long, so
   every model has seen the same number of epochs.
2. Each model is exported to int8 TFLite (calibrated on 200 training
   images), run in LiteRT on the 10,000 test images, and gzipped.
3. Step time of `fit` with each pruning method / plain `fit` of its own
   framework, interleaved in rounds in this one run.

    .venv/bin/python benchmarks/pruning.py [--data-dir DIR] [--quick]

Needs the `benchmarks` extra (tf-keras, tensorflow-model-optimization) for
the tfmot columns; `--skip-tfmot` runs without. Writes
benchmarks/results/pruning_<model>.md and .json.
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
from fashion_mnist_runs import import_peer  # noqa: E402
from fashion_mnist_runs import load_data  # noqa: E402
from fashion_mnist_runs import step_time_lines  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import epoch_timer  # noqa: E402
from fashion_mnist_runs import gzipped_size  # noqa: E402
from fashion_mnist_runs import interleaved_step_times  # noqa: E402
from fashion_mnist_runs import litert_top1  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import rows_of_run_or_earlier  # noqa: E402
from fashion_mnist_runs import tf_keras_cnn  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.callbacks import MagnitudePruning  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.pruning import PolynomialDecay  # noqa: E402
from tfcompress.pruning import strip  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def export_row(model, name, tmp, calibration, x_test, y_test):
    """float32 and int8 sizes (raw, gzipped) and LiteRT int8 accuracy."""
    row = {}
    for quantization in ("none", "int8"):
        path = os.path.join(tmp, f"{name}_{quantization}.tflite")
        export = to_tflite(
            model,
            path,
            quantization=quantization,
            data=calibration if quantization == "int8" else None,
        )
        row[f"{quantization}_bytes"] = export.size_bytes
        row[f"{quantization}_gzip_bytes"] = gzipped_size(path)
        if quantization == "int8":
            row["litert_int8_accuracy"] = litert_top1(path, x_test, y_test)
    return row


def pruning_schedule(args, train_size, sparsity):
    """PolynomialDecay to `sparsity` over the first 75% of the fine-tune."""
    steps_per_epoch = -(-train_size // args.batch_size)
    end_step = int(0.75 * steps_per_epoch * args.finetune_epochs)
    # tfmot's default frequency, or ten pruning steps in a short run.
    frequency = min(100, max(1, end_step // 10))
    return dict(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
                end_step=end_step, frequency=frequency)


def run_keras3(kind, args, data, tmp, tfmot_module, tf_keras_module):
    x_train, y_train, x_test, y_test = data
    calibration = x_train[:200]
    fit = dict(batch_size=args.batch_size, verbose=0)
    rows = []

    keras.utils.set_random_seed(args.seed)
    dense = compile_keras3(build(kind), args.learning_rate)
    log(f"{kind}: training dense for {args.epochs} epochs")
    dense.fit(x_train, y_train, epochs=args.epochs, **fit)
    pretrained = dense.get_weights()
    pretrained_accuracy = top1(dense, x_test, y_test)
    log(f"{kind}: dense after {args.epochs} epochs: {pretrained_accuracy:.4f}")

    log(f"{kind}: fine-tuning dense for {args.finetune_epochs} more epochs")
    dense.compile(
        keras.optimizers.Adam(args.finetune_learning_rate), LOSS,
        metrics=["accuracy"],
    )
    dense.fit(x_train, y_train, epochs=args.finetune_epochs, **fit)
    row = {
        "model": kind,
        "method": "dense",
        "target_sparsity": 0.0,
        "achieved_sparsity": tfcompress.pruning.sparsity_report(
            dense
        ).sparsity,
        "keras_accuracy": top1(dense, x_test, y_test),
    }
    row.update(export_row(dense, f"{kind}_dense", tmp, calibration, x_test,
                          y_test))
    rows.append(row)
    log(f"{kind}: dense {row['keras_accuracy']:.4f}")

    for sparsity in args.sparsities:
        schedule = pruning_schedule(args, len(x_train), sparsity)
        keras.utils.set_random_seed(args.seed)
        model = build(kind)
        model.set_weights(pretrained)
        compile_keras3(model, args.finetune_learning_rate)
        callback = MagnitudePruning(
            PolynomialDecay(**schedule), log_sparsity="total"
        )
        model.fit(x_train, y_train, epochs=args.finetune_epochs,
                  callbacks=[callback], **fit)
        plain, report = strip(model)
        row = {
            "model": kind,
            "method": "tfcompress",
            "target_sparsity": sparsity,
            "achieved_sparsity": report.sparsity,
            "keras_accuracy": top1(model, x_test, y_test),
        }
        row.update(export_row(plain, f"{kind}_{sparsity}", tmp, calibration,
                              x_test, y_test))
        rows.append(row)
        log(f"{kind}: tfcompress {sparsity:.0%}: "
            f"{row['keras_accuracy']:.4f}, sparsity "
            f"{row['achieved_sparsity']:.3f}")

        if kind == "cnn" and tfmot_module is not None:
            rows.append(
                run_tfmot(schedule, pretrained, args, data, tfmot_module,
                          tf_keras_module)
            )
    return rows


def run_tfmot(schedule, pretrained, args, data, tfmot, tf_keras):
    x_train, y_train, x_test, y_test = data
    tf_keras.utils.set_random_seed(args.seed)
    base = tf_keras_cnn(tf_keras)
    base.set_weights(pretrained)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        base,
        pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(**schedule),
    )
    pruned.compile(
        tf_keras.optimizers.Adam(args.finetune_learning_rate),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    pruned.fit(
        x_train, y_train, epochs=args.finetune_epochs,
        batch_size=args.batch_size, verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernels = [w for w in stripped.get_weights() if w.ndim > 1]
    zeros = sum(int(np.sum(w == 0)) for w in kernels)
    logits = stripped.predict(x_test, batch_size=1000, verbose=0)
    row = {
        "model": "cnn",
        "method": "tfmot",
        "target_sparsity": schedule["final_sparsity"],
        "achieved_sparsity": zeros / sum(w.size for w in kernels),
        "keras_accuracy": float(np.mean(np.argmax(logits, -1) == y_test)),
    }
    log(f"cnn: tfmot {row['target_sparsity']:.0%}: "
        f"{row['keras_accuracy']:.4f}, sparsity {row['achieved_sparsity']:.3f}")
    return row


# -- Step time ---------------------------------------------------------


def step_times(args, data, tfmot, tf_keras):
    """Median seconds per step of each configuration, interleaved."""
    x_train, y_train, _, _ = data
    steps = args.timing_steps
    x = x_train[: steps * args.batch_size]
    y = y_train[: steps * args.batch_size]
    schedule_args = (0.0, 0.8, 0, 100_000)

    def keras3(pruning):
        keras.utils.set_random_seed(args.seed)
        model = compile_keras3(build("cnn"), 1e-3)
        callbacks = []
        if pruning:
            callbacks.append(
                MagnitudePruning(
                    PolynomialDecay(*schedule_args, frequency=100),
                    log_sparsity="total",
                )
            )
        timer = epoch_timer(keras.callbacks.Callback)()

        def run():
            model.fit(x, y, epochs=2, batch_size=args.batch_size, verbose=0,
                      callbacks=[*callbacks, timer])

        return run, timer

    def tfk(pruning):
        tf_keras.utils.set_random_seed(args.seed)
        model = tf_keras_cnn(tf_keras)
        callbacks = []
        if pruning:
            model = tfmot.sparsity.keras.prune_low_magnitude(
                model,
                pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(
                    *schedule_args, frequency=100
                ),
            )
            callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
        model.compile(
            tf_keras.optimizers.Adam(1e-3),
            tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        timer = epoch_timer(tf_keras.callbacks.Callback)()

        def run():
            model.fit(x, y, epochs=2, batch_size=args.batch_size, verbose=0,
                      callbacks=[*callbacks, timer])

        return run, timer

    configs = {
        "keras3_plain": keras3(False),
        "keras3_tfcompress": keras3(True),
    }
    if tfmot is not None:
        configs["tf_keras_plain"] = tfk(False)
        configs["tf_keras_tfmot"] = tfk(True)
    return interleaved_step_times(configs, steps, args.timing_rounds)


# -- Report ------------------------------------------------------------


def markdown(rows, timing, args):
    lines = [
        "# Magnitude pruning on Fashion-MNIST",
        "",
        f"Training images: {args.train_limit or 60000:,}. "
        f"Dense models trained {args.epochs} epochs, then fine-tuned "
        f"{args.finetune_epochs} epochs (Adam {args.finetune_learning_rate}, "
        f"batch {args.batch_size}) with pruning to the target sparsity "
        "(PolynomialDecay over the first 75% of the fine-tune, every 100 "
        "steps) or without (dense). tfmot prunes the same dense weights of "
        "the same CNN in tf_keras. Accuracy on the 10,000 test images; "
        "int8 files calibrated on 200 training images and run in LiteRT. "
        "Compression = dense float32 .tflite gzipped / this model's int8 "
        ".tflite gzipped.",
        "",
        "| model | method | target | achieved sparsity | Keras acc | "
        "LiteRT int8 acc | acc change vs dense (pts) | int8 gzipped bytes | "
        "compression vs float32 gzipped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    dense = {r["model"]: r for r in rows if r["method"] == "dense"}
    for r in rows:
        base = dense[r["model"]]
        change = 100 * (r["keras_accuracy"] - base["keras_accuracy"])
        int8 = r.get("int8_gzip_bytes")
        lines.append(
            f"| {r['model']} | {r['method']} | {r['target_sparsity']:.0%} | "
            f"{r['achieved_sparsity']:.3f} | {r['keras_accuracy']:.2%} | "
            + (f"{r['litert_int8_accuracy']:.2%}" if int8 else "-")
            + f" | {change:+.2f} | "
            + (f"{int8:,}" if int8 else "-")
            + " | "
            + (f"{base['none_gzip_bytes'] / int8:.1f}x" if int8 else "-")
            + " |"
        )
    if timing:
        lines += step_time_lines(timing, args)
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
                        default=[0.5, 0.8, 0.9])
    parser.add_argument("--epochs", type=int, default=6,
                        help="dense training epochs (default 6)")
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-learning-rate", type=float, default=5e-4)
    parser.add_argument("--timing-steps", type=int, default=100)
    parser.add_argument("--timing-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--timing-only", action="store_true",
                        help="only measure step times (keeps the accuracy "
                        "rows of an earlier run's JSON)")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, 1+1 epochs (smoke run)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training images")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.finetune_epochs = 1, 1
        args.timing_steps, args.timing_rounds = 20, 1
        args.train_limit = 5000
    tfmot, tf_keras = import_peer(args, parser)
    data = load_data(args)
    x_train, y_train, x_test, y_test = data
    # One result file per model, written as soon as its runs end; the
    # step-time comparison (plain CNN) goes with the CNN.
    suffix = "_quick" if args.quick else ""
    os.makedirs(args.output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            name = f"pruning_{kind}{suffix}"
            json_path = os.path.join(args.output_dir, f"{name}.json")
            rows = rows_of_run_or_earlier(
                args, json_path,
                lambda: run_keras3(kind, args, data, tmp, tfmot, tf_keras),
            )
            timing = step_times(args, data, tfmot, tf_keras) if (
                kind == "cnn"
            ) else {}
            table = markdown(rows, timing, args)
            with open(os.path.join(args.output_dir, f"{name}.md"), "w") as f:
                f.write(table)
            with open(json_path, "w") as f:
                json.dump({"args": vars(args), "rows": rows,
                           "seconds_per_step": timing}, f, indent=2)
            print(table, flush=True)


if __name__ == "__main__":
    main()
