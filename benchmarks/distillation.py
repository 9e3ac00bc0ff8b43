"""Knowledge distillation on Fashion-MNIST: a wide CNN teaches a tiny student.

Teacher: `tfcompress.models.plain_cnn` with wide filters (96, 192) and a
512-unit hidden layer, trained once. Student: a MobileNet-style network
from tfcompress layers (stem conv, two `DepthwiseSeparableConv2D`, one
`InvertedResidual`), about 57x fewer MACs (`tfcompress.profile`). Every
student is trained for the same epochs with the same optimizer, for each of
`--seeds` seeds (the same initial weights for every row of a seed):

1. Student alone, on the labels.
2. Distilled with `tfcompress.distillation.Distiller`
   (`LogitsDistillation` with `keras.losses.KLDivergence()`, so Hinton et
   al.'s `T**2`-scaled loss), over a grid of temperatures T and soft-target
   weights alpha (= 1 - Keras's `student_loss_weight`); plotted.
3. Fixed vs annealed temperature (`DistillationScheduler`, linear per step
   from 2T to T/2) at the reference T and alpha.
4. Step time of distillation with the teacher run at every step and with
   `cache_teacher_outputs`, relative to plain training of the student,
   measured in interleaved rounds.

All distillation rows of 2-3 read cached teacher outputs (the tests show
cached and uncached training give the same weights); 4 measures what that
saves.

    .venv/bin/python benchmarks/distillation.py [--data-dir DIR] [--quick]

Writes benchmarks/results/distillation.md, distillation.json and
distillation_grid.png.
"""

import argparse
import json
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import epoch_timer  # noqa: E402
from fashion_mnist_runs import interleaved_step_times  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.callbacks import DistillationScheduler  # noqa: E402
from tfcompress.distillation import Distiller  # noqa: E402
from tfcompress.distillation import LinearSchedule  # noqa: E402
from tfcompress.distillation import cache_teacher_outputs  # noqa: E402
from tfcompress.layers import DepthwiseSeparableConv2D  # noqa: E402
from tfcompress.layers import InvertedResidual  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# -- Models ------------------------------------------------------------


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


def train_teacher(args, data):
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(args.teacher_seed)
    teacher = build_teacher()
    teacher.compile(keras.optimizers.Adam(1e-3), LOSS)
    log(f"teacher: training {args.teacher_epochs} epochs")
    teacher.fit(x_train, y_train, epochs=args.teacher_epochs,
                batch_size=args.batch_size, verbose=0)
    return teacher, top1(teacher, x_test, y_test)


