"""`tfcompress profile MODEL.keras`: parameters, MACs, bytes per layer."""

import argparse

from tfcompress.cli import common


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


def add_parser(commands):
    parser = commands.add_parser(
        "profile",
        help="print parameters, MACs and bytes per layer of a .keras model",
        description=(
            "Load a .keras model (safe mode) and print one row per layer: "
            "output shape, parameters, MACs per example and bytes at "
            "float32 and int8."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="path to a .keras file")
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="input shape without the batch dimension, e.g. 32,32,3; "
        "needed for subclassed models and unknown spatial dimensions",
    )
    common.add_common_options(parser)
    return parser


def run(args, progress):
    model = common.load_keras_model(args.model)
    from tfcompress.analysis import profile

    report = profile(model, input_shape=args.input_shape)
    return common.Result(str(report), report.to_dict())
