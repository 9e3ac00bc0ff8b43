"""The main job end to end: train, compress, export, run in LiteRT, compare.

`tfcompress demo` trains a small MobileNetV2-style classifier made of
tfcompress layers on scikit-learn's digits, profiles it, prunes a copy to
80% sparsity while fine-tuning, fine-tunes another copy with
quantization-aware training, trains a plain CNN and factorizes it (CP and
SVD), distills the model into a student with 24x fewer MACs (and trains
that student alone for comparison), exports float32, int8 (post-training,
with the converter's and with MSE calibration), QAT int8, pruned int8,
decomposed int8 and student int8 TFLite files, verifies each against its
Keras model in the LiteRT interpreter and prints one table of size,
accuracy and latency.
"""

import dataclasses
import os
import time

import keras
import numpy as np

from tfcompress.analysis import profile
from tfcompress.callbacks import MagnitudePruning
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.datasets import load_digits
from tfcompress.decomposition import decompose
from tfcompress.distillation import Distiller
from tfcompress.distillation import cache_teacher_outputs
from tfcompress.export import LiteRTModel
from tfcompress.export import benchmark_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.models import plain_cnn
from tfcompress.models import small_mobilenet_v2
from tfcompress.pruning import PolynomialDecay
from tfcompress.pruning import strip
from tfcompress.quantization import quantize_model

PRUNED_SPARSITY = 0.8
# Hinton et al.'s softened targets, weighted as much as the labels.
DISTILLATION_TEMPERATURE = 4.0
STUDENT_LOSS_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class DemoRow:
    """One variant of the model in the demo's table."""

    name: str
    params: int
    macs: int
    tflite_bytes: int
    gzipped_bytes: int
    keras_accuracy: float
    litert_accuracy: float
    top1_agreement: float
    latency_ms: float


COLUMNS = (
    ("model", "{.name}", "<"),
    ("params", "{.params:,}", ">"),
    ("MACs", "{.macs:,}", ">"),
    (".tflite bytes", "{.tflite_bytes:,}", ">"),
    ("gzipped", "{.gzipped_bytes:,}", ">"),
    ("Keras acc", "{.keras_accuracy:.2%}", ">"),
    ("LiteRT acc", "{.litert_accuracy:.2%}", ">"),
    ("top-1 agree", "{.top1_agreement:.2%}", ">"),
    ("median latency", "{.latency_ms:.3f} ms", ">"),
)


