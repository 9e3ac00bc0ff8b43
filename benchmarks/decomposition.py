"""Low-rank and tensor decomposition on Fashion-MNIST: fewer MACs, accuracy kept.

For a plain CNN (`tfcompress.models.plain_cnn`: conv1 32, conv2 64, fc 128,
logits) trained on Fashion-MNIST, `decompose` replaces trained layers by
factorized ones computed from their weights: SVD on the Dense layer `fc`,
CP (ALS, Lebedev et al. 2015) and Tucker-2 (Kim et al. 2016) on `conv2`,
each at a few ranks, and CP on conv2 (the largest of those CP ranks that
keeps at most a third of the conv MACs) with SVD on fc (the largest SVD
rank) together. conv1 has a
single input channel, so factorizing it saves nothing; conv2 holds about
85% of the model's MACs, and the "conv MACs" are conv1 + conv2 (or what
replaced them).

Each decomposed model is fine-tuned briefly; the dense model is fine-tuned
as long, so every model has seen the same epochs. For each: conv and
whole-model MACs ratio, relative output error of each decomposed layer
before fine-tuning (on 256 training images), accuracy before and after the
fine-tune, LiteRT int8 accuracy, and the float32 and int8 LiteRT latency
ratio to the dense model (1 thread, files measured side by side in
interleaved rounds). As Lebedev et al. do, each CP model fine-tuned from
its ALS factors is compared with the same architecture whose CP layer
starts from random weights (its initializers; the other layers keep their
trained weights), fine-tuned as long. Also the rank-selection table and
plot of conv2 (CP) and fc (SVD) on the trained model. With the defaults,
28 epochs of training in all (6 + 2 for the dense model, 2 for each of the
11 decomposed models).

    .venv/bin/python benchmarks/decomposition.py [--data-dir DIR] [--quick]

Writes benchmarks/results/decomposition.md, .json and
decomposition_rank_selection.png (`_quick` names for a quick run).
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import float_and_int8_exports as exports  # noqa: E402
from fashion_mnist_runs import compile_keras3 as compiled  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.decomposition import decompose  # noqa: E402
from tfcompress.decomposition import fidelity  # noqa: E402
from tfcompress.decomposition import rank_selection  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
CONV = "conv2"
DENSE = "fc"
PROBES = 256


def conv_macs(model, names):
    """MACs per example of the layers `names` (or what replaced them)."""
    rows = tfcompress.profile(model).rows
    return sum(row.macs for row in rows if row.depth == 0 and row.name in names)


def configurations(args):
    """The decompositions to run: (config, {layer: method}, {layer: rank})."""
    configs = []
    for rank in args.svd_ranks:
        configs.append((f"svd-{rank}", {DENSE: "svd"}, {DENSE: rank}))
    for rank in args.cp_ranks:
        configs.append((f"cp-{rank}", {CONV: "cp"}, {CONV: rank}))
    for rank_in, rank_out in args.tucker2_ranks:
        configs.append((f"tucker2-{rank_in}x{rank_out}", {CONV: "tucker2"},
                        {CONV: (rank_in, rank_out)}))
    return configs


def reinitialized(model, names, seed):
    """`model` with the layers `names` given fresh weights (initializers).

    `clone_model` rebuilds every layer from its config, with new weights;
    the other layers get `model`'s weights back.
    """
    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)
    for layer in model.layers:
        if layer.name not in names and layer.weights:
            fresh.get_layer(layer.name).set_weights(layer.get_weights())
    return fresh


def output_errors(trained, model, names, probes):
    """Relative output error of each layer of `names` against `trained`'s."""
    inputs = fidelity.layer_inputs(
        trained, [trained.get_layer(name) for name in names], probes
    )
    return {
        name: fidelity.output_error(
            trained.get_layer(name), model.get_layer(name), x
        )
        for name, x in zip(names, inputs)
    }


