"""Knowledge distillation on Fashion-MNIST: a wide CNN teaches a small student.

Teacher: `tfcompress.models.plain_cnn` with wide filters (96, 192) and a
512-unit hidden layer, trained once. Student: a MobileNet-style network
from tfcompress layers (stem conv, two `DepthwiseSeparableConv2D`, one
`InvertedResidual`), 15x fewer MACs at the default width 24
(`tfcompress.profile`). Every student is trained for the same epochs with
the same optimizer, for each of `--seeds` seeds (the same initial weights
for every row of a seed):

1. Student alone, on the labels.
2. Distilled with `tfcompress.distillation.Distiller`
   (`LogitsDistillation` with `keras.losses.KLDivergence()`, so Hinton et
   al.'s `T**2`-scaled loss), over a grid of temperatures T and soft-target
   weights alpha (= 1 - Keras's `student_loss_weight`); plotted.
3. The reference (T, alpha) for the rows below: the grid cell with the best
   mean accuracy on validation images held out of the training set (the
   test set only reports), or `--temperature` and `--alpha`.
4. Fixed vs annealed temperature (`DistillationScheduler`, linear per step
   from 2T to T/2) at the reference alpha.
5. Quantized distillation (Polino et al. 2018): the student made
   quantization-aware with `quantize_model(student, weight_bits=4 or 8,
   activation_bits=8)`, trained alone on the labels and distilled at the
   reference (`QuantizationAwareTraining` freezes batch norm for the last
   quarter of the steps). The 8-bit students are exported to int8 TFLite
   and run in LiteRT (accuracy, top-1 agreement with Keras); the 4-bit ones
   are simulation only, as TFLite's kernels are int8.
6. Step time of distillation with the teacher run at every step and with
   `cache_teacher_outputs`, relative to plain training of the student,
   measured in interleaved rounds.

Each gain is set against the spread over seeds (the larger std of the two
rows compared) and whether the seeds' min-max ranges overlap. All
distillation rows of 2-5 read cached teacher outputs (the tests show cached
and uncached training give the same weights); 6 measures what that saves.
Every model trains with Adam and a cosine decay of its rate to 0. The
defaults (20,000 training and 5,000 validation images, the full test set,
10 teacher and 8 student epochs, a 4 x 2 grid, 3 seeds) take about an hour
on two CPU cores; `log` prints each training run's number and seconds as it
goes.

    .venv/bin/python benchmarks/distillation.py [--data-dir DIR] [--quick]

Writes benchmarks/results/distillation.md, distillation.json and
distillation_grid.png.
"""

import argparse
import collections
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import epoch_timer  # noqa: E402
from fashion_mnist_runs import interleaved_step_times  # noqa: E402
from fashion_mnist_runs import litert_top1  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.callbacks import DistillationScheduler  # noqa: E402
from tfcompress.callbacks import QuantizationAwareTraining  # noqa: E402
from tfcompress.distillation import Distiller  # noqa: E402
from tfcompress.distillation import LinearSchedule  # noqa: E402
from tfcompress.distillation import cache_teacher_outputs  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.export import verify  # noqa: E402
from tfcompress.layers import DepthwiseSeparableConv2D  # noqa: E402
from tfcompress.layers import InvertedResidual  # noqa: E402
from tfcompress.quantization import quantize_model  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Weight bits of the quantized students; activations are 8-bit in both.
QUANTIZED_WEIGHT_BITS = (4, 8)


# -- Data and models ---------------------------------------------------


Data = collections.namedtuple(
    "Data", "x_train y_train x_val y_val x_test y_test")


def split_data(args):
    """The first `--train-limit` training images to train on, the last
    `--validation-images` of the 60,000 to choose T and alpha, and the test
    set to report."""
    (x, y), (x_test, y_test) = tfcompress.datasets.load_fashion_mnist(
        args.data_dir, test_limit=args.test_limit)
    held_out = len(x) - args.validation_images
    if held_out <= 0:
        raise ValueError(f"--validation-images {args.validation_images} "
                         f"leaves no training images of {len(x)}")
    train = min(args.train_limit or held_out, held_out)
    return Data(x[:train], y[:train], x[held_out:], y[held_out:], x_test,
                y_test)


def build_teacher():
    return tfcompress.models.plain_cnn(
        (28, 28, 1), 10, filters=(96, 192), dense_units=512, name="teacher"
    )


