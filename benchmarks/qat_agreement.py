"""What a QAT int8 file's agreement with its Keras model depends on.

One zoo model (`tfcompress.models.zoo_model(name, "full")`), trained as
`model_zoo.py` trains it (or longer: `--epochs`, `--train`), through
quantization-aware training (`--qat-epochs` on `--qat-examples`) and int8
export; then on the same held-out inputs:

- top-1 agreement of the QAT Keras model with its file run by LiteRT's
  default XNNPACK delegate, and with the file run by TFLite's builtin
  kernels (`LiteRTModel(..., xnnpack=False)`);
- top-1 agreement of the two runs of the file with each other: two correct
  int8 implementations that round differently. Where they disagree, the
  file's answer hinges on rounding, and no simulation in Keras can agree
  with both;
- the share of inputs whose top two logits the QAT model puts on the same
  int8 level (a tie that any one-step difference breaks), and the largest
  logit difference between Keras and XNNPACK;
- the same agreements on the "clear" inputs only, whose top two Keras
  logits lie more than `TIE_STEPS` output steps apart: where they still
  disagree, rounding differences grew through the network rather than
  tipping a near-tie;
- the models' own sensitivity: top-1 agreement of the float model, of the
  QAT Keras model and of the file under XNNPACK, each with itself on the
  same inputs moved by up to one input quantization step (one gray level
  of [0, 255] images). Where the QAT model's answer moves with such a
  change on as many inputs as it differs from its file, the file's
  disagreements are the model's sensitivity to one-step changes, which
  every rounding difference in the network is, not a simulation error.

Each run appends a row to `results/qat_agreement.jsonl` and rewrites
`results/qat_agreement.md`.

    .venv/bin/python benchmarks/qat_agreement.py --model efficientnet_b0 \
        [--epochs 8 --train 4000] [--qat-epochs 3 --qat-examples 4000]
"""

import argparse
import json
import os
import pathlib
import shlex
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from model_zoo import briefly_trained  # noqa: E402
from model_zoo import quantization_aware  # noqa: E402
from model_zoo import task_data  # noqa: E402
from tfcompress.export import LiteRTModel  # noqa: E402
from tfcompress.models import ZOO_MODELS  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# Inputs whose top two Keras logits lie more than this many steps of the
# file's int8 output apart are "clear": a few one-step rounding
# differences cannot swap them (the zoo tests' `TIE_STEPS`).
TIE_STEPS = 3
COLUMNS = (
    ("model", "model"),
    ("note", "run"),
    ("float_accuracy", "float top-1"),
    ("qat_accuracy", "QAT top-1"),
    ("keras_vs_xnnpack", "Keras vs XNNPACK"),
    ("keras_vs_builtin", "Keras vs builtin kernels"),
    ("xnnpack_vs_builtin", "XNNPACK vs builtin kernels"),
    ("tied", "top two tied in Keras"),
    ("clear", f"top two > {TIE_STEPS} steps apart"),
    ("clear_keras_vs_xnnpack", "Keras vs XNNPACK on those"),
    ("clear_xnnpack_vs_builtin", "XNNPACK vs builtin on those"),
    ("float_vs_nudged_float", "float vs float, inputs +-1 step"),
    ("keras_vs_nudged_keras", "Keras vs Keras, inputs +-1 step"),
    ("xnnpack_vs_nudged_xnnpack", "XNNPACK vs XNNPACK, inputs +-1 step"),
    ("max_abs_difference", "max logit difference"),
)