def run(args, data, tmp):
    x_train, y_train, x_test, y_test = data
    calibration = x_train[:200]
    probes = x_train[:PROBES]
    fit = dict(batch_size=args.batch_size, verbose=0)

    keras.utils.set_random_seed(args.seed)
    dense = compiled(tfcompress.models.plain_cnn((28, 28, 1), 10),
                     args.learning_rate)
    log(f"training dense for {args.epochs} epochs")
    dense.fit(x_train, y_train, epochs=args.epochs, **fit)
    trained = keras.models.clone_model(dense)
    trained.set_weights(dense.get_weights())
    trained_accuracy = top1(trained, x_test, y_test)
    log(f"dense after {args.epochs} epochs: {trained_accuracy:.4f}")
    conv_names = [layer.name for layer in trained.layers
                  if isinstance(layer, keras.layers.Conv2D)]
    dense_profile = tfcompress.profile(trained)
    dense_conv_macs = conv_macs(trained, conv_names)

    log(f"rank selection: {CONV} (cp) at {args.selection_cp_ranks}, "
        f"{DENSE} (svd) at {args.selection_svd_ranks}")
    selection = rank_selection(
        trained,
        method={CONV: "cp", DENSE: "svd"},
        ranks={CONV: list(args.selection_cp_ranks),
               DENSE: list(args.selection_svd_ranks)},
        data=probes,
        n_iter_max=args.n_iter_max,
        random_state=args.seed,
        verbose=False,
    )
    suffix = "_quick" if args.quick else ""
    selection.plot(os.path.join(args.output_dir,
                                f"decomposition_rank_selection{suffix}.png"))

    compiled(dense, args.finetune_learning_rate)
    log(f"fine-tuning dense for {args.finetune_epochs} epochs")
    keras.utils.set_random_seed(args.seed)
    dense.fit(x_train, y_train, epochs=args.finetune_epochs, **fit)
    paths, litert = exports(dense, "dense", tmp, calibration, x_test, y_test)
    rows = [{
        "config": "dense",
        "method": "-",
        "ranks": {},
        "init": "-",
        "conv_macs": dense_conv_macs,
        "conv_macs_ratio": 1.0,
        "macs": dense_profile.macs,
        "macs_ratio": 1.0,
        "params": dense_profile.params,
        "output_error": {},
        "accuracy_before_finetune": trained_accuracy,
        "keras_accuracy": top1(dense, x_test, y_test),
        "litert_float32_accuracy": litert["none"],
        "litert_int8_accuracy": litert["int8"],
        "paths": paths,
    }]
    log(f"dense after {args.epochs}+{args.finetune_epochs} epochs: "
        f"{rows[0]['keras_accuracy']:.4f}")

    def finetune(config, model, report, method, ranks, init, errors=None):
        before = top1(model, x_test, y_test)
        compiled(model, args.finetune_learning_rate)
        model_conv_macs = conv_macs(model, conv_names)
        log(f"{config}: conv MACs x{model_conv_macs / dense_conv_macs:.3f}, "
            f"model MACs x{report.macs_ratio:.3f}, accuracy before "
            f"fine-tuning {before:.4f}; fine-tuning {args.finetune_epochs} "
            "epochs")
        keras.utils.set_random_seed(args.seed)
        model.fit(x_train, y_train, epochs=args.finetune_epochs, **fit)
        paths, litert = exports(model, config, tmp, calibration, x_test,
                                y_test)
        row = {
            "config": config,
            "method": " + ".join(dict.fromkeys(method.values())),
            "ranks": {name: ranks[name] for name in method},
            "init": init,
            "conv_macs": model_conv_macs,
            "conv_macs_ratio": model_conv_macs / dense_conv_macs,
            "macs": report.macs_after,
            "macs_ratio": report.macs_ratio,
            "params": report.params_after,
            "output_error": errors or {
                layer.name: layer.output_error for layer in report.rows
            },
            "accuracy_before_finetune": before,
            "keras_accuracy": top1(model, x_test, y_test),
            "litert_float32_accuracy": litert["none"],
            "litert_int8_accuracy": litert["int8"],
            "paths": paths,
        }
        if init == "factors":
            row["report"] = report.to_dict()
        log(f"{config}: {row['keras_accuracy']:.4f} after fine-tuning, "
            f"LiteRT int8 {row['litert_int8_accuracy']:.4f}")
        return row

    def decomposed(config, method, ranks):
        model, report = decompose(
            trained, method=method, rank=ranks, data=probes,
            n_iter_max=args.n_iter_max, random_state=args.seed,
            verbose=False,
        )
        if report.skipped:
            raise RuntimeError(f"{config}: layers skipped: {report.skipped}")
        return model, report

    for config, method, ranks in configurations(args):
        model, report = decomposed(config, method, ranks)
        rows.append(finetune(config, model, report, method, ranks,
                             "factors"))
        if "cp" in method.values():
            # Lebedev et al.'s baseline: the same architecture, its CP
            # layer trained from random weights instead of the factors.
            fresh = reinitialized(model, list(method), args.seed)
            errors = output_errors(trained, fresh, list(method), probes)
            rows.append(finetune(f"{config}-random", fresh, report, method,
                                 ranks, "random", errors))

    # CP on conv2 and SVD on fc together: the largest CP rank that keeps at
    # most a third of the conv MACs (the target), the largest SVD
    # rank.
    meeting = [r for r in rows if r["method"] == "cp"
               and r["init"] == "factors" and r["conv_macs_ratio"] <= 1 / 3]
    if meeting and args.svd_ranks:
        cp_rank = max(r["ranks"][CONV] for r in meeting)
        svd_rank = max(args.svd_ranks)
        method = {CONV: "cp", DENSE: "svd"}
        ranks = {CONV: cp_rank, DENSE: svd_rank}
        config = f"cp-{cp_rank}+svd-{svd_rank}"
        model, report = decomposed(config, method, ranks)
        rows.append(finetune(config, model, report, method, ranks,
                             "factors"))

    log(f"latency, {args.rounds} interleaved rounds of {args.runs} runs")
    for quantization in ("none", "int8"):
        medians = compare_latency(
            [r["paths"][quantization] for r in rows],
            num_runs=args.runs, rounds=args.rounds, num_threads=1,
        )
        for r in rows:
            r[f"{quantization}_ms"] = medians[r["paths"][quantization]]
    for r in rows:
        del r["paths"]
    return rows, selection