def format_table(rows):
    """Formats demo rows as a fixed-width text table."""
    cells = [[c[0] for c in COLUMNS]]
    cells += [[fmt.format(row) for _, fmt, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]

    def line(values):
        return "  ".join(
            f"{v:{align}{w}}"
            for v, w, (_, _, align) in zip(values, widths, COLUMNS)
        )

    rule = "-" * len(line(cells[0]))
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])


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
    model = _compiled(
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
        callbacks=[EpochLog(step, epochs)],
    )
    keras_accuracy = _accuracy(model.predict(x_test, verbose=0), y_test)
    model.save(os.path.join(output_dir, "model.keras"))
    step(f"Keras test accuracy {keras_accuracy:.2%}")

    pruned, sparsity = _prune(model, x_train, y_train, epochs, step, seed)
    qat = _quantization_aware(model, x_train, y_train, epochs, step, seed)
    cnn, decomposed = _decompose_cnn(x_train, y_train, epochs, step, seed)
    # Last: the Distiller freezes its teacher (`trainable=False`), and the
    # pruned and QAT copies above are clones of it.
    student_alone, student_distilled = _distill(
        model, x_train, y_train, epochs, step, seed
    )

    calibration = {"representative_data": x_train[:300]}
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
        export = to_tflite(variant, path, quantization=quantization, **kwargs)
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
                keras_accuracy=_accuracy(variant.predict(x_test, verbose=0),
                                         y_test),
                litert_accuracy=_accuracy(
                    LiteRTModel(path, num_threads=num_threads).predict(x_test),
                    y_test,
                ),
                top1_agreement=parity.top1_agreement,
                latency_ms=latency.median_ms,
            )
        )
    step("done")
    log("")
    log(format_table(rows))
    log(
        f"\nLiteRT: {len(x_test)} test images; latency is the median of "
        f"{benchmark_runs} single-image runs, {num_threads} thread(s), "
        "XNNPACK. Accuracy on scikit-learn digits' held-out quarter."
    )
    return rows


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def _compiled(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _decompose_cnn(x_train, y_train, epochs, step, seed):
    """A plain CNN, trained, and its CP + SVD factorized twin, fine-tuned.

    MobileNetV2's work is in 1x1 and depthwise convolutions, which
    factorization cannot shrink; a plain CNN's 3x3 convolution and large
    Dense layer are what decomposition is for.
    """
    keras.utils.set_random_seed(seed)
    cnn = _compiled(plain_cnn(x_train.shape[1:], num_classes=10), 3e-3)
    step(f"training a plain CNN for {epochs} epochs, to decompose")
    cnn.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0,
            callbacks=[EpochLog(step, epochs)])
    decomposed, report = decompose(
        cnn,
        method={"conv2": "cp", "fc": "svd"},
        rank={"conv2": 16, "fc": 16},
        data=x_train[:256],
        verbose=False,
    )
    step(
        f"CP rank 16 on conv2, SVD rank 16 on fc: MACs x"
        f"{report.macs_ratio:.2f}; fine-tuning {max(2, epochs // 4)} epochs"
    )
    _compiled(decomposed, 1e-3).fit(
        x_train, y_train, epochs=max(2, epochs // 4), batch_size=32,
        verbose=0,
    )
    return cnn, decomposed


def _student(input_shape):
    """The distillation student, from tfcompress layers: a stem conv and two
    `DepthwiseSeparableConv2D` (the first halving the resolution), 24x fewer
    MACs than `small_mobilenet_v2`. Few layers, so few ops per training step:
    it trains in seconds."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                            name="stem")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    x = DepthwiseSeparableConv2D(16, strides=2, momentum=0.9,
                                 name="separable1")(x)
    x = DepthwiseSeparableConv2D(32, momentum=0.9, name="separable2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="student")


def _distill(teacher, x_train, y_train, epochs, step, seed):
    """A small student trained alone, and its twin (same initial weights)
    distilled from `teacher`, both for `epochs` epochs.

    Returns `(alone, distilled)`, the two students.
    """
    keras.utils.set_random_seed(seed)
    alone = _compiled(_student(x_train.shape[1:]), 3e-3)
    ratio = profile(teacher).macs / profile(alone).macs
    step(
        f"training a student with {ratio:.0f}x fewer MACs alone for "
        f"{epochs} epochs"
    )
    alone.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0,
              callbacks=[EpochLog(step, epochs)])
    # The teacher is fixed and the data has no augmentation: one pass
    # over it replaces running the teacher at every step.
    cached = cache_teacher_outputs(teacher, x_train)
    keras.utils.set_random_seed(seed)
    distilled = _student(x_train.shape[1:])
    distiller = Distiller(
        teacher,
        distilled,
        # KLDivergence on the softened distributions, scaled by T**2.
        keras.distillation.LogitsDistillation(
            DISTILLATION_TEMPERATURE, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=STUDENT_LOSS_WEIGHT,
    )
    step(
        f"distilling the model into the same student for {epochs} epochs "
        f"(T={DISTILLATION_TEMPERATURE:g}, student loss weight "
        f"{STUDENT_LOSS_WEIGHT:g}, cached teacher outputs)"
    )
    _compiled(distiller, 3e-3).fit(
        cached, y_train, epochs=epochs, batch_size=32, verbose=0,
        callbacks=[EpochLog(step, epochs)],
    )
    return alone, distilled


def _quantization_aware(model, x_train, y_train, epochs, step, seed):
    """A quantization-aware copy of the trained model, fine-tuned."""
    keras.utils.set_random_seed(seed)
    qat, report = quantize_model(model, data=x_train[:256])
    qat_epochs = max(2, epochs // 4)
    steps = qat_epochs * -(-len(x_train) // 32)
    step(
        f"quantization-aware training: {len(report.quantized)} kernels and "
        f"{report.output_quantizers} activations simulated in int8; "
        f"fine-tuning {qat_epochs} epochs, batch norm frozen for the last "
        "third"
    )
    _compiled(qat, 3e-4).fit(
        x_train,
        y_train,
        epochs=qat_epochs,
        batch_size=32,
        verbose=0,
        callbacks=[
            QuantizationAwareTraining(freeze_bn_after=2 * steps // 3),
            EpochLog(step, qat_epochs),
        ],
    )
    return qat


def _prune(model, x_train, y_train, epochs, step, seed):
    """A copy of the trained model fine-tuned to 80% sparse kernels.

    Returns the copy and the fraction of zeros over all its kernels.
    """
    keras.utils.set_random_seed(seed)
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    _compiled(pruned, 1e-3)
    prune_epochs = max(2, epochs // 2)
    steps = prune_epochs * -(-len(x_train) // 32)
    # Reach the target two thirds of the way, then recover at that sparsity.
    end_step = 2 * steps // 3
    schedule = PolynomialDecay(
        0.0, PRUNED_SPARSITY, begin_step=0, end_step=end_step,
        frequency=max(1, end_step // 10),
    )
    step(
        f"pruning a copy to {PRUNED_SPARSITY:.0%} sparsity while "
        f"fine-tuning for {prune_epochs} epochs (MagnitudePruning)"
    )
    pruned.fit(
        x_train,
        y_train,
        epochs=prune_epochs,
        batch_size=32,
        verbose=0,
        callbacks=[
            # Kernels under 500 weights (the stem, the 3x3 depthwise
            # filters, the classifier) hold few weights and are the most
            # sensitive: pruning them saves little and costs accuracy.
            MagnitudePruning(
                schedule, min_weights=500, log_sparsity="total"
            ),
            EpochLog(step, prune_epochs),
        ],
    )
    plain, report = strip(pruned)
    step(
        f"all kernels together {report.sparsity:.1%} zeros (those of 500+ "
        f"weights {PRUNED_SPARSITY:.0%})"
    )
    return plain, report.sparsity


class EpochLog(keras.callbacks.Callback):
    """Logs loss and accuracy about five times over training."""

    def __init__(self, log, epochs):
        super().__init__()
        self.log = log
        self.epochs = epochs
        self.every = max(1, epochs // 5)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every == 0 or done == self.epochs:
            sparsity = (
                f", sparsity {logs['sparsity']:.1%}" if "sparsity" in logs
                else ""
            )
            self.log(
                f"epoch {done}/{self.epochs}: loss {logs['loss']:.4f}, "
                f"accuracy {logs['accuracy']:.2%}{sparsity}"
            )
