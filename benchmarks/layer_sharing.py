"""Parameter sharing across layers on Fashion-MNIST: a stage of repeated
blocks becomes one block called repeatedly.

A CNN with a stage of `--blocks` identical 3x3 convolutions (32 -> 32
channels, 14x14) is trained; `tfcompress.clustering.share_layers` replaces
the stage's blocks by one (initialized as their mean) and the shared model
is fine-tuned. The unshared model fine-tuned for the same epochs is the
control; the shared model trained from scratch for all the epochs shows
what sharing costs when it is designed in. Every model is exported
float32 and int8 (the converter's calibrated post-training quantization);
accuracy is measured in LiteRT on the 10,000 test images, and the files'
kernels are read back.

    .venv/bin/python benchmarks/layer_sharing.py [--epochs 3]
        [--finetune-epochs 2] [--blocks 4] [--quick]

Writes benchmarks/results/layer_sharing.md and .json.
"""

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import compile_keras3  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import gzipped_size  # noqa: E402
from fashion_mnist_runs import load_data  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from tfcompress.analysis import profile  # noqa: E402
from tfcompress.clustering import share_layers  # noqa: E402
from tfcompress.export import LiteRTModel  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.litert import kernels  # noqa: E402
from tfcompress.litert import tflite_weights  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def repeated_block_cnn(blocks):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    for k in range(blocks):
        x = keras.layers.Conv2D(
            32, 3, padding="same", activation="relu", name=f"block{k}"
        )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="repeated_block_cnn")


def measure(name, model, data, tmp):
    x_train, _, x_test, y_test = data
    keras_logits = model.predict(x_test, batch_size=1000, verbose=0)
    cost = profile(model)
    row = {
        "variant": name,
        "params": int(model.count_params()),
        "macs": int(cost.macs),
        "keras_accuracy": float(np.mean(np.argmax(keras_logits, -1) == y_test)),
    }
    for quantization in ("none", "int8"):
        path = os.path.join(tmp, f"{name.replace(' ', '_')}_{quantization}.tflite")
        export = to_tflite(model, path, quantization=quantization,
                           data=x_train[:256] if quantization == "int8" else None,
                           verbose=False)
        logits = LiteRTModel(path).predict(x_test, batch_size=1000)
        stored = kernels(tflite_weights(path))
        key = "float32" if quantization == "none" else "int8"
        row[key] = {
            "bytes": export.size_bytes,
            "gzip_bytes": gzipped_size(path),
            "stored_kernels": len(stored),
            "kernel_dtypes": sorted({w.dtype for w in stored}),
            "litert_accuracy": float(np.mean(np.argmax(logits, -1) == y_test)),
            "top1_agreement": float(
                np.mean(np.argmax(logits, -1) == np.argmax(keras_logits, -1))
            ),
        }
    log(f"{name}: {row['params']:,} params, float32 "
        f"{row['float32']['bytes']:,} B ({row['float32']['litert_accuracy']:.4f}), "
        f"int8 {row['int8']['bytes']:,} B ({row['int8']['litert_accuracy']:.4f})")
    return row


def markdown(results):
    args = results["args"]
    rows = results["rows"]
    base = rows[0]
    lines = [
        "# Parameter sharing across layers on Fashion-MNIST",
        "",
        f"A CNN (3x3 stem, 32 channels; max pool; a stage of {args['blocks']} "
        "identical 3x3 convolutions 32 -> 32 at 14x14; global average pool; "
        f"dense) trained {args['epochs']} epoch(s) on {results['train']:,} "
        "images (Adam 1e-3, batch 128, seed "
        f"{args['seed']}). `share_layers` makes the stage's blocks one block "
        "(weights: the blocks' mean), fine-tuned "
        f"{args['finetune_epochs']} epoch(s) (Adam 3e-4); the control is the "
        "unshared model fine-tuned the same epochs; \"shared from the start\" is "
        "the shared model trained from scratch for "
        f"{args['epochs'] + args['finetune_epochs']} epochs (Adam 1e-3). Accuracy in LiteRT on the "
        "10,000 test images; int8: the converter's calibrated PTQ (256 "
        "images); agreement: top-1 of the file vs its Keras model; stored "
        "kernels: the kernels read back from the file (each stored once).",
        "",
        "| variant | params | MACs | stored kernels | float32 bytes | x | float32 acc | int8 bytes | x | int8 acc | int8 agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        f, q = row["float32"], row["int8"]
        lines.append(
            f"| {row['variant']} | {row['params']:,} | {row['macs']:,} | "
            f"{f['stored_kernels']} | {f['bytes']:,} | "
            f"{f['bytes'] / base['float32']['bytes']:.3f} | "
            f"{100 * f['litert_accuracy']:.2f}% | {q['bytes']:,} | "
            f"{q['bytes'] / base['float32']['bytes']:.3f} | "
            f"{100 * q['litert_accuracy']:.2f}% | "
            f"{100 * q['top1_agreement']:.2f}% |"
        )
    lines += ["", "x: bytes / the trained unshared float32 file."]
    return lines + command_lines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    name = "layer_sharing"
    if args.quick:
        args.train_limit, args.epochs, args.finetune_epochs = 2000, 1, 1
        name = "layer_sharing_quick"
    data = load_data(args)
    x_train, y_train, _, _ = data
    fit = dict(batch_size=128, verbose=0)

    keras.utils.set_random_seed(args.seed)
    model = compile_keras3(repeated_block_cnn(args.blocks), 1e-3)
    model.fit(x_train, y_train, epochs=args.epochs, **fit)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("trained", model, data, tmp))
        shared, report = share_layers(model)
        log(str(report))
        rows.append(measure("shared, not fine-tuned", shared, data, tmp))
        keras.utils.set_random_seed(args.seed)
        compile_keras3(shared, 3e-4).fit(
            x_train, y_train, epochs=args.finetune_epochs, **fit)
        rows.append(measure("shared, fine-tuned", shared, data, tmp))
        control = keras.models.clone_model(model)
        control.set_weights(model.get_weights())
        keras.utils.set_random_seed(args.seed)
        compile_keras3(control, 3e-4).fit(
            x_train, y_train, epochs=args.finetune_epochs, **fit)
        rows.append(measure("unshared, fine-tuned (control)", control, data, tmp))
        # Shared from the start (ALBERT's way): one block trained for all
        # the epochs the others had in total.
        keras.utils.set_random_seed(args.seed)
        tied, _ = share_layers(repeated_block_cnn(args.blocks),
                               initialization="first")
        compile_keras3(tied, 1e-3).fit(
            x_train, y_train, epochs=args.epochs + args.finetune_epochs, **fit)
        rows.append(measure("shared from the start", tied, data, tmp))
    results = {"args": vars(args), "train": len(x_train), "rows": rows,
               "sharing": str(report)}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("\n".join(markdown(results)) + "\n")
    log(f"Wrote {RESULTS}/{name}.md and .json")


if __name__ == "__main__":
    main()
