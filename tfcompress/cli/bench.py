"""`tfcompress bench FILE.tflite [FILE2 ...]`: latency side by side."""

import os

from tfcompress.cli import common
from tfcompress.report import format_table


def add_parser(commands):
    parser = commands.add_parser(
        "bench",
        help="time .tflite files side by side in LiteRT, with ratios to the "
        "first",
        description=(
            "Measure the median latency of invoke() for each file on this "
            "CPU (tfcompress.export.compare_latency: the files take turns, "
            "round after round, so that noise hits them alike), and print "
            "size, gzipped size, integer ops and latency, with each file's "
            "ratios to the first. This CPU ranks files; it does not predict "
            "a phone's milliseconds."
        ),
    )
    parser.add_argument(
        "files", metavar="FILE.tflite", nargs="+", help="the files to time"
    )
    parser.add_argument(
        "--runs",
        type=common.positive_int,
        default=200,
        help="timed runs per file and round (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=common.positive_int,
        default=3,
        help="rounds; each file's figure is the median over rounds "
        "(default: %(default)s)",
    )
    common.add_threads_option(parser)
    common.add_common_options(parser)
    return parser


def run(args, progress):
    seen = set()
    for path in args.files:
        key = os.path.realpath(path)
        if key in seen:
            raise common.CommandError(f"{path} is listed twice")
        seen.add(key)
        common.read_tflite(path)
    from tfcompress.litert import compare_latency
    from tfcompress.litert import tflite_precision

    progress(
        f"timing {len(args.files)} file(s): {args.rounds} rounds of "
        f"{args.runs} runs, {args.threads} thread(s)"
    )
    latencies = compare_latency(
        args.files,
        num_runs=args.runs,
        rounds=args.rounds,
        num_threads=args.threads,
    )
    rows = []
    for path in args.files:
        size, gzipped = common.file_sizes(path)
        precision = tflite_precision(path)
        rows.append(
            {
                "path": path,
                "size_bytes": size,
                "gzipped_size_bytes": gzipped,
                "integer_ops": precision.num_integer_ops,
                "weighted_ops": precision.num_weighted_ops,
                "median_ms": latencies[path],
            }
        )
    first = rows[0]
    for row in rows:
        row["size_ratio"] = row["size_bytes"] / first["size_bytes"]
        row["latency_ratio"] = (
            row["median_ms"] / first["median_ms"]
            if first["median_ms"] > 0
            else None
        )
    headers = (
        "file",
        "bytes",
        "gzipped",
        "integer ops",
        "median latency",
        "size ratio",
        "latency ratio",
    )
    cells = [
        (
            row["path"],
            f"{row['size_bytes']:,}",
            f"{row['gzipped_size_bytes']:,}",
            f"{row['integer_ops']}/{row['weighted_ops']}",
            f"{row['median_ms']:.3f} ms",
            f"{row['size_ratio']:.2f}x",
            "-"
            if row["latency_ratio"] is None
            else f"{row['latency_ratio']:.2f}x",
        )
        for row in rows
    ]
    text = "\n".join(format_table(headers, cells))
    text += (
        f"\nmedian of {args.rounds} rounds x {args.runs} runs, batch 1, "
        f"{args.threads} thread(s); ratios to {first['path']}"
    )
    data = {
        "runs": args.runs,
        "rounds": args.rounds,
        "threads": args.threads,
        "files": rows,
    }
    return common.Result(text, data)
