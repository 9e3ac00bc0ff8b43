"""`run_demo`: train, compress every way, export, verify, time, tabulate."""

import os
import time

import keras

from tfcompress.analysis import profile
from tfcompress.datasets import load_digits
from tfcompress.demo import steps
from tfcompress.demo.results import save_results
from tfcompress.demo.table import DemoRow
from tfcompress.demo.table import format_table
from tfcompress.export import LiteRTModel
from tfcompress.export import benchmark_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.models import small_mobilenet_v2


def run_demo(
    epochs=20,
    output_dir="tfcompress_demo",
    num_threads=1,
    benchmark_runs=200,
    seed=0,
    log=print,
):
    """Runs the demo and returns its table rows.

    Args:
        epochs: Training epochs. Defaults to `20`.
        output_dir: Folder for the `.keras` and `.tflite` files; created if
            missing. Defaults to `"tfcompress_demo"`.
        num_threads: LiteRT interpreter threads for accuracy and latency.
            Defaults to `1`, the usual setting on a phone's little cores.
        benchmark_runs: Timed single-example invocations per model.
            Defaults to `200`.
        seed: Seed for data split, initialization and training order.
        log: Function called with each progress line. Defaults to `print`.

    Returns:
        A list of `DemoRow`, one per model variant.
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()

    def step(message):
        log(f"[{time.perf_counter() - start:6.1f}s] {message}")

    step("loading scikit-learn digits (1,797 real 8x8 images, bundled)")
    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)
    step(f"{len(x_train)} training and {len(x_test)} test images")

    keras.utils.set_random_seed(seed)
    model = steps.compiled(
        small_mobilenet_v2(x_train.shape[1:], num_classes=10), 3e-3
    )
    report = profile(model)
    step("model built from tfcompress layers; profile:")
    log(str(report))

    step(f"training for {epochs} epochs")
    model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[steps.EpochLog(step, epochs)],
    )
    keras_accuracy = steps.accuracy(model.predict(x_test, verbose=0), y_test)
    model.save(os.path.join(output_dir, "model.keras"))
    step(f"Keras test accuracy {keras_accuracy:.2%}")

    pruned, sparsity = steps.prune(model, x_train, y_train, epochs, step, seed)
    qat = steps.quantization_aware(model, x_train, y_train, epochs, step, seed)
    cnn, decomposed = steps.decompose_cnn(x_train, y_train, epochs, step, seed)
    # Last: the Distiller freezes its teacher (`trainable=False`), and the
    # pruned and QAT copies above are clones of it.
    student_alone, student_distilled = steps.distill(
        model, x_train, y_train, epochs, step, seed
    )

    calibration = {"data": x_train[:300]}
    # (row name, model, quantization, export arguments, file name)
    variants = [
        ("float32", model, "none", {}, "model_float32"),
        ("int8 (PTQ)", model, "int8", calibration, "model_int8"),
        (
            "int8 (PTQ, MSE calibration)",
            model,
            "int8",
            {**calibration, "calibration": "mse"},
            "model_int8_mse",
        ),
        # The ranges come from the QAT model's fake-quant ops: no
        # calibration data.
        ("int8 (QAT)", qat, "int8", {}, "model_int8_qat"),
        (
            f"int8, {sparsity:.0%} sparse",
            pruned,
            "int8",
            calibration,
            "model_int8_pruned",
        ),
        ("plain CNN float32", cnn, "none", {}, "cnn_float32"),
        (
            "plain CNN, CP + SVD, int8",
            decomposed,
            "int8",
            calibration,
            "cnn_cp_svd_int8",
        ),
        (
            "student alone, int8",
            student_alone,
            "int8",
            calibration,
            "student_alone_int8",
        ),
        (
            "student, distilled, int8",
            student_distilled,
            "int8",
            calibration,
            "student_distilled_int8",
        ),
    ]
    rows = []
    for name, variant, quantization, kwargs, file_name in variants:
        path = os.path.join(output_dir, f"{file_name}.tflite")
        step(f"exporting {name} TFLite to {path}")
        # The precision line goes through `log` with the demo's other lines.
        export = to_tflite(
            variant, path, quantization=quantization, verbose=False, **kwargs
        )
        if export.precision is not None:
            step(export.precision.headline)
        parity = verify(variant, path, x_test, num_threads=num_threads)
        variant_profile = profile(variant)
        step(f"LiteRT vs Keras: {parity}")
        step(f"timing {name} in LiteRT ({benchmark_runs} runs)")
        latency = benchmark_tflite(
            path, num_runs=benchmark_runs, num_threads=num_threads
        )
        rows.append(
            DemoRow(
                name=name,
                params=variant_profile.params,
                macs=variant_profile.macs,
                tflite_bytes=export.size_bytes,
                gzipped_bytes=export.gzipped_size_bytes,
                keras_accuracy=steps.accuracy(
                    variant.predict(x_test, verbose=0), y_test
                ),
                litert_accuracy=steps.accuracy(
                    LiteRTModel(path, num_threads=num_threads).predict(x_test),
                    y_test,
                ),
                top1_agreement=parity.top1_agreement,
                latency_ms=latency.median_ms,
            )
        )
    notes = (
        f"LiteRT: {len(x_test)} test images; latency is the median of "
        f"{benchmark_runs} single-image runs, {num_threads} thread(s), "
        "XNNPACK. Accuracy on scikit-learn digits' held-out quarter."
    )
    written = save_results(rows, output_dir, notes)
    step(f"table saved to {', '.join(written)}")
    step("done")
    log("")
    log(format_table(rows))
    log("\n" + notes)
    return rows


