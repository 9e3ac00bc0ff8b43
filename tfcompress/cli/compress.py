"""`tfcompress compress MODEL.keras --data train.npz --latency-ratio R`:
the whole pipeline (`tfcompress.compress`) from the command line.

A trained classifier in, an int8 `.tflite` file and a report (one row per
step, every file timed side by side with the float32 file) out. Exit 1
when the file written does not meet the budget as measured.
"""

import argparse

import numpy as np

from tfcompress.cli import common

STEPS = ("search", "prune", "distill", "qat", "int8", "verify")


def _ratio(text):
    return common.bounded_number(text, float, lambda v: 0 < v <= 1, "in (0, 1]")


def _milliseconds(text):
    return common.bounded_number(text, float, lambda v: v > 0, "> 0")


def _non_negative(text):
    return common.bounded_number(text, int, lambda v: v >= 0, ">= 0")


def _steps(text):
    steps = [step for step in text.split(",") if step]
    unknown = [step for step in steps if step not in STEPS]
    if unknown or not steps:
        raise argparse.ArgumentTypeError(
            f"expected steps among {','.join(STEPS)}, got {text!r}"
        )
    return steps


def add_parser(commands):
    parser = commands.add_parser(
        "compress",
        help="prune, distill, quantize and export a model to fit a budget",
        description=(
            "Compress a trained classifier to an int8 .tflite file that fits "
            "a budget (tfcompress.compress): channel sparsity fitted to the "
            "budget (or searched with --trials), pruning, fine-tuning with "
            "distillation from the original, quantization-aware training, "
            "int8 export and verification in LiteRT. Latency budgets are "
            "measured on each candidate's int8 file, side by side with the "
            "model's float32 file (LiteRT on this CPU, --threads). Exit 1 "
            "if the file written misses the budget as measured."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="the trained model")
    parser.add_argument(
        "--data",
        metavar="TRAIN.npz",
        required=True,
        help="training examples: a .npz file with arrays `x` and `y` "
        "(integer labels)",
    )
    parser.add_argument(
        "--validation-data",
        metavar="VAL.npz",
        help="held-out examples, like --data (default: 10%% of --data)",
    )
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument(
        "--latency-ms",
        type=_milliseconds,
        metavar="MS",
        help="most LiteRT milliseconds per example (batch 1)",
    )
    budget.add_argument(
        "--latency-ratio",
        type=_ratio,
        metavar="R",
        help="most latency as a fraction of the float32 file's, e.g. 0.33",
    )
    budget.add_argument(
        "--macs-ratio", type=_ratio, metavar="R", help="most MACs, as a fraction"
    )
    budget.add_argument(
        "--size-ratio",
        type=_ratio,
        metavar="R",
        help="most .tflite bytes, as a fraction of the float32 file's",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.tflite",
        help="the file to write (default: MODEL_int8.tflite beside it)",
    )
    parser.add_argument(
        "--steps",
        type=_steps,
        default=list(STEPS),
        help=f"comma-separated subset of {','.join(STEPS)} (default: all)",
    )
    parser.add_argument(
        "--trials",
        type=_non_negative,
        default=0,
        help="searched trials per layer sparsity; 0 fits uniform sparsity "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=_non_negative,
        default=2,
        help="distillation epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--qat-epochs",
        type=_non_negative,
        default=1,
        help="quantization-aware training epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=common.positive_int,
        default=64,
        help="training batch size (default: %(default)s)",
    )
    common.add_threads_option(parser)
    common.add_common_options(parser)
    return parser


def _load_pair(path, option):
    """`(x, y)` from a `.npz` file with arrays `x` and `y`."""
    if not path.endswith(".npz"):
        raise common.CommandError(
            f"{option}: expected a .npz file with arrays x and y, got {path}"
        )
    x = common.load_array(path, option)
    with np.load(path, allow_pickle=False) as loaded:
        if "y" not in loaded.files:
            raise common.CommandError(
                f"{option}: {path} has no array named 'y' (the labels); it "
                f"holds {', '.join(loaded.files)}"
            )
        y = loaded["y"]
    if len(y) != len(x):
        raise common.CommandError(
            f"{option}: {path} holds {len(x)} examples but {len(y)} labels"
        )
    return x, y


def run(args, progress):
    data = _load_pair(args.data, "--data")
    validation = (
        None
        if args.validation_data is None
        else _load_pair(args.validation_data, "--validation-data")
    )
    output = common.output_path(
        args.output, ".tflite", common.sibling(args.model, "int8", ".tflite")
    )
    progress(f"loading {args.model}")
    model = common.load_keras_model(args.model)
    common.check_examples(model, data[0], "--data")
    import tfcompress
    from tfcompress.search import Budget

    budget = Budget(
        latency_ms=args.latency_ms,
        latency_ratio=args.latency_ratio,
        macs_ratio=args.macs_ratio,
        tflite_bytes_ratio=args.size_ratio,
    )
    progress(f"compressing to {budget} ({', '.join(args.steps)})")
    _, report = tfcompress.compress(
        model,
        data,
        budget=budget,
        validation_data=validation,
        steps=args.steps,
        path=output,
        trials=args.trials,
        epochs=args.epochs,
        qat_epochs=args.qat_epochs,
        batch_size=args.batch_size,
        num_threads=args.threads,
        verbose=1,
    )
    data = report.to_dict()
    text = report.table()
    exit_code = common.EXIT_OK
    if not report.budget_met:
        text += f"\nFAILED: {output} misses the budget ({budget}) as measured"
        exit_code = common.EXIT_FAILURE
    return common.Result(text, data, exit_code)
