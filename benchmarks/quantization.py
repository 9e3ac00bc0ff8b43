"""Quantization on Fashion-MNIST: PTQ calibrations, QAT, tfmot QAT, Keras's own.

For a plain CNN (`tfcompress.models.plain_cnn`) and a small MobileNetV2-style
model (`small_mobilenet_v2`, tfcompress layers, batch norm):

1. A float model is trained. Every variant below starts from its weights.
2. Post-training quantization to int8 with `to_tflite`: the converter's own
   min/max calibration, and tfcompress's percentile and MSE calibrations,
   on the same calibration images.
3. Quantization-aware training: `quantize_model` + `QuantizationAwareTraining`
   for a short fine-tune, exported to int8 without calibration data (the
   ranges come from the fake-quant ops). The float model is fine-tuned as
   long, as a reference. For the CNN, tfmot's `quantize_model` on the same
   CNN in tf_keras, from the same weights, same epochs (tfmot cannot take
   Keras 3 models).
4. Keras 3's own `model.quantize("int8")`, whose model the converter
   rejects: the error is recorded.
5. Every file runs in LiteRT on the 10,000 test images; sizes; int8 /
   float32 latency (XNNPACK, threads stated, interleaved); step time of QAT
   fit / plain fit, ours and tfmot's, interleaved in this one run.

    .venv/bin/python benchmarks/quantization.py [--data-dir DIR] [--quick]

Needs the `benchmarks` extra (tf-keras, tensorflow-model-optimization) for
the tfmot rows; `--skip-tfmot` runs without. Writes
benchmarks/results/quantization_<model>.md and .json.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import rows_of_run_or_earlier  # noqa: E402
from fashion_mnist_runs import tf_keras_cnn  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.callbacks import QuantizationAwareTraining  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.export import verify  # noqa: E402
from tfcompress.quantization import quantize_model  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def file_row(name, path, data, keras_model=None):
    _, _, x_test, y_test = data
    row = {
        "variant": name,
        "bytes": os.path.getsize(path),
        "gzip_bytes": gzipped_size(path),
        "litert_accuracy": litert_top1(path, x_test, y_test),
        "path": path,
    }
    if keras_model is not None:
        row["keras_accuracy"] = top1(keras_model, x_test, y_test)
        row["top1_agreement"] = verify(keras_model, path, x_test).top1_agreement
    log(f"{name}: LiteRT {row['litert_accuracy']:.4f}, {row['bytes']:,} B")
    return row


def run_model(kind, args, data, tmp, tfmot, tf_keras):
    x_train, y_train, x_test, y_test = data
    calibration = x_train[: args.calibration_size]
    keras.utils.set_random_seed(args.seed)
    float_model = compile_keras3(build(kind), args.learning_rate)
    log(f"{kind}: training float, {args.epochs} epochs")
    float_model.fit(x_train, y_train, epochs=args.epochs,
                    batch_size=args.batch_size, verbose=0)
    weights = float_model.get_weights()
    rows = []

    def path(name):
        return os.path.join(tmp, f"{kind}_{name}.tflite")

    to_tflite(float_model, path("float32"))
    rows.append(file_row("float32", path("float32"), data, float_model))
    for method in ("minmax", "percentile", "mse"):
        to_tflite(float_model, path(f"ptq_{method}"), quantization="int8",
                  data=calibration,
                  calibration_steps=args.calibration_size,
                  calibration=method)
        rows.append(file_row(f"PTQ int8, {method}", path(f"ptq_{method}"),
                             data))

    log(f"{kind}: float fine-tune, {args.finetune_epochs} epochs (reference)")
    keras.utils.set_random_seed(args.seed)
    tuned = compile_keras3(build(kind), args.finetune_learning_rate)
    tuned.set_weights(weights)
    tuned.fit(x_train, y_train, epochs=args.finetune_epochs,
              batch_size=args.batch_size, verbose=0)
    to_tflite(tuned, path("float32_tuned"))
    rows.append(file_row("float32, fine-tuned as long as QAT",
                         path("float32_tuned"), data, tuned))

    log(f"{kind}: QAT (tfcompress), {args.finetune_epochs} epochs")
    keras.utils.set_random_seed(args.seed)
    qat, report = quantize_model(float_model, data=calibration)
    log(report.table().splitlines()[0])
    compile_keras3(qat, args.finetune_learning_rate)
    steps = args.finetune_epochs * -(-len(x_train) // args.batch_size)
    qat.fit(x_train, y_train, epochs=args.finetune_epochs,
            batch_size=args.batch_size, verbose=0,
            callbacks=[QuantizationAwareTraining(
                freeze_bn_after=int(0.75 * steps))])
    to_tflite(qat, path("qat"), quantization="int8")
    rows.append(file_row("QAT int8 (tfcompress)", path("qat"), data, qat))

    if kind == "cnn" and tfmot is not None:
        rows.append(run_tfmot_qat(weights, args, data, tmp, tfmot, tf_keras))
    rows.append(keras_quantize_row(float_model, data, tmp))

    files = [r["path"] for r in rows if r.get("path")]
    log(f"{kind}: latency of {len(files)} files, {args.latency_threads} "
        "thread(s), interleaved")
    latency = compare_latency(files, num_runs=args.latency_runs,
                              rounds=args.latency_rounds,
                              num_threads=args.latency_threads)
    for r in rows:
        if r.get("path"):
            r["latency_ms"] = latency[r["path"]]
            del r["path"]
    return rows


def run_tfmot_qat(weights, args, data, tmp, tfmot, tf_keras):
    x_train, y_train, x_test, y_test = data
    log(f"cnn: QAT (tfmot on tf_keras), {args.finetune_epochs} epochs")
    tf_keras.utils.set_random_seed(args.seed)
    base = tf_keras_cnn(tf_keras)
    base.set_weights(weights)
    qat = tfmot.quantization.keras.quantize_model(base)
    qat.compile(
        tf_keras.optimizers.Adam(args.finetune_learning_rate),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    qat.fit(x_train, y_train, epochs=args.finetune_epochs,
            batch_size=args.batch_size, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = os.path.join(tmp, "cnn_tfmot_qat.tflite")
    with open(path, "wb") as f:
        f.write(converter.convert())
    row = file_row("QAT int8 (tfmot, tf_keras)", path, data)
    logits = qat.predict(x_test, batch_size=1000, verbose=0)
    row["keras_accuracy"] = float(np.mean(np.argmax(logits, -1) == y_test))
    return row


def keras_quantize_row(float_model, data, tmp):
    """Keras 3's `model.quantize("int8")`, then the TFLite converter."""
    _, _, x_test, y_test = data
    model = keras.models.clone_model(float_model)
    model.set_weights(float_model.get_weights())
    model.quantize("int8")
    row = {"variant": 'Keras model.quantize("int8")',
           "keras_accuracy": top1(model, x_test, y_test)}
    path = os.path.join(tmp, "keras_quantize.tflite")
    try:
        model.export(path, format="litert", verbose=False)
        row.update(file_row(row["variant"], path, data))
    except Exception as error:  # The converter's rejection, recorded.
        first = [line for line in str(error).splitlines() if "error" in line]
        message = first[0] if first else str(error)
        # Drop the MLIR location prefix: the op's complaint is what matters.
        row["export_error"] = message.split("]))): ")[-1].strip()[:200]
        log(f"Keras model.quantize: export failed: {row['export_error']}")
    return row


