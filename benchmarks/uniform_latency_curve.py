"""LiteRT latency of uniform channel sparsity, step by step.

`budget_search.py` fits uniform sparsity to a latency budget. This sweeps
the uniform sparsity of the same model (`--model cnn | mobilenet`, as
`budget_search.py` builds it; latency does not depend on the weights, so
it is not trained), exports each pruned model as float32, and times every
file side by side with the dense one in one run (1 thread). Each row lists
the layers' widths: where latency jumps, it is the widths crossing the
SIMD width of LiteRT's XNNPACK kernels, not the MACs.

    .venv/bin/python benchmarks/uniform_latency_curve.py --model mobilenet \
        [--sparsities 0.6 0.7 0.74 0.75 0.8]

Writes results/uniform_latency_<model>.md.
"""

import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.litert import compare_latency  # noqa: E402
from tfcompress.pruning import prune_channels  # noqa: E402
from tfcompress.search import measure_cost  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SPARSITIES = (0.5, 0.6, 0.65, 0.68, 0.7, 0.72, 0.74, 0.75, 0.76, 0.78, 0.8)


def widths(model):
    """`{layer: output channels}` of the layers `prune_channels` narrows."""
    return {
        layer.name: getattr(layer, "filters", None) or layer.units
        for layer in model.layers
        if getattr(layer, "filters", None) or getattr(layer, "units", None)
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("cnn", "mobilenet"), default="mobilenet")
    parser.add_argument("--sparsities", type=float, nargs="*", default=SPARSITIES)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = build(args.model)
    dense_macs = measure_cost(model).macs
    with tempfile.TemporaryDirectory() as tmp:
        dense = to_tflite(model, os.path.join(tmp, "dense.tflite"), verbose=0).path
        pruned = {}
        for sparsity in args.sparsities:
            narrow, _ = prune_channels(model, sparsity=sparsity, verbose=0)
            path = os.path.join(tmp, f"uniform_{sparsity}.tflite")
            pruned[sparsity] = (
                to_tflite(narrow, path, verbose=0).path,
                measure_cost(narrow).macs / dense_macs,
                widths(narrow),
            )
        log(f"timing {len(pruned) + 1} files side by side")
        ms = compare_latency(
            [dense, *(path for path, _, _ in pruned.values())],
            num_runs=args.runs,
            rounds=args.rounds,
        )
    lines = [
        f"# Uniform channel sparsity and LiteRT latency: {model.name}",
        "",
        f"Float32 files, LiteRT (XNNPACK), 1 thread; each file's median of "
        f"{args.runs} runs per round, median over {args.rounds} interleaved "
        f"rounds with the dense file (dense: {ms[dense]:.4f} ms; widths "
        f"{widths(model)}).",
        "",
        "| uniform sparsity | MACs | latency | widths |",
        "|---|---|---|---|",
    ]
    for sparsity, (path, macs_ratio, layer_widths) in pruned.items():
        ratio = ms[path] / ms[dense]
        shown = ", ".join(f"{name} {width}" for name, width in layer_widths.items())
        lines.append(f"| {sparsity:.0%} | {macs_ratio:.3f}x | {ratio:.3f}x | {shown} |")
        log(f"uniform {sparsity:.0%}: MACs {macs_ratio:.3f}x, latency {ratio:.3f}x")
    text = "\n".join(lines + command_lines())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"uniform_latency_{args.model}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