def build_student(width):
    """A MobileNet-style student from tfcompress layers, producing logits."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same",
                            use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    x = DepthwiseSeparableConv2D(2 * width, momentum=0.9,
                                 name="separable1")(x)
    x = DepthwiseSeparableConv2D(4 * width, strides=2, momentum=0.9,
                                 name="separable2")(x)
    x = InvertedResidual(4 * width, expansion=2, momentum=0.9,
                         name="block")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="student")


def logits_distillation(temperature):
    # The KLDivergence instance: softmax and T**2 (the string default
    # "kl_divergence" would compare the scaled logits themselves).
    return keras.distillation.LogitsDistillation(
        temperature, loss=keras.losses.KLDivergence()
    )


# -- Training runs -----------------------------------------------------


def cosine_adam(learning_rate, epochs, train_size, batch_size):
    """Adam with its rate decayed to 0 along a cosine over the whole run:
    the last epochs settle, so a row's accuracy is not one noisy epoch's."""
    steps = epochs * -(-train_size // batch_size)
    return keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, steps))


def train_teacher(args, data):
    keras.utils.set_random_seed(args.teacher_seed)
    teacher = build_teacher()
    teacher.compile(cosine_adam(1e-3, args.teacher_epochs,
                                len(data.x_train), args.batch_size), LOSS)
    log(f"teacher: training {args.teacher_epochs} epochs")
    teacher.fit(data.x_train, data.y_train, epochs=args.teacher_epochs,
                batch_size=args.batch_size, verbose=0)
    return teacher, top1(teacher, data.x_test, data.y_test)


def train_student(args, data, seed, teacher=None, cached=None,
                  temperature=None, alpha=None, anneal=False,
                  weight_bits=None):
    """A student trained alone or distilled, float or quantization-aware
    (`weight_bits`); returns the trained student."""
    x_train, y_train = data.x_train, data.y_train
    keras.utils.set_random_seed(seed)
    student = build_student(args.student_width)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    callbacks = []
    if weight_bits is not None:
        # quantize_model copies the weights, so a quantized row starts from
        # the float rows' initial weights of its seed.
        student, _ = quantize_model(
            student, weight_bits=weight_bits, activation_bits=8,
            data=x_train[:256],
        )
        # As in benchmarks/quantization.py: batch norm frozen to its moving
        # statistics (what the folded int8 conv computes) for the last
        # quarter.
        callbacks.append(
            QuantizationAwareTraining(freeze_bn_after=int(0.75 * steps)))
    optimizer = cosine_adam(args.learning_rate, args.epochs, len(x_train),
                            args.batch_size)
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    if teacher is None:
        student.compile(optimizer, LOSS)
        student.fit(x_train, y_train, callbacks=callbacks, **fit)
        return student
    distiller = Distiller(
        teacher, student, logits_distillation(temperature),
        student_loss_weight=1.0 - alpha,
    )
    distiller.compile(optimizer, loss=LOSS)
    if anneal:
        callbacks.append(DistillationScheduler(
            temperature=LinearSchedule(2.0 * temperature, temperature / 2.0,
                                       steps),
            update_freq="step",
        ))
    distiller.fit(cached, y_train, callbacks=callbacks, **fit)
    return student


def int8_file(student, path, x_test, y_test):
    """Exports a quantization-aware student to int8 TFLite (its ranges from
    its fake-quant ops) and runs the file in LiteRT."""
    export = to_tflite(student, path, quantization="int8")
    return {
        "litert_accuracy": litert_top1(export.path, x_test, y_test),
        "top1_agreement": verify(student, export.path,
                                 x_test).top1_agreement,
        "tflite_bytes": export.size_bytes,
    }


def summary(values):
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def distilled_name(temperature, alpha):
    return f"distilled T={temperature:g} alpha={alpha:g}"


def quantized_names(reference, bits):
    """Names of the rows of the `bits`-bit student: alone, distilled at
    the `reference` (temperature, alpha)."""
    return (f"{bits}-bit weights, alone",
            f"{bits}-bit weights, {distilled_name(*reference)}")


def annealed_name(reference):
    temperature, alpha = reference
    return (f"annealed T={2 * temperature:g}->{temperature / 2:g} "
            f"alpha={alpha:g}")


def grid_configs(args, distill):
    """`{row name: train_student keyword arguments}` of the student alone
    and the T x alpha grid."""
    configs = {"student alone": {}}
    for temperature in args.temperatures:
        for alpha in args.alphas:
            configs[distilled_name(temperature, alpha)] = dict(
                temperature=temperature, alpha=alpha, **distill)
    return configs


def choose_reference(args, rows):
    """The (T, alpha) of the fixed, annealed and quantized rows: the ones
    given, or else the grid cell with the best mean validation accuracy
    (never the test set, which would flatter the rows built on it)."""
    if args.temperature is not None:
        return args.temperature, args.alpha
    cells = [(t, a) for t in args.temperatures for a in args.alphas]
    return max(cells, key=lambda cell: rows[distilled_name(*cell)][
        "validation"]["mean"])


def reference_configs(distill, reference):
    """The rows trained at the reference (T, alpha): fixed (if the grid
    lacks it), annealed, and the quantized students alone and distilled."""
    temperature, alpha = reference
    fixed = dict(temperature=temperature, alpha=alpha, **distill)
    configs = {distilled_name(*reference): fixed,
               annealed_name(reference): dict(fixed, anneal=True)}
    for bits in QUANTIZED_WEIGHT_BITS:
        alone, distilled = quantized_names(reference, bits)
        configs[alone] = dict(weight_bits=bits)
        configs[distilled] = dict(fixed, weight_bits=bits)
    return configs


def train_rows(args, data, configs, tmp, progress):
    """Trains every config for every seed; `{name: row}` with the test and
    validation accuracy over seeds (and LiteRT figures of 8-bit rows)."""
    rows = {}
    for name, kwargs in configs.items():
        values, validation, files = [], [], []
        for seed in args.seeds:
            progress["count"] += 1
            start = time.perf_counter()
            student = train_student(args, data, seed, **kwargs)
            values.append(top1(student, data.x_test, data.y_test))
            validation.append(top1(student, data.x_val, data.y_val))
            message = (f"{name} seed {seed}: test {values[-1]:.4f}, "
                       f"validation {validation[-1]:.4f}")
            if kwargs.get("weight_bits") == 8:
                path = os.path.join(tmp, f"student_{progress['count']}"
                                    ".tflite")
                files.append(int8_file(student, path, data.x_test,
                                       data.y_test))
                message += (f", LiteRT {files[-1]['litert_accuracy']:.4f}, "
                            f"agreement {files[-1]['top1_agreement']:.4f}")
            log(f"[{progress['count']}/{progress['total']}] {message} "
                f"({time.perf_counter() - start:.0f} s)")
        row = {**summary(values), "validation": summary(validation), **{
            k: v for k, v in kwargs.items()
            if k in ("temperature", "alpha", "weight_bits")
        }}
        if "weight_bits" in kwargs:
            row["activation_bits"] = 8
            row["exported"] = bool(files)
        if files:
            for key in ("litert_accuracy", "top1_agreement"):
                row[key] = summary([f[key] for f in files])
            row["tflite_bytes"] = files[0]["tflite_bytes"]
        rows[name] = row
        log(f"{name}: {row['mean']:.4f} +- {row['std']:.4f} "
            f"(validation {row['validation']['mean']:.4f})")
    return rows


def accuracy_rows(args, data, teacher, tmp):
    """The grid first, then the rows at the reference it picks; returns
    the float rows, the quantized rows and the reference (T, alpha)."""
    cached = cache_teacher_outputs(teacher, data.x_train, batch_size=1000)
    distill = dict(teacher=teacher, cached=cached)
    grid = grid_configs(args, distill)
    # The total counts the annealed and quantized rows to come; it is made
    # exact once the reference is known.
    later = 1 + 2 * len(QUANTIZED_WEIGHT_BITS)
    progress = {"count": 0, "total": (len(grid) + later) * len(args.seeds)}
    rows = train_rows(args, data, grid, tmp, progress)
    reference = choose_reference(args, rows)
    log(f"reference T={reference[0]:g} alpha={reference[1]:g}")
    configs = {name: kwargs for name, kwargs in
               reference_configs(distill, reference).items()
               if name not in rows}
    progress["total"] = (len(grid) + len(configs)) * len(args.seeds)
    later_rows = train_rows(args, data, configs, tmp, progress)
    quantized = {name: row for name, row in later_rows.items()
                 if "weight_bits" in row}
    rows.update({name: row for name, row in later_rows.items()
                 if name not in quantized})
    return rows, quantized, reference


# -- Step time ---------------------------------------------------------


def step_times(args, data, teacher, reference):
    """Median seconds per step of each configuration (distillation at the
    `reference` (T, alpha)), interleaved."""
    temperature, alpha = reference
    count = args.timing_steps * args.batch_size
    x, y = data.x_train[:count], data.y_train[:count]
    cached = cache_teacher_outputs(teacher, x, batch_size=1000)

    def make(mode):
        keras.utils.set_random_seed(0)
        student = build_student(args.student_width)
        inputs = x
        if mode == "plain":
            model = student
            model.compile(keras.optimizers.Adam(args.learning_rate), LOSS)
        else:
            model = Distiller(teacher, student,
                              logits_distillation(temperature),
                              student_loss_weight=1.0 - alpha)
            model.compile(keras.optimizers.Adam(args.learning_rate),
                          loss=LOSS)
            if mode == "distill_cached":
                inputs = cached
        timer = epoch_timer(keras.callbacks.Callback)()

        def run():
            model.fit(inputs, y, epochs=1, batch_size=args.batch_size,
                      verbose=0, callbacks=[timer])

        run()  # traces the train step
        return run, timer

    configs = {mode: make(mode) for mode in
               ("plain", "distill_teacher", "distill_cached")}
    return interleaved_step_times(configs, args.timing_steps,
                                  args.timing_rounds)


# -- Report ------------------------------------------------------------


def plot(rows, args, path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    alone = rows["student alone"]
    axes.axhspan(alone["mean"] - alone["std"], alone["mean"] + alone["std"],
                 color="gray", alpha=0.2)
    axes.axhline(alone["mean"], color="gray", linestyle="--", linewidth=1,
                 label="student alone (mean +- std)")
    for alpha in args.alphas:
        grid = [rows[distilled_name(t, alpha)]
                for t in args.temperatures]
        axes.errorbar(args.temperatures, [r["mean"] for r in grid],
                      yerr=[r["std"] for r in grid], marker="o", capsize=3,
                      label=f"distilled, alpha={alpha:g}")
    axes.set_xscale("log", base=2)
    axes.set_xticks(args.temperatures)
    axes.set_xticklabels([f"{t:g}" for t in args.temperatures])
    axes.set_xlabel("temperature T")
    axes.set_ylabel("student test accuracy")
    axes.set_title(f"Fashion-MNIST: distillation grid ({len(args.seeds)} "
                   "seeds, mean +- std)")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def markdown(result, args, plot_name):
    models = result["models"]
    rows = result["rows"]
    alone = rows["student alone"]["mean"]
    reference = (result["reference"]["temperature"],
                 result["reference"]["alpha"])
    temperature, alpha = reference
    title = "# Knowledge distillation on Fashion-MNIST"
    if args.quick:
        title += " (quick smoke run: numbers not meaningful)"
    lines = [
        title,
        "",
        f"Training images: {result['train_images']:,}; validation images: "
        f"the last {result['validation_images']:,} of the 60,000 training "
        "images, never trained on; test images: "
        f"{result['test_images']:,}. Teacher "
        f"({models['teacher']['macs']:,} MACs, "
        f"{models['teacher']['params']:,} parameters) trained "
        f"{args.teacher_epochs} epochs: test accuracy "
        f"{result['teacher_accuracy']:.2%}. Student "
        f"({models['student']['macs']:,} MACs, "
        f"{models['student']['params']:,} parameters, "
        f"{models['teacher']['macs'] / models['student']['macs']:.0f}x "
        f"fewer MACs) trained {args.epochs} epochs in every row (Adam "
        f"{args.learning_rate}, cosine decay to 0, batch {args.batch_size}), "
        "seeds "
        f"{', '.join(map(str, args.seeds))}: the same initial weights in "
        "every row of a seed. alpha is the weight of the soft targets "
        "(Keras's `student_loss_weight = 1 - alpha`); the soft part is "
        "`T**2 * KL` (`LogitsDistillation` with `KLDivergence()`). "
        "Distilled rows read cached teacher outputs.",
        "",
        "| configuration | test accuracy, mean +- std | min - max | "
        "vs student alone (pts) | validation accuracy, mean |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        change = 100 * (row["mean"] - alone)
        lines.append(
            f"| {name} | {row['mean']:.2%} +- {100 * row['std']:.2f} | "
            f"{row['min']:.2%} - {row['max']:.2%} | {change:+.2f} | "
            f"{row['validation']['mean']:.2%} |"
        )
    fixed = rows[distilled_name(*reference)]
    annealed = rows[annealed_name(reference)]
    how = ("the grid cell with the best mean validation accuracy"
           if result["reference"]["chosen_on_validation"]
           else "given on the command line")
    lines += [
        "",
        f"Reference T={temperature:g}, alpha={alpha:g} ({how}) for the "
        "annealed and quantized rows. " + gain_sentence(
            rows["student alone"], fixed, "Distilled at the reference"),
        "",
        f"Fixed vs annealed temperature at alpha={alpha:g}: fixed "
        f"T={temperature:g} {fixed['mean']:.2%} +- "
        f"{100 * fixed['std']:.2f}; annealed per step from "
        f"{2 * temperature:g} to {temperature / 2:g} "
        f"{annealed['mean']:.2%} +- {100 * annealed['std']:.2f} "
        f"({100 * (annealed['mean'] - fixed['mean']):+.2f} pts).",
        "",
        f"![grid]({plot_name})",
    ]
    lines += quantized_lines(result, reference)
    timing = result["seconds_per_step"]
    if timing:
        plain = timing["plain"]
        lines += [
            "",
            f"## Step time (batch {args.batch_size}, median step of "
            f"{args.timing_rounds} interleaved rounds of "
            f"{args.timing_steps} steps, after tracing)",
            "",
            "| configuration | ms per step | ratio to plain student "
            "training |",
            "|---|---|---|",
        ]
        names = {
            "plain": "student alone (no teacher)",
            "distill_teacher": "distillation, teacher run every step",
            "distill_cached": "distillation, cached teacher outputs",
        }
        for key, seconds in timing.items():
            lines.append(f"| {names[key]} | {1000 * seconds:.2f} | "
                         f"{seconds / plain:.2f}x |")
        lines += [
            "",
            "The cache makes a distillation step "
            f"{timing['distill_teacher'] / timing['distill_cached']:.1f}x "
            "faster here; it applies to a fixed training set without random "
            "augmentation that fits in memory.",
        ]
    lines += command_lines()
    return "\n".join(lines)


def quantized_lines(result, reference):
    """The section of the quantized students (Polino et al. 2018)."""
    rows = result["quantized_rows"]
    alone = result["rows"]["student alone"]["mean"]
    lines = [
        "",
        "## Quantized students (quantized distillation, Polino et al. 2018)",
        "",
        "The student made quantization-aware with `quantize_model(student, "
        "weight_bits=4 or 8, activation_bits=8)` from the same initial "
        "weights, trained as long as every other row, alone or distilled at "
        f"T={reference[0]:g}, alpha={reference[1]:g} (cached teacher "
        "outputs); batch norm frozen for the last quarter of the steps. "
        "Keras accuracy is that of the quantization-aware model (its "
        "rounding on). The 8-bit students are exported with `to_tflite(..., "
        "quantization=\"int8\")` and run in LiteRT; agreement is the "
        "fraction of test images whose top-1 class the file and the Keras "
        "model share (`verify`). 4-bit weights are simulation only: "
        "TFLite's kernels are int8, so no file stores 4-bit weights.",
        "",
        "| configuration | weights / activations | Keras test accuracy, "
        "mean +- std | min - max | vs float student alone (pts) | LiteRT "
        "int8 accuracy, mean +- std | top-1 agreement, min over seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        if row["exported"]:
            litert = row["litert_accuracy"]
            files = (f"{litert['mean']:.2%} +- {100 * litert['std']:.2f} | "
                     f"{row['top1_agreement']['min']:.2%}")
        else:
            files = "simulation only | simulation only"
        lines.append(
            f"| {name} | {row['weight_bits']} / {row['activation_bits']} "
            f"bits | {row['mean']:.2%} +- {100 * row['std']:.2f} | "
            f"{row['min']:.2%} - {row['max']:.2%} | "
            f"{100 * (row['mean'] - alone):+.2f} | {files} |"
        )
    lines.append("")
    for bits in QUANTIZED_WEIGHT_BITS:
        alone_name, distilled = quantized_names(reference, bits)
        lines.append("- " + gain_sentence(
            rows[alone_name], rows[distilled],
            f"{bits}-bit weights, distilled vs alone"))
    return lines


def gain_sentence(alone, distilled, what):
    """`what`: the gain in mean test accuracy, set against the spread (the
    larger std of the two rows) and whether the seeds' ranges overlap."""
    gain = 100 * (distilled["mean"] - alone["mean"])
    spread = 100 * max(alone["std"], distilled["std"])
    verdict = "larger" if abs(gain) > spread else "not larger"
    ranges = ("the ranges over seeds do not overlap"
              if distilled["min"] > alone["max"]
              or distilled["max"] < alone["min"]
              else "the ranges over seeds overlap")
    return (f"{what}: {gain:+.2f} pts, {verdict} than the spread "
            f"({spread:.2f}, the larger std of the two); {ranges}.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR),
                        help="folder with the official Fashion-MNIST files "
                        "(default: ../shared/data/fashion-mnist beside the "
                        "checkout)")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=8,
                        help="student epochs, every row (default 8)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--student-width", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher-seed", type=int, default=100)
    parser.add_argument("--temperatures", type=float, nargs="+",
                        default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--alphas", type=float, nargs="+",
                        default=[0.5, 0.9])
    parser.add_argument("--temperature", type=float, default=None,
                        help="reference T of the fixed, annealed and "
                        "quantized rows (default: the grid cell best on the "
                        "validation images; give --alpha too)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="reference alpha (with --temperature)")
    parser.add_argument("--timing-steps", type=int, default=50)
    parser.add_argument("--timing-rounds", type=int, default=5)
    # 20,000 of the 60,000 training images keep the 42 student runs within
    # about an hour on two CPU cores.
    parser.add_argument("--train-limit", type=int, default=20000,
                        help="training images (default 20000; 0: all)")
    parser.add_argument("--validation-images", type=int, default=5000,
                        help="held out from the end of the 60,000 training "
                        "images, never trained on: they pick the reference "
                        "T and alpha (default 5000)")
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--name", default=None,
                        help="results file name, without extension (default "
                        "distillation, or distillation_quick with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="3,000 training and 1,000 test images, 2 "
                        "epochs, a 2x2 grid (smoke run)")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_limit, args.test_limit = 3000, 1000
        args.teacher_epochs, args.epochs = 2, 2
        args.temperatures, args.alphas = [1.0, 4.0], [0.5, 0.9]
        args.validation_images = 1000
        args.timing_steps, args.timing_rounds = 10, 3
    args.train_limit = args.train_limit or None
    if len(args.seeds) < 3:
        parser.error("use at least 3 seeds (--seeds) for a mean and spread")
    if (args.temperature is None) != (args.alpha is None):
        parser.error("give --temperature and --alpha together, or neither "
                     "(then the grid's best cell on validation is used)")
    data = split_data(args)
    log(f"Fashion-MNIST: {len(data.x_train)} train, {len(data.x_val)} "
        f"validation, {len(data.x_test)} test images")
    models = {}
    for name, model in (("teacher", build_teacher()),
                        ("student", build_student(args.student_width))):
        report = tfcompress.profile(model)
        models[name] = {"macs": report.macs, "params": report.params}
    ratio = models["teacher"]["macs"] / models["student"]["macs"]
    log(f"MACs: teacher {models['teacher']['macs']:,}, student "
        f"{models['student']['macs']:,} ({ratio:.0f}x fewer)")
    if ratio < 10:
        parser.error(f"the student must have >= 10x fewer MACs than the "
                     f"teacher; it has {ratio:.1f}x (--student-width)")

    teacher, teacher_accuracy = train_teacher(args, data)
    log(f"teacher: {teacher_accuracy:.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        rows, quantized_rows, reference = accuracy_rows(
            args, data, teacher, tmp)
    timing = step_times(args, data, teacher, reference)
    log("ms per step: " + ", ".join(
        f"{k} {1000 * v:.2f}" for k, v in timing.items()))

    os.makedirs(args.output_dir, exist_ok=True)
    # A smoke run never overwrites a full run's results.
    name = args.name or (
        "distillation_quick" if args.quick else "distillation")
    plot_name = f"{name}_grid.png"
    plot(rows, args, os.path.join(args.output_dir, plot_name))
    result = {
        "args": vars(args),
        "train_images": len(data.x_train),
        "validation_images": len(data.x_val),
        "test_images": len(data.x_test),
        "models": models,
        "teacher_accuracy": teacher_accuracy,
        "reference": {"temperature": reference[0], "alpha": reference[1],
                      "chosen_on_validation": args.temperature is None},
        "rows": rows,
        "quantized_rows": quantized_rows,
        "seconds_per_step": timing,
    }
    table = markdown(result, args, plot_name)
    with open(os.path.join(args.output_dir, f"{name}.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(table, flush=True)


if __name__ == "__main__":
    main()