def step_times(args, data, tfmot, tf_keras):
    """Seconds per step: QAT fit / plain fit, ours and tfmot's (CNN)."""
    x_train, y_train, _, _ = data
    steps = args.timing_steps
    x = x_train[: steps * args.batch_size]
    y = y_train[: steps * args.batch_size]

    def keras3(qat):
        keras.utils.set_random_seed(args.seed)
        model = build("cnn")
        if qat:
            model, _ = quantize_model(model)
        compile_keras3(model, 1e-3)
        timer = epoch_timer(keras.callbacks.Callback)()
        callbacks = [timer] + ([QuantizationAwareTraining()] if qat else [])

        def run():
            model.fit(x, y, epochs=2, batch_size=args.batch_size, verbose=0,
                      callbacks=callbacks)

        return run, timer

    def tfk(qat):
        tf_keras.utils.set_random_seed(args.seed)
        model = tf_keras_cnn(tf_keras)
        if qat:
            model = tfmot.quantization.keras.quantize_model(model)
        model.compile(
            tf_keras.optimizers.Adam(1e-3),
            tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        timer = epoch_timer(tf_keras.callbacks.Callback)()

        def run():
            model.fit(x, y, epochs=2, batch_size=args.batch_size, verbose=0,
                      callbacks=[timer])

        return run, timer

    configs = {"keras3_plain": keras3(False), "keras3_tfcompress_qat": keras3(True)}
    if tfmot is not None:
        configs["tf_keras_plain"] = tfk(False)
        configs["tf_keras_tfmot_qat"] = tfk(True)
    return interleaved_step_times(configs, steps, args.timing_rounds)


def markdown(kind, rows, timing, args):
    float_row = rows[0]
    lines = [
        f"# Quantization on Fashion-MNIST: {kind}",
        "",
        f"Training images: {args.train_limit or 60000:,}. Float model "
        f"trained {args.epochs} epochs (Adam {args.learning_rate}, batch "
        f"{args.batch_size}); QAT and the float reference fine-tuned "
        f"{args.finetune_epochs} epochs (Adam {args.finetune_learning_rate}) "
        "from its weights. PTQ calibrated on "
        f"{args.calibration_size} training images. Accuracy on the 10,000 "
        "test images, run by the LiteRT interpreter. Latency: median "
        f"`invoke()` of one image, {args.latency_threads} thread(s), "
        f"XNNPACK, {args.latency_rounds} interleaved rounds of "
        f"{args.latency_runs} runs.",
        "",
        "| variant | LiteRT acc | vs float32 (pts) | Keras acc | top-1 agreement "
        "Keras/LiteRT | bytes | size / float32 | latency ms | latency / "
        "float32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "export_error" in r:
            lines.append(
                f"| {r['variant']} | export fails | - | "
                f"{r['keras_accuracy']:.2%} | - | - | - | - | - |"
            )
            continue
        change = 100 * (r["litert_accuracy"] - float_row["litert_accuracy"])
        keras_acc = r.get("keras_accuracy")
        agreement = r.get("top1_agreement")
        lines.append(
            f"| {r['variant']} | {r['litert_accuracy']:.2%} | {change:+.2f} | "
            + (f"{keras_acc:.2%}" if keras_acc is not None else "-")
            + " | "
            + (f"{agreement:.2%}" if agreement is not None else "-")
            + f" | {r['bytes']:,} | {r['bytes'] / float_row['bytes']:.3f} | "
            f"{r['latency_ms']:.3f} | "
            f"{r['latency_ms'] / float_row['latency_ms']:.2f}x |"
        )
    errors = [r for r in rows if "export_error" in r]
    for r in errors:
        lines += ["", f"{r['variant']}: the converter says: `{r['export_error']}`"]
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
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-learning-rate", type=float, default=1e-4)
    parser.add_argument("--calibration-size", type=int, default=500)
    parser.add_argument("--latency-threads", type=int, default=1)
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--latency-rounds", type=int, default=3)
    parser.add_argument("--timing-steps", type=int, default=100)
    parser.add_argument("--timing-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--timing-only", action="store_true",
                        help="only measure step times (keeps the accuracy "
                        "rows of an earlier run's JSON)")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, 1+1 epochs (smoke run)")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.finetune_epochs = 1, 1
        args.timing_steps, args.timing_rounds = 20, 1
        args.latency_runs, args.latency_rounds = 50, 1
        args.train_limit = 5000
    tfmot, tf_keras = import_peer(args, parser)
    data = load_data(args)
    x_train, y_train, x_test, y_test = data
    suffix = "_quick" if args.quick else ""
    os.makedirs(args.output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            name = f"quantization_{kind}{suffix}"
            json_path = os.path.join(args.output_dir, f"{name}.json")
            rows = rows_of_run_or_earlier(
                args, json_path,
                lambda: run_model(kind, args, data, tmp, tfmot, tf_keras),
            )
            timing = {}
            if kind == "cnn" and not args.skip_timing:
                timing = step_times(args, data, tfmot, tf_keras)
            table = markdown(kind, rows, timing, args)
            with open(os.path.join(args.output_dir, f"{name}.md"), "w") as f:
                f.write(table)
            with open(json_path, "w") as f:
                json.dump({"args": vars(args), "rows": rows,
                           "seconds_per_step": timing}, f, indent=2)
            print(table, flush=True)


if __name__ == "__main__":
    main()
