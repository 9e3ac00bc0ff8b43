"""Each tfcompress layer against the standard Keras layer it replaces.

For every pair, one-layer models on the same input are profiled (params,
MACs) and exported to float32 and int8 TFLite, and their median LiteRT
latency is measured side by side in one run (interleaved rounds, so machine
noise hits both alike). The table reports ratios: efficient / standard.

    .venv/bin/python benchmarks/layer_latency.py [--threads 1] [--runs 200]

Writes benchmarks/results/layer_latency.md and .json.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from tfcompress import layers  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402


def conv_bn_relu(filters, kernel_size):
    return keras.Sequential(
        [
            keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(6.0),
        ]
    )


def basic_residual_block(channels):
    """ResNet's basic block: two 3x3 conv + BN, ReLU, residual add."""
    inputs = keras.Input((32, 32, channels))
    x = conv_bn_relu(channels, 3)(inputs)
    x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.Add()([inputs, x]))


# (name, input shape, standard layer, efficient layer)
PAIRS = [
    (
        "DepthwiseSeparableConv2D(64) vs Conv2D 3x3 + BN",
        (32, 32, 64),
        lambda: conv_bn_relu(64, 3),
        lambda: layers.DepthwiseSeparableConv2D(64),
    ),
    (
        "InvertedResidual(64, t=4) vs ResNet basic block",
        (32, 32, 64),
        lambda: basic_residual_block(64),
        lambda: layers.InvertedResidual(64, expansion=4),
    ),
    (
        "ShuffleConv2D(128, groups=4) vs Conv2D 1x1",
        (32, 32, 128),
        lambda: keras.layers.Conv2D(128, 1),
        lambda: layers.ShuffleConv2D(128, groups=4),
    ),
    (
        "CPConv2D(64, 3, rank=16) vs Conv2D 3x3",
        (32, 32, 64),
        lambda: keras.layers.Conv2D(64, 3, padding="same"),
        lambda: layers.CPConv2D(64, 3, rank=16, padding="same"),
    ),
    (
        "PartialConv2D(n_div=4) vs Conv2D 3x3",
        (32, 32, 64),
        lambda: keras.layers.Conv2D(64, 3, padding="same", use_bias=False),
        lambda: layers.PartialConv2D(n_div=4),
    ),
    (
        "LowRankDense(1024, rank=64) vs Dense(1024)",
        (1024,),
        lambda: keras.layers.Dense(1024),
        lambda: layers.LowRankDense(1024, rank=64),
    ),
]


def one_layer_model(input_shape, layer):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads (default 1)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--output-dir",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
        help="where to write layer_latency.md/.json (default benchmarks/results)",
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, shape, make_standard, make_efficient) in enumerate(PAIRS):
            print(f"[{index + 1}/{len(PAIRS)}] {name}", flush=True)
            keras.utils.set_random_seed(0)
            calibration = rng.normal(size=(64, *shape)).astype("float32")
            row = {"pair": name, "input_shape": list(shape)}
            paths = {}
            for kind, make in (("standard", make_standard), ("efficient", make_efficient)):
                model = one_layer_model(shape, make())
                report = tfcompress.profile(model)
                row[f"{kind}_params"] = report.params
                row[f"{kind}_macs"] = report.macs
                for quantization in ("none", "int8"):
                    path = os.path.join(tmp, f"{index}_{kind}_{quantization}.tflite")
                    export = tfcompress.to_tflite(
                        model,
                        path,
                        quantization=quantization,
                        data=calibration if quantization == "int8" else None,
                    )
                    row[f"{kind}_{quantization}_bytes"] = export.size_bytes
                    paths[(kind, quantization)] = path
            latency = compare_latency(list(paths.values()), args.runs, args.rounds, args.threads)
            for (kind, quantization), path in paths.items():
                row[f"{kind}_{quantization}_ms"] = latency[path]
            row["macs_ratio"] = row["efficient_macs"] / row["standard_macs"]
            row["params_ratio"] = row["efficient_params"] / row["standard_params"]
            for quantization in ("none", "int8"):
                row[f"latency_ratio_{quantization}"] = (
                    row[f"efficient_{quantization}_ms"] / row[f"standard_{quantization}_ms"]
                )
            rows.append(row)
            print(
                f"    MACs x{row['macs_ratio']:.3f}, float32 latency "
                f"x{row['latency_ratio_none']:.2f}, int8 latency x{row['latency_ratio_int8']:.2f}",
                flush=True,
            )

    table = format_markdown(rows, args)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "layer_latency.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, "layer_latency.json"), "w") as f:
        json.dump({"threads": args.threads, "runs": args.runs, "rounds": args.rounds, "rows": rows}, f, indent=2)
    print()
    print(table)
    return 0


def format_markdown(rows, args):
    lines = [
        "# tfcompress layers vs the standard layers they replace",
        "",
        f"LiteRT (XNNPACK), batch 1, {args.threads} thread(s); latency is the median over "
        f"{args.rounds} interleaved rounds of each file's median of {args.runs} runs. "
        "Ratios are efficient / standard, measured side by side in one run.",
        "",
        "| pair | params (std -> eff) | MACs (std -> eff) | MACs ratio | float32 ms (std -> eff) | "
        "float32 latency ratio | int8 ms (std -> eff) | int8 latency ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pair']} | {r['standard_params']:,} -> {r['efficient_params']:,} "
            f"| {r['standard_macs']:,} -> {r['efficient_macs']:,} | {r['macs_ratio']:.3f} "
            f"| {r['standard_none_ms']:.3f} -> {r['efficient_none_ms']:.3f} | {r['latency_ratio_none']:.2f} "
            f"| {r['standard_int8_ms']:.3f} -> {r['efficient_int8_ms']:.3f} | {r['latency_ratio_int8']:.2f} |"
        )
    lines.append("")
    lines.append("Command: `.venv/bin/python benchmarks/layer_latency.py " f"--threads {args.threads} --runs {args.runs} --rounds {args.rounds}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