def run(args):
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = task_data(
        args.model,
        max(args.train, args.qat_examples),
        args.test,
        args.data_dir,
        0,
    )
    model = briefly_trained(
        args.model, x_train[: args.train], y_train[: args.train], args.epochs
    )
    float_top1 = np.argmax(model.predict(x_test, verbose=0), -1)
    float_accuracy = float(np.mean(float_top1 == y_test))
    log(f"{args.model}: float top-1 {float_accuracy:.4f}")
    qat_model, _ = quantization_aware(
        model,
        x_train[:200],
        x_train[: args.qat_examples],
        y_train[: args.qat_examples],
        epochs=args.qat_epochs,
        learning_rate=args.qat_learning_rate,
    )
    path = os.path.join(args.scratch, f"{args.model}_qat.tflite")
    tfcompress.to_tflite(qat_model, path, quantization="int8", verbose=False)
    keras_logits = qat_model.predict(x_test, batch_size=64, verbose=0)
    xnnpack_model = LiteRTModel(path, num_threads=1)
    xnnpack = xnnpack_model.predict(x_test)
    builtin = LiteRTModel(path, num_threads=1, xnnpack=False).predict(x_test)
    nudged = nudged_inputs(x_test, xnnpack_model)
    top1 = {
        name: np.argmax(logits, -1)
        for name, logits in (
            ("keras", keras_logits),
            ("xnnpack", xnnpack),
            ("builtin", builtin),
        )
    }
    if nudged is not None:
        top1["float"] = float_top1
        top1["nudged_float"] = np.argmax(model.predict(nudged, verbose=0), -1)
        top1["nudged_keras"] = np.argmax(
            qat_model.predict(nudged, batch_size=64, verbose=0), -1
        )
        top1["nudged_xnnpack"] = np.argmax(xnnpack_model.predict(nudged), -1)
    ordered = np.sort(keras_logits, -1)
    # The file's outputs are int8 levels, dequantized: the step is the
    # smallest gap between two of them.
    step = float(np.min(np.diff(np.unique(xnnpack))))
    clear = ordered[:, -1] - ordered[:, -2] > TIE_STEPS * step

    def agreement(a, b, where=None):
        same = top1[a] == top1[b]
        return float(np.mean(same if where is None else same[where]))

    def agreement_when_nudged(name):
        return None if nudged is None else agreement(name, f"nudged_{name}")

    return {
        "model": args.model,
        "note": args.note
        or (
            f"{args.epochs} epochs on {args.train}, QAT {args.qat_epochs} "
            f"on {args.qat_examples}"
        ),
        "arguments": {
            key: value for key, value in vars(args).items() if key != "scratch"
        },
        "examples": len(x_test),
        "float_accuracy": float_accuracy,
        "qat_accuracy": float(np.mean(top1["keras"] == y_test)),
        "keras_vs_xnnpack": agreement("keras", "xnnpack"),
        "keras_vs_builtin": agreement("keras", "builtin"),
        "xnnpack_vs_builtin": agreement("xnnpack", "builtin"),
        "tied": float(np.mean(ordered[:, -1] == ordered[:, -2])),
        "output_step": step,
        "clear": float(np.mean(clear)),
        "clear_keras_vs_xnnpack": agreement("keras", "xnnpack", clear),
        "clear_xnnpack_vs_builtin": agreement("xnnpack", "builtin", clear),
        "float_vs_nudged_float": agreement_when_nudged("float"),
        "keras_vs_nudged_keras": agreement_when_nudged("keras"),
        "xnnpack_vs_nudged_xnnpack": agreement_when_nudged("xnnpack"),
        "max_abs_difference": float(np.max(np.abs(keras_logits - xnnpack))),
        "seconds": time.perf_counter() - start,
    }


def nudged_inputs(x, litert_model):
    """`x` with each value moved uniformly by up to one step of the file's
    int8 input quantization (seeded); None for integer inputs (tokens)."""
    if not np.issubdtype(x.dtype, np.floating):
        return None
    scale = litert_model.input_details[0]["quantization"][0]
    if not scale:
        # A float input that the file quantizes itself: its QUANTIZE op's
        # range covers the inputs' span, so one step is about that span
        # over 255 (one gray level for [0, 255] images).
        scale = float(np.ptp(x)) / 255.0
    rng = np.random.default_rng(1)
    moved = x + rng.uniform(-scale, scale, x.shape).astype(x.dtype)
    return np.clip(moved, x.min(), x.max())


def markdown(rows):
    def cell(key, value):
        if key in ("model", "note"):
            return str(value)
        if value is None:
            return "-"
        if key == "max_abs_difference":
            return f"{value:.2f}"
        return f"{value:.1%}"

    lines = [
        "# QAT int8 files: agreement with Keras, and with each other",
        "",
        "Each zoo model's QAT int8 file run by LiteRT's XNNPACK delegate and "
        "by TFLite's builtin kernels on the same held-out inputs (512): two "
        "correct int8 implementations that round differently. `model_zoo.py` "
        "reports the first column; the third bounds what any simulation can "
        "reach. The +-1 step columns: each model against itself with every "
        "input value moved by up to one step of the file's int8 input (one "
        "gray level): how often its answer hinges on one-step changes. "
        "`benchmarks/qat_agreement.py`, one row per run.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(cell(key, row.get(key)) for key, _ in COLUMNS) + " |"
        )
    lines += ["", "Commands, in row order:", ""]
    defaults = vars(parser().parse_args([]))
    for row in rows:
        provenance = f" ({row['provenance']})" if "provenance" in row else ""
        lines.append(
            f"- {row['model']}, {row['note']}: "
            f"`{command_of(row, defaults)}`{provenance}"
        )
    return "\n".join(lines) + "\n"


def command_of(row, defaults):
    """The command line that wrote `row`: its arguments that differ from
    `defaults` (the parser's)."""
    words = [".venv/bin/python", "benchmarks/qat_agreement.py"]
    for key, value in row["arguments"].items():
        if key != "data_dir" and value != defaults.get(key):
            words += [f"--{key.replace('_', '-')}", shlex.quote(str(value))]
    return " ".join(words)


def parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=ZOO_MODELS, default="efficientnet_b0")
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--qat-examples", type=int, default=1000)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-learning-rate", type=float, default=1e-4)
    parser.add_argument("--test", type=int, default=512)
    parser.add_argument("--note", default="", help="what the row is, in words")
    return parser


def main():
    args = parser().parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        args.scratch = scratch
        row = run(args)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "qat_agreement.jsonl", "a") as file:
        file.write(json.dumps(row) + "\n")
    rows = [
        json.loads(line)
        for line in (RESULTS / "qat_agreement.jsonl").read_text().splitlines()
    ]
    text = markdown(rows)
    (RESULTS / "qat_agreement.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
