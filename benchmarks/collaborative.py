"""Collaborative optimization on Fashion-MNIST: tfcompress on Keras 3 vs tfmot on tf_keras.

The plain CNN (`tfcompress.models.plain_cnn`, and its layer-for-layer twin
in tf_keras for tfmot), from the same trained float weights, with the same
schedules and epochs in both frameworks:

1. PQAT: magnitude pruning to 80% (PolynomialDecay over the first 75% of
   the pruning fine-tune), then pruning-preserving QAT
   (`quantize_model(preserve_sparsity=True)`; tfmot's
   `Default8BitPrunePreserveQuantizeScheme`). Also QAT without
   preservation, to show what it loses.
2. Clustering to 16 and 32 clusters (k-means++), fine-tuned
   (`WeightClustering`; tfmot's `cluster_weights`), exported float32.
3. CQAT: QAT of the 32-cluster model keeping its clusters (tfmot's
   `Default8BitClusterPreserveQuantizeScheme`); ours also with one int8
   scale per kernel (`quantize_model(per_channel_weights=False)`), so that
   the file holds as few integers per kernel as there are clusters.
4. PCQAT: the 80%-pruned model clustered to 16 clusters keeping its zeros,
   fine-tuned, then QAT keeping both (tfmot's scheme with
   `preserve_sparsity=True`): Deep Compression's pipeline, with the
   Huffman-coded size of its int8 weights; again at 85% sparsity
   (`--deep-sparsity`), closer to Deep Compression's fully connected
   layers (at 90% both frameworks lose more than a point and their files
   agree with their models below 99%: `results/collaborative_deep90.md`).
   Each also with one scale per kernel.
5. int4: each pruned + clustered float model with int4 weights
   (ai-edge-quantizer's weight-only recipe through
   `tfcompress.search.quantize_per_op`: int4 kernels in the file,
   DEQUANTIZE ops in front of float convolutions; LiteRT has no int4
   activations kernel on CPU).

Every file is run in LiteRT on the 10,000 test images: accuracy, top-1
agreement with its Keras model, zeros and distinct values of its int8
kernels read back from the file, bytes raw / gzipped / with its weights
Huffman-coded (`tfcompress.litert.value_compression`).

    .venv/bin/python benchmarks/collaborative.py [--quick] [--skip-tfmot]

Needs the `benchmarks` extra (tf-keras, tensorflow-model-optimization) for
the tfmot rows. Writes benchmarks/results/collaborative[_quick].md / .json.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import build  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import import_peer  # noqa: E402
from fashion_mnist_runs import load_data  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import gzipped_size  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from fashion_mnist_runs import tf_keras_cnn  # noqa: E402
from fashion_mnist_runs import top1  # noqa: E402
from tfcompress.callbacks import MagnitudePruning  # noqa: E402
from tfcompress.callbacks import QuantizationAwareTraining  # noqa: E402
from tfcompress.callbacks import WeightClustering  # noqa: E402
from tfcompress.clustering import cluster_weights  # noqa: E402
from tfcompress.export import LiteRTModel  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.litert import kernels  # noqa: E402
from tfcompress.litert import tflite_weights  # noqa: E402
from tfcompress.litert import value_compression  # noqa: E402
from tfcompress.pruning import PolynomialDecay  # noqa: E402
from tfcompress.pruning import strip as strip_pruning  # noqa: E402
from tfcompress.quantization import quantize_model  # noqa: E402
from tfcompress.search import quantize_per_op  # noqa: E402
from tfcompress.search import weighted_ops  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SPARSITY = 0.8


def file_stats(path):
    """Zeros and distinct values of the file's kernels, and its sizes."""
    weights = kernels(tflite_weights(path))
    size = sum(w.values.size for w in weights)
    zeros = sum(int(np.sum(w.values == 0)) for w in weights)
    per_kernel = max(len(np.unique(w.values)) for w in weights)
    per_channel = 0
    for w in weights:
        axis = 0 if w.quantization is None or w.quantization.axis is None \
            else w.quantization.axis
        channels = np.moveaxis(w.values, axis, 0)
        per_channel = max(per_channel, max(len(np.unique(c)) for c in channels))
    figures = value_compression(path)
    return {
        "kernel_dtypes": sorted({w.dtype for w in weights}),
        "kernel_zero_fraction": zeros / size,
        "max_distinct_per_kernel": per_kernel,
        "max_distinct_per_channel": per_channel,
        "bytes": figures.file_bytes,
        "gzip_bytes": gzipped_size(path),
        "huffman_bytes": figures.huffman_file_bytes,
        "weight_bytes": figures.weight_bytes,
        "weight_huffman_bytes": figures.huffman_bytes,
        "weight_entropy_bytes": figures.entropy_bytes,
    }


