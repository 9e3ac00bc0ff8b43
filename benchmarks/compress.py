"""`tfcompress.compress` to 0.33x the LiteRT latency of the float file.

A MobileNetV2-style model (`small_mobilenet_v2`, 28x28x1, `--width` 32 by
default: at width 16, `budget_search.py`'s, the model is so small that
LiteRT's fixed per-op time is a large share of its latency, and 0.33x
needed 87% of the channels gone) is trained on a subset of Fashion-MNIST; `tfcompress.compress` then runs the
whole pipeline under `Budget(latency_ratio=R)`: uniform channel sparsity
fitted so that the int8 candidate file takes R of the float32 file's
LiteRT time (every candidate exported and timed side by side with the
float file, 1 thread), or an AMC-style search with `--trials`; prune;
distill from the original; QAT; int8 export; verify. Every latency in the
report is measured side by side with the float file in one run. Last, the
original float32 file and the compressed int8 file are scored in LiteRT on
the 10,000 test images and timed once more, side by side.

The machine has 2 shared cores: the dense model trains on a subset
(`--train`, default 12,000 images, `--epochs` 3) and the pipeline fine-tunes
on the same subset for few epochs, to keep the run under about 20 minutes.

    .venv/bin/python benchmarks/compress.py [--latency-ratio 0.33]
        [--trials 0] [--width 32] [--train 12000] [--epochs 3]
        [--distill-epochs 2]

Writes benchmarks/results/compress.md and .json.
"""

import argparse
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import litert_top1  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.litert import compare_latency  # noqa: E402
from tfcompress.search import Budget  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--latency-ratio", type=float, default=0.33)
    parser.add_argument("--trials", type=int, default=0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--train", type=int, default=12000)
    parser.add_argument("--validation", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--distill-epochs", type=int, default=2)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--name", default="compress")
    args = parser.parse_args()
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir
    )
    x, y = x_train[: args.train], y_train[: args.train]
    validation = (x_train[-args.validation :], y_train[-args.validation :])
    keras.utils.set_random_seed(0)
    model = compile_keras3(
        tfcompress.models.small_mobilenet_v2((28, 28, 1), 10, width=args.width), 1e-3
    )
    model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0)
    dense_keras = top1(model, x_test, y_test)
    log(f"dense: Keras test accuracy {dense_keras:.4f} ({time.perf_counter() - start:.0f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        result, report = tfcompress.compress(
            model,
            (x, y),
            validation_data=validation,
            budget=Budget(latency_ratio=args.latency_ratio),
            path=os.path.join(tmp, "compressed_int8.tflite"),
            trials=args.trials,
            epochs=args.distill_epochs,
            qat_epochs=args.qat_epochs,
            verbose=1,
        )
        print(report)
        float_file = tfcompress.to_tflite(
            model, os.path.join(tmp, "dense_float32.tflite"), verbose=0
        )
        dense_litert = litert_top1(float_file.path, x_test, y_test)
        int8_litert = litert_top1(result.export.path, x_test, y_test)
        ms = compare_latency([float_file.path, result.export.path], num_runs=300, rounds=5)
        float_ms, int8_ms = ms[float_file.path], ms[result.export.path]
        sizes = (float_file.size_bytes, result.export.size_bytes)
    seconds = time.perf_counter() - start
    lost = dense_litert - int8_litert
    summary = {
        "budget": report.budget,
        "dense_keras_test_accuracy": dense_keras,
        "dense_float32_litert_test_accuracy": dense_litert,
        "compressed_int8_litert_test_accuracy": int8_litert,
        "points_lost": 100 * lost,
        "float32_ms": float_ms,
        "int8_ms": int8_ms,
        "latency_ratio_test_run": int8_ms / float_ms,
        "latency_ratio_report_run": report.final_latency_ratio,
        "float32_bytes": sizes[0],
        "int8_bytes": sizes[1],
        "budget_met": report.budget_met,
        "target_met": (int8_ms / float_ms <= args.latency_ratio) and lost <= 0.015,
        "seconds": seconds,
        "settings": vars(args),
        "report": report.to_dict(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "# `tfcompress.compress`: MobileNetV2-style model to a LiteRT latency budget",
        "",
        f"Fashion-MNIST, `small_mobilenet_v2` (width {args.width}, 28x28x1) trained "
        f"{args.epochs} epoch(s) on the first {args.train:,} training images "
        f"(2 shared CPU cores: a subset, few epochs, to keep the run short). "
        f"`tfcompress.compress(model, data, budget=Budget(latency_ratio="
        f"{args.latency_ratio:g}), trials={args.trials}, epochs="
        f"{args.distill_epochs}, qat_epochs={args.qat_epochs})` on the same "
        f"images, {args.validation:,} held-out training images for "
        "validation; candidates exported int8 and timed (LiteRT, 1 thread) "
        "side by side with the dense float32 file; the search aims 10% under "
        "the limit (`latency_margin=0.1`) so that the final file, timed "
        "again, holds it.",
        "",
        "Pipeline report (validation accuracy; every latency from one "
        "side-by-side run):",
        "",
        "```",
        report.table(),
        "```",
        "",
        "On the 10,000 test images, both files in LiteRT, timed again side "
        "by side (300 runs x 5 rounds, 1 thread):",
        "",
        "| file | bytes | latency | vs float | test accuracy |",
        "|---|---|---|---|---|",
        f"| dense float32 | {sizes[0]:,} | {float_ms:.3f} ms | 1.000x | {dense_litert:.2%} |",
        f"| compressed int8 | {sizes[1]:,} | {int8_ms:.3f} ms | "
        f"{int8_ms / float_ms:.3f}x | {int8_litert:.2%} |",
        "",
        f"Points lost: {100 * lost:.2f} (target <= 1.5); latency "
        f"{int8_ms / float_ms:.3f}x (target <= {args.latency_ratio:g}x): "
        f"target {'met' if summary['target_met'] else 'NOT met'}. "
        f"Whole run {seconds / 60:.1f} min on {os.cpu_count()} cores.",
    ]
    text = "\n".join(lines + command_lines())
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