def format_ranks(ranks):
    """`{"conv2": (8, 16), "fc": 32}` -> `"conv2 8x16, fc 32"`."""
    if not ranks:
        return "-"
    return ", ".join(
        f"{name} " + ("x".join(map(str, rank))
                      if isinstance(rank, (tuple, list)) else str(rank))
        for name, rank in ranks.items()
    )


def markdown(rows, selection, args, test_images):
    dense = rows[0]
    lines = [
        "# Low-rank and tensor decomposition on Fashion-MNIST",
        "",
        f"`plain_cnn` trained {args.epochs} epochs (Adam "
        f"{args.learning_rate}, batch {args.batch_size}); `decompose` on the "
        f"trained model, then {args.finetune_epochs} epochs of fine-tuning "
        f"(Adam {args.finetune_learning_rate}); the dense model fine-tuned "
        "as long. Conv MACs: conv1 + conv2 (conv1 has one input channel and "
        "is never decomposed); model MACs: the whole model. Output error: "
        "relative error of each decomposed layer's output against the "
        f"original's on {PROBES} training images, before fine-tuning. "
        "`-random` rows: the same architecture as the CP row above, its CP "
        "layer re-initialized at random (the other layers trained), "
        f"fine-tuned as long. Accuracy on {test_images:,} test images; "
        "int8 files calibrated on 200 training images. LiteRT latency: "
        "batch 1, "
        f"1 thread, XNNPACK, median over {args.rounds} interleaved rounds "
        f"of {args.runs} runs; ratios are decomposed / dense in the same "
        f"run (dense: float32 {dense['none_ms']:.3f} ms, int8 "
        f"{dense['int8_ms']:.3f} ms).",
        "",
        "| config | method | ranks | conv MACs ratio | model MACs ratio | "
        "params | rel. output error | acc before fine-tune | acc after | "
        "change vs dense (pts) | LiteRT int8 acc | float32 latency ratio | "
        "int8 latency ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        errors = ", ".join(f"{name} {error:.3f}"
                           for name, error in r["output_error"].items())
        method = r["method"]
        if r["init"] == "random":
            method += " (random init)"
        lines.append(
            f"| {r['config']} | {method} | {format_ranks(r['ranks'])} | "
            f"{r['conv_macs_ratio']:.3f} | {r['macs_ratio']:.3f} | "
            f"{r['params']:,} | {errors or '-'} | "
            f"{r['accuracy_before_finetune']:.2%} | "
            f"{r['keras_accuracy']:.2%} | "
            f"{100 * (r['keras_accuracy'] - dense['keras_accuracy']):+.2f} | "
            f"{r['litert_int8_accuracy']:.2%} | "
            f"{r['none_ms'] / dense['none_ms']:.2f} | "
            f"{r['int8_ms'] / dense['int8_ms']:.2f} |"
        )
    meeting = [
        r["config"] for r in rows[1:]
        if r["conv_macs_ratio"] <= 1 / 3
        and 100 * (r["keras_accuracy"] - dense["keras_accuracy"]) >= -1
    ]
    lines += [
        "",
        "Target (at least 3x fewer conv MACs for at most 1 point of "
        "accuracy lost after fine-tuning) met by: "
        + (", ".join(meeting) if meeting else "none") + ".",
        "",
        f"## Rank selection: {CONV} (CP) and {DENSE} (SVD) of the trained "
        "model",
        "",
        "Per-layer MACs ratio (replacement / original layer); errors before "
        f"fine-tuning, output errors on {PROBES} training images.",
        "",
        "```",
        selection.table(),
        "```",
        "",
        "![rank selection](decomposition_rank_selection"
        + ("_quick" if args.quick else "") + ".png)",
    ]
    lines += command_lines()
    return "\n".join(lines)


