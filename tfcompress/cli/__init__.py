"""The `tfcompress` command line: `tfcompress demo`, `tfcompress profile`."""

import argparse
import os
import sys


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _shape(text):
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 32,32,3; "
            f"got {text!r}"
        )
    return shape


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfcompress",
        description=(
            "Model compression for Keras 3, exported to TFLite (LiteRT)."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="train, compress, export and benchmark a model on digits",
        description=(
            "Train a small MobileNetV2-style classifier built from "
            "tfcompress layers on scikit-learn's digits (bundled, no "
            "download), export float32 and int8 TFLite, run both in the "
            "LiteRT interpreter and print a table of parameters, MACs, file "
            "size, accuracy and median latency."
        ),
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=20,
        help="training epochs (default: %(default)s)",
    )
    demo.add_argument(
        "--output-dir",
        default="tfcompress_demo",
        help="folder for model.keras and the .tflite files "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="LiteRT interpreter threads for accuracy and latency "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--runs",
        type=_positive_int,
        default=200,
        help="timed single-image runs per model for the median latency "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the data split and training (default: %(default)s)",
    )

    prof = commands.add_parser(
        "profile",
        help="print parameters, MACs and bytes per layer of a .keras model",
        description=(
            "Load a .keras model (safe mode) and print one row per layer: "
            "output shape, parameters, MACs per example and bytes at "
            "float32 and int8."
        ),
    )
    prof.add_argument("model", help="path to a .keras file")
    prof.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="input shape without the batch dimension, e.g. 32,32,3; "
        "needed for subclassed models and unknown spatial dimensions",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Silence TensorFlow's C++ start-up chatter before it is imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "demo":
        from tfcompress.demo import run_demo

        run_demo(
            epochs=args.epochs,
            output_dir=args.output_dir,
            num_threads=args.threads,
            benchmark_runs=args.runs,
            seed=args.seed,
        )
        return 0
    if args.command == "profile":
        return _profile(args.model, args.input_shape)
    raise AssertionError(args.command)  # argparse rejects other commands


def _profile(path, input_shape):
    if not os.path.isfile(path):
        print(f"tfcompress profile: no such file: {path}", file=sys.stderr)
        return 2
    if not path.endswith(".keras"):
        print(
            f"tfcompress profile: expected a .keras file, got {path}",
            file=sys.stderr,
        )
        return 2
    import keras

    import tfcompress.layers  # noqa: F401  registers tfcompress layers
    from tfcompress.analysis import profile

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises several types for bad files.
        print(
            f"tfcompress profile: could not load {path} as a Keras model "
            f"(safe_mode=True): {error}",
            file=sys.stderr,
        )
        return 2
    try:
        report = profile(model, input_shape=input_shape)
    except ValueError as error:
        print(f"tfcompress profile: {error}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
