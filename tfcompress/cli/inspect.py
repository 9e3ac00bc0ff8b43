"""`tfcompress inspect FILE.tflite`: ops, dtypes, int8 share, sizes."""

from tfcompress.cli import common


def add_parser(commands):
    parser = commands.add_parser(
        "inspect",
        help="list the ops, tensor dtypes, int8 share and size of a .tflite file",
        description=(
            "Read a .tflite file (nothing is run) and print its size and "
            "gzipped size, what its weighted ops compute in (the share of "
            "integer ops and of int8 weight bytes), and one line per op with "
            "its fused activation and the dtype and shape of each tensor."
        ),
    )
    parser.add_argument("file", metavar="FILE.tflite", help="the file to read")
    common.add_common_options(parser)
    return parser


def run(args, progress):
    inspection = common.read_tflite(args.file)
    from tfcompress.litert import tflite_precision

    precision = tflite_precision(args.file)
    size, gzipped = common.file_sizes(args.file)
    text = "\n".join(
        [
            f"{args.file}: {size:,} bytes, {gzipped:,} gzipped",
            precision.headline,
            str(inspection),
        ]
    )
    data = {
        "path": args.file,
        "size_bytes": size,
        "gzipped_size_bytes": gzipped,
        "precision": precision.to_dict(),
        "op_counts": inspection.op_counts,
        "weight_bytes_by_dtype": inspection.weight_bytes_by_dtype,
        "input_dtypes": inspection.input_dtypes,
        "output_dtypes": inspection.output_dtypes,
        "inspection": inspection.to_dict(),
    }
    return common.Result(text, data)