def train_student(args, data, seed, teacher=None, cached=None,
                  temperature=None, alpha=None, anneal=False):
    """Test accuracy of a student trained alone or distilled."""
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(seed)
    student = build_student(args.student_width)
    optimizer = keras.optimizers.Adam(args.learning_rate)
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    if teacher is None:
        student.compile(optimizer, LOSS)
        student.fit(x_train, y_train, **fit)
        return top1(student, x_test, y_test)
    distiller = Distiller(
        teacher, student, logits_distillation(temperature),
        student_loss_weight=1.0 - alpha,
    )
    distiller.compile(optimizer, loss=LOSS)
    callbacks = []
    if anneal:
        steps = args.epochs * -(-len(x_train) // args.batch_size)
        callbacks.append(DistillationScheduler(
            temperature=LinearSchedule(2.0 * temperature, temperature / 2.0,
                                       steps),
            update_freq="step",
        ))
    distiller.fit(cached, y_train, callbacks=callbacks, **fit)
    return top1(student, x_test, y_test)


def summary(values):
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def accuracy_rows(args, data, teacher):
    x_train = data[0]
    cached = cache_teacher_outputs(teacher, x_train, batch_size=1000)
    rows = {}

    def run(name, **kwargs):
        values = []
        for seed in args.seeds:
            values.append(train_student(args, data, seed, **kwargs))
            log(f"{name} seed {seed}: {values[-1]:.4f}")
        rows[name] = {**summary(values), **{
            k: v for k, v in kwargs.items() if k in ("temperature", "alpha")
        }}
        log(f"{name}: {rows[name]['mean']:.4f} +- {rows[name]['std']:.4f}")

    run("student alone")
    distill = dict(teacher=teacher, cached=cached)
    for temperature in args.temperatures:
        for alpha in args.alphas:
            run(f"distilled T={temperature:g} alpha={alpha:g}",
                temperature=temperature, alpha=alpha, **distill)
    reference = f"distilled T={args.temperature:g} alpha={args.alpha:g}"
    if reference not in rows:
        run(reference, temperature=args.temperature, alpha=args.alpha,
            **distill)
    annealed = (f"annealed T={2 * args.temperature:g}->"
                f"{args.temperature / 2:g} alpha={args.alpha:g}")
    run(annealed, temperature=args.temperature, alpha=args.alpha,
        anneal=True, **distill)
    return rows, reference, annealed


# -- Step time ---------------------------------------------------------


def step_times(args, data, teacher):
    """Median seconds per step of each configuration, interleaved."""
    x_train, y_train, _, _ = data
    count = args.timing_steps * args.batch_size
    x, y = x_train[:count], y_train[:count]
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
                              logits_distillation(args.temperature),
                              student_loss_weight=1.0 - args.alpha)
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
        grid = [rows[f"distilled T={t:g} alpha={alpha:g}"]
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
    title = "# Knowledge distillation on Fashion-MNIST"
    if args.quick:
        title += " (quick smoke run: numbers not meaningful)"
    lines = [
        title,
        "",
        f"Training images: {result['train_images']:,}; test images: "
        f"{result['test_images']:,}. Teacher "
        f"({models['teacher']['macs']:,} MACs, "
        f"{models['teacher']['params']:,} parameters) trained "
        f"{args.teacher_epochs} epochs: test accuracy "
        f"{result['teacher_accuracy']:.2%}. Student "
        f"({models['student']['macs']:,} MACs, "
        f"{models['student']['params']:,} parameters, "
        f"{models['teacher']['macs'] / models['student']['macs']:.0f}x "
        f"fewer MACs) trained {args.epochs} epochs in every row (Adam "
        f"{args.learning_rate}, batch {args.batch_size}), seeds "
        f"{', '.join(map(str, args.seeds))}: the same initial weights in "
        "every row of a seed. alpha is the weight of the soft targets "
        "(Keras's `student_loss_weight = 1 - alpha`); the soft part is "
        "`T**2 * KL` (`LogitsDistillation` with `KLDivergence()`). "
        "Distilled rows read cached teacher outputs.",
        "",
        "| configuration | test accuracy, mean +- std | min - max | "
        "vs student alone (pts) |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        change = 100 * (row["mean"] - alone)
        lines.append(
            f"| {name} | {row['mean']:.2%} +- {100 * row['std']:.2f} | "
            f"{row['min']:.2%} - {row['max']:.2%} | {change:+.2f} |"
        )
    fixed, annealed = rows[result["fixed_row"]], rows[result["annealed_row"]]
    lines += [
        "",
        f"Fixed vs annealed temperature at alpha={args.alpha:g}: fixed "
        f"T={args.temperature:g} {fixed['mean']:.2%} +- "
        f"{100 * fixed['std']:.2f}; annealed per step from "
        f"{2 * args.temperature:g} to {args.temperature / 2:g} "
        f"{annealed['mean']:.2%} +- {100 * annealed['std']:.2f} "
        f"({100 * (annealed['mean'] - fixed['mean']):+.2f} pts).",
        "",
        f"![grid]({plot_name})",
    ]
    timing = result["seconds_per_step"]
    if timing:
        plain = timing["plain"]
        lines += [
            "",
            f"## Step time (batch {args.batch_size}, median of "
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the official Fashion-MNIST files")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8,
                        help="student epochs, every row (default 8)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--student-width", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher-seed", type=int, default=100)
    parser.add_argument("--temperatures", type=float, nargs="+",
                        default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--alphas", type=float, nargs="+",
                        default=[0.5, 0.9])
    parser.add_argument("--temperature", type=float, default=4.0,
                        help="reference T for the fixed/annealed rows")
    parser.add_argument("--alpha", type=float, default=0.9,
                        help="reference alpha for the fixed/annealed rows")
    parser.add_argument("--timing-steps", type=int, default=50)
    parser.add_argument("--timing-rounds", type=int, default=5)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="3,000 training and 1,000 test images, 2 "
                        "epochs, a 2x2 grid (smoke run)")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_limit, args.test_limit = 3000, 1000
        args.teacher_epochs, args.epochs = 2, 2
        args.temperatures, args.alphas = [1.0, 4.0], [0.5, 0.9]
        args.timing_steps, args.timing_rounds = 10, 3
    if len(args.seeds) < 3:
        parser.error("use at least 3 seeds (--seeds) for a mean and spread")
    (x_train, y_train), (x_test, y_test) = (
        tfcompress.datasets.load_fashion_mnist(
            args.data_dir, train_limit=args.train_limit,
            test_limit=args.test_limit,
        )
    )
    data = (x_train, y_train, x_test, y_test)
    log(f"Fashion-MNIST: {len(x_train)} train, {len(x_test)} test images")
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
    rows, reference, annealed = accuracy_rows(args, data, teacher)
    timing = step_times(args, data, teacher)
    log("ms per step: " + ", ".join(
        f"{k} {1000 * v:.2f}" for k, v in timing.items()))

    os.makedirs(args.output_dir, exist_ok=True)
    # A smoke run never overwrites a full run's results.
    name = "distillation_quick" if args.quick else "distillation"
    plot_name = f"{name}_grid.png"
    plot(rows, args, os.path.join(args.output_dir, plot_name))
    result = {
        "args": vars(args),
        "train_images": len(x_train),
        "test_images": len(x_test),
        "models": models,
        "teacher_accuracy": teacher_accuracy,
        "fixed_row": reference,
        "annealed_row": annealed,
        "rows": rows,
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