def rank_pair(text):
    try:
        rank_in, rank_out = (int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected RINxROUT, e.g. 8x16; got {text!r}"
        ) from None
    return rank_in, rank_out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR),
                        help="folder with the official Fashion-MNIST files "
                        "(default: ../shared/data/fashion-mnist beside the "
                        "checkout)")
    parser.add_argument("--svd-ranks", nargs="*", type=int, default=[16, 32],
                        help="ranks of fc (SVD)")
    parser.add_argument("--cp-ranks", nargs="*", type=int,
                        default=[16, 32, 48], help="ranks of conv2 (CP)")
    parser.add_argument("--tucker2-ranks", nargs="*", type=rank_pair,
                        default=[(8, 16), (12, 24)],
                        help="rank pairs of conv2 (Tucker-2), as RINxROUT")
    parser.add_argument("--selection-cp-ranks", nargs="+", type=int,
                        default=[4, 8, 16, 24, 32, 48, 64, 96, 128, 192])
    parser.add_argument("--selection-svd-ranks", nargs="+", type=int,
                        default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--n-iter-max", type=int, default=100,
                        help="ALS / HOOI iterations")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-learning-rate", type=float, default=5e-4)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training and 2,000 test images, 1+1 "
                        "epochs, fewer ranks in the rank selection (smoke "
                        "run)")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.finetune_epochs = 1, 1
        args.runs, args.rounds = 20, 1
        args.selection_cp_ranks = [8, 16, 32, 48]
        args.selection_svd_ranks = [8, 16, 32, 64]
    os.makedirs(args.output_dir, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = (
        tfcompress.datasets.load_fashion_mnist(
            args.data_dir,
            train_limit=5000 if args.quick else None,
            test_limit=2000 if args.quick else None,
        )
    )
    log(f"Fashion-MNIST: {len(x_train)} train, {len(x_test)} test images")
    data = (x_train, y_train, x_test, y_test)
    with tempfile.TemporaryDirectory() as tmp:
        rows, selection = run(args, data, tmp)
    table = markdown(rows, selection, args, len(x_test))
    suffix = "_quick" if args.quick else ""
    with open(os.path.join(args.output_dir, f"decomposition{suffix}.md"),
              "w") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, f"decomposition{suffix}.json"),
              "w") as f:
        json.dump({"args": vars(args), "rows": rows,
                   "rank_selection": selection.to_dict()}, f, indent=2)
    print(table)


if __name__ == "__main__":
    main()
