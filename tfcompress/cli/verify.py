"""`tfcompress verify MODEL.keras FILE.tflite --data x.npy`: parity."""

from tfcompress.cli import common


def add_parser(commands):
    parser = commands.add_parser(
        "verify",
        help="run a .keras model and its .tflite file on the same inputs "
        "and compare",
        description=(
            "Run the Keras model and its TFLite file (in the LiteRT "
            "interpreter) on the same examples and print the top-1 "
            "agreement, the largest and mean absolute errors and the "
            "relative error (tfcompress.export.verify). With "
            "--min-top1-agreement or --max-relative-error, exit 1 when the "
            "file falls short: a check for a build script."
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras", help="the model")
    parser.add_argument(
        "file", metavar="FILE.tflite", help="its exported .tflite file"
    )
    parser.add_argument(
        "--data",
        metavar="X.npy",
        required=True,
        help="held-out examples: a .npy array (N, *input_shape), or the `x` "
        "array of a .npz file",
    )
    parser.add_argument(
        "--min-top1-agreement",
        type=float,
        metavar="FRACTION",
        help="fail below this top-1 agreement, e.g. 0.99",
    )
    parser.add_argument(
        "--max-relative-error",
        type=float,
        metavar="FRACTION",
        help="fail above this relative error, e.g. 0.05",
    )
    common.add_threads_option(parser)
    common.add_common_options(parser)
    return parser


def run(args, progress):
    common.read_tflite(args.file)
    x = common.load_array(args.data, "--data")
    progress(f"loading {args.model}")
    model = common.load_keras_model(args.model)
    common.check_examples(model, x, "--data")
    from tfcompress.export import verify

    progress(f"running both on {len(x)} examples from {args.data}")
    report = verify(model, args.file, x, num_threads=args.threads)
    data = report.to_dict()
    text = report.table()
    exit_code = common.EXIT_OK
    if args.min_top1_agreement is not None or args.max_relative_error is not None:
        try:
            report.assert_parity(
                min_top1_agreement=args.min_top1_agreement,
                max_relative_error=args.max_relative_error,
            )
            data["passed"] = True
        except AssertionError as error:
            data["passed"] = False
            text += f"\nFAILED: {error}"
            exit_code = common.EXIT_FAILURE
    return common.Result(text, data, exit_code)