def file_row(variant, framework, path, predict, data):
    """LiteRT accuracy, agreement with the Keras / tf_keras model, stats."""
    _, _, x_test, y_test = data
    litert = LiteRTModel(path).predict(x_test, batch_size=1000)
    reference = predict(x_test)
    row = {
        "variant": variant,
        "framework": framework,
        "keras_accuracy": float(np.mean(np.argmax(reference, -1) == y_test)),
        "litert_accuracy": float(np.mean(np.argmax(litert, -1) == y_test)),
        "top1_agreement": float(
            np.mean(np.argmax(litert, -1) == np.argmax(reference, -1))
        ),
        **file_stats(path),
    }
    log(f"{variant} ({framework}): LiteRT {row['litert_accuracy']:.4f}, "
        f"agreement {row['top1_agreement']:.4f}, zeros "
        f"{row['kernel_zero_fraction']:.3f}, distinct/channel "
        f"{row['max_distinct_per_channel']}, {row['bytes']:,} B, "
        f"Huffman {row['huffman_bytes']:,} B")
    return row


def keras_predict(model):
    return lambda x: model.predict(x, batch_size=1000, verbose=0)


def pruning_schedule(args, train_size, sparsity=SPARSITY):
    steps_per_epoch = -(-train_size // args.batch_size)
    end_step = int(0.75 * steps_per_epoch * args.prune_epochs)
    frequency = min(100, max(1, end_step // 10))
    return dict(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
                end_step=end_step, frequency=frequency)


# -- tfcompress on Keras 3 ---------------------------------------------


# The variant with `quantize_model(per_channel_weights=False)`.
PER_KERNEL = "{}, one scale per kernel"


def run_tfcompress(args, data, tmp, pretrained):
    x_train, y_train, _, _ = data
    calibration = x_train[:256]
    fit = dict(batch_size=args.batch_size, verbose=0)
    rows, models = [], {}

    def fresh(weights, learning_rate=args.finetune_learning_rate):
        keras.utils.set_random_seed(args.seed)
        model = compile_keras3(build("cnn"), learning_rate)
        model.set_weights(weights)
        return model

    def export(model, name, quantization):
        path = os.path.join(tmp, f"tfc_{name}.tflite")
        to_tflite(model, path, quantization=quantization, verbose=False)
        return path

    dense = fresh(pretrained)
    rows.append(file_row("float32", "tfcompress",
                         export(dense, "float32", "none"),
                         keras_predict(dense), data))

    def prune(sparsity):
        log(f"tfcompress: pruning to {sparsity:.0%}, {args.prune_epochs} "
            "epochs")
        model = fresh(pretrained, args.prune_learning_rate)
        model.fit(x_train, y_train, epochs=args.prune_epochs, callbacks=[
            MagnitudePruning(PolynomialDecay(**pruning_schedule(
                args, len(x_train), sparsity)), log_sparsity=None)], **fit)
        model, report = strip_pruning(model)
        log(f"tfcompress: pruned, sparsity {report.sparsity:.4f}")
        return model

    pruned = prune(SPARSITY)
    rows.append(file_row("pruned 80%, float32", "tfcompress",
                         export(pruned, "pruned", "none"),
                         keras_predict(pruned), data))
    models["pruned"] = pruned

    def qat(model, name, callbacks=(), preserve_sparsity=True,
            per_channel_weights=True):
        log(f"tfcompress: {name}, {args.qat_epochs} epochs")
        keras.utils.set_random_seed(args.seed)
        qat_model, _ = quantize_model(model, data=calibration,
                                      preserve_sparsity=preserve_sparsity,
                                      per_channel_weights=per_channel_weights)
        compile_keras3(qat_model, args.finetune_learning_rate)
        qat_model.fit(x_train, y_train, epochs=args.qat_epochs, callbacks=[
            QuantizationAwareTraining(preserve_sparsity=preserve_sparsity),
            *callbacks], **fit)
        return file_row(name, "tfcompress", export(qat_model, name, "int8"),
                        keras_predict(qat_model), data)

    rows.append(qat(pruned, "PQAT int8 (80% sparse)"))
    rows.append(qat(pruned, "QAT int8 of the pruned model, zeros not held",
                    preserve_sparsity=False))

    for clusters in (16, 32):
        name = f"clustered {clusters}, float32"
        log(f"tfcompress: {name}, {args.cluster_epochs} epochs")
        model, _ = cluster_weights(fresh(pretrained),
                                   number_of_clusters=clusters)
        model.fit(x_train, y_train, epochs=args.cluster_epochs,
                  callbacks=[WeightClustering(clusters)], **fit)
        rows.append(file_row(name, "tfcompress",
                             export(model, f"clustered{clusters}", "none"),
                             keras_predict(model), data))
        models[clusters] = model
    rows.append(qat(models[32], "CQAT int8 (32 clusters)",
                    callbacks=[WeightClustering(32)]))
    # One int8 scale per kernel: the shared values stay shared integers.
    rows.append(qat(models[32], PER_KERNEL.format("CQAT int8 (32 clusters)"),
                    callbacks=[WeightClustering(32)],
                    per_channel_weights=False))

    def pcqat(pruned, sparsity, clusters):
        label = f"{sparsity:.0%} sparse, {clusters} clusters"
        log(f"tfcompress: PCQAT clustering ({label}), {args.cluster_epochs} "
            "epochs")
        model, _ = cluster_weights(fresh(pruned.get_weights()),
                                   number_of_clusters=clusters)
        tfcompress.pruning.hold_zeros(model)
        model.fit(x_train, y_train, epochs=args.cluster_epochs,
                  callbacks=[WeightClustering(clusters)], **fit)
        float_path = export(model, f"pc{label}", "none")
        rows.append(file_row(f"pruned + clustered ({label}), float32",
                             "tfcompress", float_path,
                             keras_predict(model), data))
        int4_path = os.path.join(tmp, f"tfc_pc{label}_int4.tflite")
        quantize_per_op(float_path, int4_path, assignment={
            op: "int4_weights" for op in weighted_ops(float_path, model)},
            data=calibration, model=model)
        rows.append(file_row(f"pruned + clustered ({label}), int4 weights",
                             "tfcompress", int4_path,
                             keras_predict(model), data))
        rows.append(qat(model, f"PCQAT int8 ({label})",
                        callbacks=[WeightClustering(clusters)]))
        rows.append(qat(model, PER_KERNEL.format(f"PCQAT int8 ({label})"),
                        callbacks=[WeightClustering(clusters)],
                        per_channel_weights=False))

    pcqat(pruned, SPARSITY, 16)
    if args.deep_sparsity:
        pcqat(prune(args.deep_sparsity), args.deep_sparsity, 16)
    return rows


# -- tfmot on tf_keras -------------------------------------------------


def run_tfmot(args, data, tmp, pretrained, tfmot, tf_keras):
    x_train, y_train, _, _ = data
    fit = dict(batch_size=args.batch_size, verbose=0)
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rows = []
    combine = tfmot.experimental.combine
    clustering = tfmot.clustering.keras
    kmeans = clustering.CentroidInitialization.KMEANS_PLUS_PLUS

    def compiled(model, learning_rate=args.finetune_learning_rate):
        model.compile(tf_keras.optimizers.Adam(learning_rate), loss,
                      metrics=["accuracy"])
        return model

    def base(weights):
        tf_keras.utils.set_random_seed(args.seed)
        model = tf_keras_cnn(tf_keras)
        model.set_weights(weights)
        return model

    def export(model, name, quantized):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantized:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path = os.path.join(tmp, f"tfmot_{name}.tflite")
        with open(path, "wb") as f:
            f.write(converter.convert())
        return path

    def prune(sparsity):
        log(f"tfmot: pruning to {sparsity:.0%}, {args.prune_epochs} epochs")
        model = compiled(tfmot.sparsity.keras.prune_low_magnitude(
            base(pretrained),
            pruning_schedule=tfmot.sparsity.keras.PolynomialDecay(
                **pruning_schedule(args, len(x_train), sparsity))),
            args.prune_learning_rate)
        model.fit(x_train, y_train, epochs=args.prune_epochs,
                  callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], **fit)
        return tfmot.sparsity.keras.strip_pruning(model)

    pruned = prune(SPARSITY)
    rows.append(file_row("pruned 80%, float32", "tfmot",
                         export(pruned, "pruned", False),
                         keras_predict(pruned), data))

    def qat(model, name, scheme):
        log(f"tfmot: {name}, {args.qat_epochs} epochs")
        tf_keras.utils.set_random_seed(args.seed)
        annotated = tfmot.quantization.keras.quantize_annotate_model(model)
        qat_model = compiled(
            tfmot.quantization.keras.quantize_apply(annotated, scheme)
        )
        qat_model.fit(x_train, y_train, epochs=args.qat_epochs, **fit)
        return file_row(name, "tfmot", export(qat_model, name, True),
                        keras_predict(qat_model), data)

    rows.append(qat(pruned, "PQAT int8 (80% sparse)",
                    combine.Default8BitPrunePreserveQuantizeScheme()))

    clustered = {}
    for clusters in (16, 32):
        name = f"clustered {clusters}, float32"
        log(f"tfmot: {name}, {args.cluster_epochs} epochs")
        model = compiled(clustering.cluster_weights(
            base(pretrained), number_of_clusters=clusters,
            cluster_centroids_init=kmeans))
        model.fit(x_train, y_train, epochs=args.cluster_epochs, **fit)
        model = clustering.strip_clustering(model)
        rows.append(file_row(name, "tfmot",
                             export(model, f"clustered{clusters}", False),
                             keras_predict(model), data))
        clustered[clusters] = model
    rows.append(qat(clustered[32], "CQAT int8 (32 clusters)",
                    combine.Default8BitClusterPreserveQuantizeScheme()))

    def pcqat(pruned, sparsity, clusters):
        label = f"{sparsity:.0%} sparse, {clusters} clusters"
        log(f"tfmot: PCQAT clustering ({label}), {args.cluster_epochs} "
            "epochs")
        model = compiled(clustering.cluster_weights(
            pruned, number_of_clusters=clusters,
            cluster_centroids_init=kmeans, preserve_sparsity=True))
        model.fit(x_train, y_train, epochs=args.cluster_epochs, **fit)
        model = clustering.strip_clustering(model)
        rows.append(file_row(f"pruned + clustered ({label}), float32",
                             "tfmot", export(model, f"pc{label}", False),
                             keras_predict(model), data))
        rows.append(qat(model, f"PCQAT int8 ({label})",
                        combine.Default8BitClusterPreserveQuantizeScheme(
                            preserve_sparsity=True)))

    pcqat(pruned, SPARSITY, 16)
    if args.deep_sparsity:
        pcqat(prune(args.deep_sparsity), args.deep_sparsity, 16)
    return rows


# -- Report ------------------------------------------------------------


def markdown(rows, args, train_size):
    float_row = rows[0]
    references = {
        (r["framework"], r["variant"]): r for r in rows
    }
    lines = [
        f"# Collaborative optimization on Fashion-MNIST (plain CNN){' - quick' if args.quick else ''}",
        "",
        f"Training images: {train_size:,}. Float CNN trained {args.epochs} "
        f"epoch(s) (Adam {args.learning_rate}, batch {args.batch_size}); "
        "from its weights, in both frameworks: pruning to 80% (and "
        f"{args.deep_sparsity:.0%}) over "
        f"{args.prune_epochs} epoch(s) (Adam {args.prune_learning_rate}), "
        "clustering fine-tunes of "
        f"{args.cluster_epochs} epoch(s), QAT of {args.qat_epochs} epoch(s) "
        f"(Adam {args.finetune_learning_rate}). Accuracy on the 10,000 test "
        "images in LiteRT; agreement: top-1 of the file vs its Keras / "
        "tf_keras model. Zeros and distinct values are read from the file's "
        "kernels (int8 or int4 integers, or float32 values); int4 weights: "
        "ai-edge-quantizer's weight-only int4 (per channel) of the float "
        "file, compared with the float model. Huffman: the file with "
        "its weights Huffman-coded (each tensor its own code, or one per "
        "channel when smaller, code tables counted). Ratios are to the "
        f"dense float32 file ({float_row['bytes']:,} B).",
        "",
        "| variant | framework | LiteRT acc | vs reference (pts) | agreement "
        "| kernel zeros | distinct / kernel | distinct / channel | bytes "
        "| gzip | Huffman | float32 / gzip | float32 / Huffman |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = _reference(row, references) or float_row
        delta = 100 * (row["litert_accuracy"] - reference["litert_accuracy"])
        lines.append(
            f"| {row['variant']} | {row['framework']} "
            f"| {row['litert_accuracy']:.2%} | {delta:+.2f} "
            f"(vs {reference['variant']}) "
            f"| {row['top1_agreement']:.2%} "
            f"| {row['kernel_zero_fraction']:.2%} "
            f"| {row['max_distinct_per_kernel']:,} "
            f"| {row['max_distinct_per_channel']:,} "
            f"| {row['bytes']:,} | {row['gzip_bytes']:,} "
            f"| {row['huffman_bytes']:,} "
            f"| {float_row['bytes'] / row['gzip_bytes']:.1f}x "
            f"| {float_row['bytes'] / row['huffman_bytes']:.1f}x |"
        )
    return "\n".join(lines + command_lines())


def _reference(row, references):
    """What a row is compared with: QAT with the float model it trains."""
    variant, framework = row["variant"], row["framework"]
    if variant.startswith(("PQAT", "QAT int8 of the pruned")):
        name = "pruned 80%, float32"
    elif variant.startswith("CQAT"):
        name = "clustered 32, float32"
    elif variant.startswith("pruned + clustered") and "int4" in variant:
        name = variant.replace("int4 weights", "float32")
    elif variant.startswith("PCQAT"):
        # Against the dense float model both frameworks start from.
        name, framework = "float32", "tfcompress"
    else:
        name = "float32"
        framework = "tfcompress"
    if (framework, name) == (row["framework"], variant):
        return None
    return references.get((framework, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--prune-epochs", type=int, default=4)
    parser.add_argument("--prune-learning-rate", type=float, default=5e-4,
                        help="Adam's rate while pruning (the pruning "
                        "benchmark's); the other fine-tunes use "
                        "--finetune-learning-rate")
    parser.add_argument("--cluster-epochs", type=int, default=1)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--deep-sparsity", type=float, default=0.85,
                        help="a second PCQAT run at this sparsity, as Deep "
                        "Compression prunes fully connected layers (0: "
                        "none)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, 1 epoch per stage")
    parser.add_argument("--output-dir", default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = args.prune_epochs = 1
        args.cluster_epochs = args.qat_epochs = 1
        args.train_limit = args.train_limit or 5000
    tfmot, tf_keras = import_peer(args, parser)
    data = load_data(args)
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(args.seed)
    dense = compile_keras3(build("cnn"), args.learning_rate)
    log(f"training the float CNN, {args.epochs} epochs")
    dense.fit(x_train, y_train, epochs=args.epochs,
              batch_size=args.batch_size, verbose=0)
    log(f"float CNN: {top1(dense, x_test, y_test):.4f}")
    pretrained = dense.get_weights()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_tfcompress(args, data, tmp, pretrained)
        if tfmot is not None:
            rows += run_tfmot(args, data, tmp, pretrained, tfmot, tf_keras)
    name = "collaborative_quick" if args.quick else "collaborative"
    if args.deep_sparsity != parser.get_default("deep_sparsity"):
        # Another Deep Compression sparsity: its own table, beside the main.
        name += f"_deep{round(args.deep_sparsity * 100)}"
    os.makedirs(args.output_dir, exist_ok=True)
    table = markdown(rows, args, len(x_train))
    with open(os.path.join(args.output_dir, f"{name}.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.output_dir, f"{name}.json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    print(table, flush=True)


if __name__ == "__main__":
    main()
