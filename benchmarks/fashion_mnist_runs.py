"""What the Fashion-MNIST benchmarks share: logging, training, evaluation,
the tf_keras twin of `plain_cnn` for tfmot, and interleaved step timing."""

import gzip
import json
import os
import pathlib
import statistics
import sys
import time

import keras
import numpy as np

import tfcompress
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# The benchmarks live in the repository, whose data sit beside the checkout
# (`../shared/data`); the library itself has no default folder.
DATA_DIR = (
    pathlib.Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "fashion-mnist"
)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def import_peer(args, parser):
    """`(tfmot, tf_keras)`, or `(None, None)` under `--skip-tfmot`."""
    if args.skip_tfmot:
        return None, None
    try:
        import tensorflow_model_optimization as tfmot
        import tf_keras
    except ImportError:
        parser.error(
            "tfmot is not installed: pip install -e '.[benchmarks]', "
            "or pass --skip-tfmot"
        )
    return tfmot, tf_keras


def load_data(args):
    """Fashion-MNIST as `(x_train, y_train, x_test, y_test)`, logged."""
    (x_train, y_train), (x_test, y_test) = (
        tfcompress.datasets.load_fashion_mnist(
            args.data_dir, train_limit=args.train_limit
        )
    )
    log(f"Fashion-MNIST: {len(x_train)} train, {len(x_test)} test images")
    return x_train, y_train, x_test, y_test


def build(kind):
    """`plain_cnn` ("cnn") or `small_mobilenet_v2` ("mobilenet"), 28x28x1."""
    if kind == "cnn":
        return tfcompress.models.plain_cnn((28, 28, 1), 10)
    return tfcompress.models.small_mobilenet_v2((28, 28, 1), 10, width=16)


def compile_keras3(model, learning_rate):
    model.compile(
        keras.optimizers.Adam(learning_rate), LOSS, metrics=["accuracy"]
    )
    return model


def top1(model, x, y):
    logits = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def litert_top1(path, x, y):
    logits = LiteRTModel(path).predict(x, batch_size=1000)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def gzipped_size(path):
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9))


def tf_keras_cnn(tf_keras):
    """`plain_cnn` layer for layer in tf_keras, for tfmot."""
    layers = tf_keras.layers
    return tf_keras.Sequential(
        [
            tf_keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10),
        ]
    )


def epoch_timer(base_class):
    """A callback class (of Keras 3 or tf_keras) timing each epoch and
    each step in it (from one batch's start to the next's)."""

    class EpochTimer(base_class):
        def __init__(self):
            super().__init__()
            self.seconds = []  # per epoch
            self.step_seconds = []  # per epoch, a list of its steps

        def on_epoch_begin(self, epoch, logs=None):
            self._start = self._last = time.perf_counter()
            self._steps = []

        def on_train_batch_begin(self, batch, logs=None):
            now = time.perf_counter()
            self._steps.append(now - self._last)
            self._last = now

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.seconds.append(now - self._start)
            # The first entry is the epoch's start up to its first step.
            self.step_seconds.append(self._steps[1:] + [now - self._last])

    return EpochTimer


def interleaved_step_times(configs, steps, rounds):
    """Median seconds per step of each configuration, measured in turns.

    `configs` maps a name to `(run, timer)`: `run()` fits 2 epochs of
    `steps` steps, `timer` an `epoch_timer` passed to that fit. The first
    epoch of each fit includes tracing; the second is kept. Taking turns
    within each round makes the machine's noise hit every configuration
    alike, so their ratios hold; the median over every kept step (not the
    epochs' means) keeps a burst of another process's work on these shared
    cores out of the figure.
    """
    per_step = {name: [] for name in configs}
    for round_index in range(rounds):
        log(f"step time: round {round_index + 1}/{rounds}")
        for name, (run, timer) in configs.items():
            run()
            per_step[name] += timer.step_seconds[-1]
    for name, values in per_step.items():
        log(f"step time: {name}: median {1000 * statistics.median(values):.2f}"
            f" ms, mean {1000 * statistics.fmean(values):.2f} ms over "
            f"{len(values)} steps")
    return {name: statistics.median(v) for name, v in per_step.items()}


def float_and_int8_exports(model, name, tmp, calibration, x_test, y_test):
    """Exports float32 and int8 (calibrated) files; returns paths and the
    LiteRT top-1 accuracy of each, keyed by `"none"` / `"int8"`."""
    paths, accuracy = {}, {}
    for quantization in ("none", "int8"):
        path = os.path.join(tmp, f"{name}_{quantization}.tflite")
        to_tflite(
            model,
            path,
            quantization=quantization,
            data=calibration if quantization == "int8" else None,
        )
        paths[quantization] = path
        accuracy[quantization] = litert_top1(path, x_test, y_test)
    return paths, accuracy


def step_time_lines(timing, args):
    """Markdown lines of the step-time table of `interleaved_step_times`:
    each configuration against the plain fit of its framework."""
    lines = [
        "",
        f"## Step time (plain CNN, batch {args.batch_size}, median step of "
        f"{args.timing_rounds} interleaved rounds of {args.timing_steps} "
        "steps, after tracing)",
        "",
        "| configuration | ms per step | ratio to plain fit of its framework |",
        "|---|---|---|",
    ]
    for name, seconds in timing.items():
        plain = timing["keras3_plain" if name.startswith("keras3")
                       else "tf_keras_plain"]
        lines.append(f"| {name} | {1000 * seconds:.2f} | "
                     f"{seconds / plain:.3f}x |")
    return lines


def rows_of_run_or_earlier(args, json_path, run):
    """The accuracy rows of `run()`, or with `--timing-only` those that an
    earlier run wrote to `json_path` (only the step times are measured)."""
    if args.timing_only:
        with open(json_path) as f:
            return json.load(f)["rows"]
    return run()


def command_lines():
    """The closing lines of a results file: the command that wrote it."""
    script = f"benchmarks/{os.path.basename(sys.argv[0])}"
    command = " ".join([".venv/bin/python", script, *sys.argv[1:]])
    return ["", f"Command: `{command}`", ""]
