"""`tfcompress prune | decompose | quantize MODEL.keras`: one-shot
transforms, a `.keras` model in, a `.keras` model and a report out.

Each calls the library's tool (`prune_channels`, `decompose`,
`quantize_model`), prints its report and saves the new model atomically.
Each new model wants fine-tuning before export: the message says so.
Magnitude pruning and distillation train, so they stay in Python
(`tfcompress.callbacks`).
"""

import argparse

from tfcompress.cli import common


def _add_model_options(parser, tag):
    parser.add_argument("model", metavar="MODEL.keras", help="the model")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.keras",
        help=f"the model to write (default: MODEL_{tag}.keras beside it)",
    )
    parser.add_argument(
        "--filters",
        metavar="REGEX",
        action="append",
        help="only layers whose name or path matches; repeat for several "
        "(default: every layer the tool handles)",
    )


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _rank(text):
    """`8` (a rank) or `0.25` (a fraction of each layer's full rank)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer rank or a fraction, got {text!r}"
        ) from None


def add_parsers(commands):
    prune = commands.add_parser(
        "prune",
        help="remove the least important channels (structured pruning)",
        description=(
            "Remove a fraction of the output channels of every prunable "
            "layer (tfcompress.pruning.prune_channels): the new model is "
            "smaller and faster, with the kept weights copied exactly. "
            "Fine-tune it for a few epochs before export."
        ),
    )
    _add_model_options(prune, "pruned")
    prune.add_argument(
        "--sparsity",
        type=_fraction,
        required=True,
        help="fraction of each layer's channels to remove, in [0, 1)",
    )
    prune.add_argument(
        "--importance",
        choices=["l1", "l2", "bn_gamma", "taylor"],
        default="l1",
        help="how channels are ranked; taylor needs --data and --labels and "
        "a compiled model (default: %(default)s)",
    )
    prune.add_argument("--data", metavar="X.npy", help="examples, for taylor")
    prune.add_argument(
        "--labels", metavar="Y.npy", help="their labels, for taylor"
    )
    prune.add_argument(
        "--min-channels",
        type=common.positive_int,
        default=1,
        help="fewest channels a layer keeps (default: %(default)s)",
    )
    prune.add_argument(
        "--round-to",
        type=common.positive_int,
        default=1,
        help="kept channels rounded up to a multiple of this "
        "(default: %(default)s)",
    )
    common.add_common_options(prune)

    decompose = commands.add_parser(
        "decompose",
        help="factorize large layers (SVD, CP, Tucker-2)",
        description=(
            "Replace large Dense and convolution layers by low-rank "
            "factorizations of their trained weights "
            "(tfcompress.decomposition.decompose). Give --rank or "
            "--target-macs-ratio. Fine-tune the new model for a few epochs "
            "before export."
        ),
    )
    _add_model_options(decompose, "decomposed")
    how = decompose.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--rank",
        type=_rank,
        help="rank of every factorized layer: an integer, or a fraction of "
        "each layer's full rank",
    )
    how.add_argument(
        "--target-macs-ratio",
        type=_fraction,
        metavar="RATIO",
        help="choose ranks so that the model keeps about this fraction of "
        "its MACs",
    )
    decompose.add_argument(
        "--method",
        choices=["auto", "svd", "channel_svd", "cp", "tucker2"],
        default="auto",
        help="factorization (default: %(default)s)",
    )
    decompose.add_argument(
        "--data",
        metavar="X.npy",
        help="examples on which to measure each layer's output error "
        "(default: random inputs)",
    )
    common.add_common_options(decompose)

    quantize = commands.add_parser(
        "quantize",
        help="make a quantization-aware copy to fine-tune, then export int8",
        description=(
            "Make a copy of the model that simulates TFLite's int8 "
            "arithmetic (tfcompress.quantization.quantize_model). Fine-tune "
            "it (quantization-aware training, with "
            "tfcompress.callbacks.QuantizationAwareTraining), then export "
            "it with `tfcompress export OUT.keras --quantization int8`, "
            "which needs no calibration data: the ranges are the model's."
        ),
    )
    _add_model_options(quantize, "qat")
    quantize.add_argument(
        "--data",
        metavar="X.npy",
        help="examples to initialize the activation ranges from "
        "(default: [-6, 6] until the first training batch)",
    )
    quantize.add_argument(
        "--weight-bits",
        type=int,
        default=8,
        help="bits simulated for kernels, 2 to 8 (default: %(default)s)",
    )
    quantize.add_argument(
        "--activation-bits",
        type=int,
        default=8,
        help="bits simulated for activations, 2 to 8 (default: %(default)s)",
    )
    quantize.add_argument(
        "--strict",
        action="store_true",
        help="fail if a selected layer cannot be quantized",
    )
    common.add_common_options(quantize)


def _load(args, progress, tag):
    output = common.output_path(
        args.output, ".keras", common.sibling(args.model, tag, ".keras")
    )
    progress(f"loading {args.model}")
    model = common.load_keras_model(args.model)
    x = None
    if getattr(args, "data", None) is not None:
        x = common.load_array(args.data, "--data")
        common.check_examples(model, x, "--data")
    return model, x, output


def _finish(new_model, report, output, progress, next_step):
    progress(f"saving {output}")
    common.save_keras_model(new_model, output)
    text = f"{report}\n\nwrote {output}; {next_step}"
    return common.Result(text, {"output": output, "report": report.to_dict()})


def run_prune(args, progress):
    model, x, output = _load(args, progress, "pruned")
    data = None
    if args.importance == "taylor":
        if x is None or args.labels is None:
            raise common.CommandError(
                "--importance taylor needs --data and --labels"
            )
        y = common.load_array(args.labels, "--labels")
        if len(y) != len(x):
            raise common.CommandError(
                f"--labels: {len(y)} labels for {len(x)} examples"
            )
        data = (x, y)
    elif x is not None or args.labels is not None:
        raise common.CommandError(
            "--data and --labels are only used by --importance taylor"
        )
    from tfcompress.pruning import prune_channels

    progress(f"pruning {args.sparsity:.0%} of the channels ({args.importance})")
    pruned, report = prune_channels(
        model,
        sparsity=args.sparsity,
        filters=args.filters,
        importance=args.importance,
        data=data,
        min_channels=args.min_channels,
        round_to=args.round_to,
        verbose=1,
    )
    return _finish(
        pruned, report, output, progress, "fine-tune it, then export it"
    )


def run_decompose(args, progress):
    model, x, output = _load(args, progress, "decomposed")
    from tfcompress.decomposition import decompose

    progress(f"decomposing ({args.method})")
    new_model, report = decompose(
        model,
        method=args.method,
        rank=args.rank,
        target_macs_ratio=args.target_macs_ratio,
        filters=args.filters,
        data=x,
        verbose=1,
    )
    return _finish(
        new_model, report, output, progress, "fine-tune it, then export it"
    )


def run_quantize(args, progress):
    model, x, output = _load(args, progress, "qat")
    from tfcompress.quantization import quantize_model

    progress("making a quantization-aware copy")
    qat, report = quantize_model(
        model,
        filters=args.filters,
        weight_bits=args.weight_bits,
        activation_bits=args.activation_bits,
        strict=args.strict,
        data=x,
    )
    return _finish(
        qat,
        report,
        output,
        progress,
        "fine-tune it with QuantizationAwareTraining, then `tfcompress "
        f"export {output} --quantization int8` (no --data needed)",
    )
