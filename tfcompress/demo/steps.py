"""The demo's steps: each compresses the trained model one way.

Each step trains (or fine-tunes) what it makes, logs one line per stage
through `step`, and returns the model(s) to export; `run_demo` exports and
measures them.
"""

import keras
import numpy as np

from tfcompress.analysis import profile
from tfcompress.callbacks import MagnitudePruning
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.decomposition import decompose
from tfcompress.distillation import Distiller
from tfcompress.distillation import cache_teacher_outputs
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.models import plain_cnn
from tfcompress.pruning import PolynomialDecay
from tfcompress.pruning import strip
from tfcompress.quantization import quantize_model

PRUNED_SPARSITY = 0.8
# Hinton et al.'s softened targets, weighted as much as the labels.
DISTILLATION_TEMPERATURE = 4.0
STUDENT_LOSS_WEIGHT = 0.5


def accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def compiled(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def decompose_cnn(x_train, y_train, epochs, step, seed):
    """A plain CNN, trained, and its CP + SVD factorized twin, fine-tuned.

    MobileNetV2's work is in 1x1 and depthwise convolutions, which
    factorization cannot shrink; a plain CNN's 3x3 convolution and large
    Dense layer are what decomposition is for.
    """
    keras.utils.set_random_seed(seed)
    cnn = compiled(plain_cnn(x_train.shape[1:], num_classes=10), 3e-3)
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
    compiled(decomposed, 1e-3).fit(
        x_train, y_train, epochs=max(2, epochs // 4), batch_size=32,
        verbose=0,
    )
    return cnn, decomposed


def build_student(input_shape):
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


def distill(teacher, x_train, y_train, epochs, step, seed):
    """A small student trained alone, and its twin (same initial weights)
    distilled from `teacher`, both for `epochs` epochs.

    Returns `(alone, distilled)`, the two students.
    """
    keras.utils.set_random_seed(seed)
    alone = compiled(build_student(x_train.shape[1:]), 3e-3)
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
    distilled = build_student(x_train.shape[1:])
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
    compiled(distiller, 3e-3).fit(
        cached, y_train, epochs=epochs, batch_size=32, verbose=0,
        callbacks=[EpochLog(step, epochs)],
    )
    return alone, distilled


def quantization_aware(model, x_train, y_train, epochs, step, seed):
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
    compiled(qat, 3e-4).fit(
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


def prune(model, x_train, y_train, epochs, step, seed):
    """A copy of the trained model fine-tuned to 80% sparse kernels.

    Returns the copy and the fraction of zeros over all its kernels.
    """
    keras.utils.set_random_seed(seed)
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    compiled(pruned, 1e-3)
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
