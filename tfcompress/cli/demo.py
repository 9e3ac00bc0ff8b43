"""`tfcompress demo`: the main job end to end, on bundled digits."""

import sys

from tfcompress.cli import common


def add_parser(commands):
    parser = commands.add_parser(
        "demo",
        help="train, compress, export and benchmark a model on digits",
        description=(
            "Train a small MobileNetV2-style classifier built from "
            "tfcompress layers on scikit-learn's digits (bundled, no "
            "download), compress it every way, export float32 and int8 "
            "TFLite, run each in the LiteRT interpreter and print a table "
            "of parameters, MACs, file size, accuracy and median latency. "
            "The table is also written beside the files as results.md and "
            "results.json, and plotted to results.png when matplotlib is "
            "installed."
        ),
    )
    parser.add_argument(
        "--epochs",
        type=common.positive_int,
        default=20,
        help="training epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--output-dir",
        default="tfcompress_demo",
        help="folder for model.keras, the .tflite files and the results "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=common.positive_int,
        default=1,
        help="LiteRT interpreter threads for accuracy and latency "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--runs",
        type=common.positive_int,
        default=200,
        help="timed single-image runs per model for the median latency "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the data split and training (default: %(default)s)",
    )
    common.add_common_options(parser)
    return parser


def run(args, progress, stdout):
    from tfcompress.demo import run_demo

    # The demo's lines are its output: on stdout, unless stdout is for JSON.
    stream = sys.stderr if args.json else stdout

    def log(line):
        print(line, file=stream, flush=True)

    rows = run_demo(
        epochs=args.epochs,
        output_dir=args.output_dir,
        num_threads=args.threads,
        benchmark_runs=args.runs,
        seed=args.seed,
        log=log,
    )
    return common.Result("", {"rows": [row.to_dict() for row in rows]})
