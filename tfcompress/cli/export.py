"""`tfcompress export MODEL.keras`: a `.tflite` file, with `to_tflite`."""

import os

from tfcompress.cli import common

# The command line says "float32" where `to_tflite` says "none".
QUANTIZATION_MODES = {
    "float32": "none",
    "float16": "float16",
    "dynamic": "dynamic",
    "int8": "int8",
    "int16x8": "int16x8",
}


def add_parser(commands):
    parser = commands.add_parser(
        "export",
        help="export a .keras model to a .tflite file, float or quantized",
        description=(
            "Export a .keras model to a TFLite (LiteRT) file with "
            "tfcompress.export.to_tflite: builtin ops only, written "
            "atomically (nothing is left behind on failure), then read back "
            "to say what its weighted ops compute in. int8 and int16x8 need "
            "calibration examples (--data), unless the model is "
            "quantization-aware (from `tfcompress quantize`)."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="the model")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.tflite",
        help="the file to write (default: MODEL_<quantization>.tflite "
        "beside the model)",
    )
    parser.add_argument(
        "--quantization",
        choices=list(QUANTIZATION_MODES),
        default="float32",
        help="float32; float16 or dynamic (weights only); int8 or int16x8 "
        "(weights and activations, calibrated) (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        metavar="CALIB.npy",
        help="calibration examples for int8 / int16x8: a .npy array "
        "(N, *input_shape), or the `x` array of a .npz file; a few hundred "
        "training examples",
    )
    parser.add_argument(
        "--calibration",
        choices=["minmax", "percentile", "mse"],
        help="how activation ranges are chosen (default: minmax, the "
        "converter's own)",
    )
    parser.add_argument(
        "--percentile",
        type=float,
        help="with --calibration percentile: the %% of values kept in range "
        "(default: 99.99)",
    )
    parser.add_argument(
        "--calibration-steps",
        type=common.positive_int,
        default=100,
        help="examples to calibrate on (default: %(default)s)",
    )
    parser.add_argument(
        "--input-type",
        choices=["float32", "int8", "int16"],
        help="the file's input tensor type (default: float32)",
    )
    parser.add_argument(
        "--output-type",
        choices=["float32", "int8", "int16"],
        help="the file's output tensor type (default: float32)",
    )
    parser.add_argument(
        "--keep-float",
        metavar="LAYER",
        action="append",
        help="a layer whose ops stay float32 (int8 only); repeat it or give "
        "names separated by commas",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) if an int8 export leaves a weighted op in float",
    )
    parser.add_argument(
        "--select-tf-ops",
        action="store_true",
        help="allow TensorFlow (Flex) ops; the app must bundle the Flex "
        "delegate",
    )
    common.add_common_options(parser)
    return parser


def run(args, progress):
    quantization = QUANTIZATION_MODES[args.quantization]
    output = common.output_path(
        args.output,
        ".tflite",
        common.sibling(args.model, args.quantization, ".tflite"),
    )
    progress(f"loading {args.model}")
    model = common.load_keras_model(args.model)
    data = None
    if args.data is not None:
        data = common.load_array(args.data, "--data")
        common.check_examples(model, data, "--data")
        progress(
            f"{len(data)} calibration examples of shape {data.shape[1:]} "
            f"from {args.data}"
        )
    from tfcompress.export import to_tflite
    from tfcompress.quantization import is_quantization_aware

    if (
        quantization in ("int8", "int16x8")
        and data is None
        and not is_quantization_aware(model)
    ):
        raise common.CommandError(
            f"--quantization {args.quantization} needs calibration examples: "
            "--data CALIB.npy (a few hundred training examples), unless the "
            "model is quantization-aware (`tfcompress quantize`)"
        )

    progress(f"exporting {args.quantization} TFLite to {output}")
    try:
        export = to_tflite(
            model,
            output,
            quantization=quantization,
            data=data,
            calibration_steps=args.calibration_steps,
            select_tf_ops=args.select_tf_ops,
            calibration=args.calibration,
            percentile=args.percentile,
            input_type=args.input_type,
            output_type=args.output_type,
            keep_float=common.split_names(args.keep_float) or None,
            strict=args.strict,
            verbose=0,
        )
    except ValueError as error:
        # `strict` refusing a file is the export failing, not bad input.
        if args.strict and "Received: strict=True" in str(error):
            raise common.CommandError(str(error), common.EXIT_FAILURE) from None
        raise
    except RuntimeError as error:
        raise common.CommandError(
            f"the conversion failed: {error}", common.EXIT_FAILURE
        ) from None
    if export.precision is not None:
        progress(export.precision.headline)
    data = {
        "path": os.fspath(export),
        "quantization": args.quantization,
        "size_bytes": export.size_bytes,
        "gzipped_size_bytes": export.gzipped_size_bytes,
        "calibration": export.calibration,
        "keep_float": list(export.keep_float),
        "precision": (
            None if export.precision is None else export.precision.to_dict()
        ),
    }
    return common.Result(str(export), data)
