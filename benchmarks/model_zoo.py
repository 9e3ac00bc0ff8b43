"""Every tool on the architectures users bring: the model-zoo table.

For each zoo model (`tfcompress.models.zoo_model`, full networks at small
inputs), after a brief float training:

- profile: MACs, params, layers whose MACs are unknown;
- float32 export: top-1 agreement and relative error of LiteRT vs Keras;
- int8 post-training quantization by the converter (min/max calibration);
- int8 quantization-aware training (`quantize_model`, a short fit, export
  with no calibration data): the share of weighted ops that are integer,
  the file's size against the converter's own int8 file, agreement;
- Keras 3's own `model.quantize("int8")` + `model.export(format="litert")`;
- magnitude pruning to 50% during one epoch; `prune_channels` at 0.5;
  `decompose` to 0.7 of the MACs;
- a `.keras` round trip (`safe_mode=True`).

Image models train on Fashion-MNIST resized to their input (real data);
there is no bundled audio or text data, so the keyword spotter and the
text classifier train on synthetic tasks (tones in noise; marker tokens).
Agreement is measured on held-out examples of the same task.

Writes `results/model_zoo.md` and `results/model_zoo.json`.

    .venv/bin/python benchmarks/model_zoo.py [--models resnet50 vit] [--quick]
    .venv/bin/python benchmarks/model_zoo.py --resume --redo vit
"""

import argparse
import json
import math
import os
import pathlib
import tempfile
import time
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfcompress  # noqa: E402
from fashion_mnist_runs import DATA_DIR  # noqa: E402
from fashion_mnist_runs import LOSS  # noqa: E402
from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from tfcompress.models import ZOO_MODELS  # noqa: E402
from tfcompress.models import zoo_input_shape  # noqa: E402
from tfcompress.models import zoo_model  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
NUM_CLASSES = 10


def image_data(input_shape, train, test, data_dir):
    """Fashion-MNIST resized to `input_shape` (gray copied to 3 channels),
    in [0, 255]: what the applications that carry their own preprocessing
    (MobileNetV3, EfficientNet, ConvNeXt) expect; the others start with a
    convolution and batch norm, which take any scale."""
    (x_train, y_train), (x_test, y_test) = (
        tfcompress.datasets.load_fashion_mnist(data_dir)
    )

    def resize(x):
        x = keras.ops.image.resize(x, input_shape[:2])
        x = keras.ops.convert_to_numpy(x)
        x = np.repeat(x, input_shape[2], axis=-1) * 255.0
        return x.astype("float32")

    return (
        (resize(x_train[:train]), y_train[:train]),
        (resize(x_test[:test]), y_test[:test]),
    )


def tones(count, rng):
    """MFCC-like frames of a tone whose pitch is the class, in noise."""
    frames, features = zoo_input_shape("kws_conv1d")
    y = rng.integers(0, NUM_CLASSES, count)
    steps = np.arange(frames)[None, :, None]
    bands = (1 + np.arange(features))[None, None, :]
    pitch = (0.1 + 0.08 * y)[:, None, None]
    x = np.sin(pitch * steps * bands / 3) + 0.5 * rng.normal(
        size=(count, frames, features)
    )
    return x.astype("float32"), y


def marker_tokens(count, rng):
    """Token sequences whose class is the marker token they hold 3 times."""
    (timesteps,) = zoo_input_shape("lstm_text")
    vocabulary = tfcompress.models.zoo.TEXT_VOCABULARY
    x = rng.integers(NUM_CLASSES + 1, vocabulary, (count, timesteps))
    y = rng.integers(0, NUM_CLASSES, count)
    for row in range(count):
        x[row, rng.choice(timesteps, 3, replace=False)] = y[row] + 1
    return x.astype("int32"), y


def task_data(name, train, test, data_dir, seed=0):
    if name == "kws_conv1d":
        rng = np.random.default_rng(seed)
        return tones(train, rng), tones(test, rng)
    if name == "lstm_text":
        rng = np.random.default_rng(seed)
        return marker_tokens(train, rng), marker_tokens(test, rng)
    return image_data(zoo_input_shape(name), train, test, data_dir)


def compile_model(model, learning_rate=1e-3):
    # No XLA: compiling each full network costs more than its short runs.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=LOSS,
        metrics=["accuracy"],
        jit_compile=False,
    )
    return model


def timed(step, function):
    """Runs `function`, returns its dict with `step`, `ok` and `seconds`."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function() or {}
        result["ok"] = True
    except Exception as error:  # A failed step is a row, not a crash.
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        log(f"  {step} failed: {result['error'][:300]}")
        traceback.print_exc()
    result["step"] = step
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def parity(model, path, x):
    report = tfcompress.export.verify(model, path, x)
    return {
        "agreement": report.top1_agreement,
        "relative_error": report.relative_error,
        "examples": len(x),
    }


def kernel_agreement(path, x):
    """Top-1 agreement of one int8 file run by XNNPACK and by TFLite's
    builtin kernels: two correct int8 implementations that round
    differently. Below 99%, the file's answers hinge on rounding, and no
    simulation in Keras can agree with both."""
    outputs = [
        tfcompress.export.LiteRTModel(path, num_threads=1, xnnpack=xnnpack).predict(x)
        for xnnpack in (True, False)
    ]
    return float(np.mean(outputs[0].argmax(-1) == outputs[1].argmax(-1)))


def integer_share(export):
    """Share of the file's weighted ops that compute in integer."""
    precision = export.precision
    if precision is None:
        return None
    return {
        "int8_op_share": precision.num_integer_ops / precision.num_weighted_ops
        if precision.num_weighted_ops
        else 1.0,
        "float_ops": [row.name for row in precision.rows],
    }


def briefly_trained(name, x_train, y_train, epochs):
    """Zoo model `name` (full), compiled and trained `epochs` on the data."""
    model = zoo_model(name, "full", NUM_CLASSES)
    # The applications' batch norms average with momentum 0.99-0.999: after
    # a brief training their moving statistics are still near the initial
    # ones and the model predicts one class (MobileNetV3Small: 9.2% after 3
    # epochs), which would make every agreement figure trivial. 0.9 lets
    # them follow ~100 steps.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model = compile_model(model)
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


def quantization_aware(model, calibration, x, y, epochs=1, learning_rate=1e-4):
    """`quantize_model(model)` calibrated on `calibration`, then fitted."""
    qat_model, report = tfcompress.quantization.quantize_model(
        model, data=calibration
    )
    compile_model(qat_model, learning_rate)
    qat_model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return qat_model, report


def run_model(name, args, tmp):
    log(f"{name}: building and training")
    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = task_data(
        name, args.train, args.test, args.data_dir, args.seed
    )
    model = briefly_trained(name, x_train, y_train, args.epochs)
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    calibration = x_train[:200]
    rows = []

    def path(label):
        return os.path.join(tmp, f"{name}_{label}.tflite")

    def profile():
        report = tfcompress.profile(model)
        return {
            "macs": report.macs,
            "params": report.params,
            "unknown_macs": list(report.unknown_macs),
        }

    def float32():
        export = tfcompress.to_tflite(model, path("float32"), verbose=False)
        return {"size": export.size_bytes, **parity(model, export, x_test)}

    ptq_size = {}

    def ptq():
        export = tfcompress.to_tflite(
            model,
            path("ptq"),
            quantization="int8",
            data=calibration,
            verbose=False,
        )
        ptq_size["bytes"] = export.size_bytes
        return {
            "size": export.size_bytes,
            **integer_share(export),
            **parity(model, export, x_test),
        }

    def qat():
        qat_model, report = quantization_aware(
            model,
            calibration,
            x_train[: args.qat_examples],
            y_train[: args.qat_examples],
        )
        export = tfcompress.to_tflite(
            qat_model, path("qat"), quantization="int8", verbose=False
        )
        result = {
            "size": export.size_bytes,
            "float_layers": [row.name for row in report.rows if row.status != "int8"],
            **integer_share(export),
            **parity(qat_model, export, x_test),
            "kernel_agreement": kernel_agreement(export, x_test),
        }
        if ptq_size:
            result["size_vs_ptq"] = export.size_bytes / ptq_size["bytes"]
        return result

    def keras_quantize():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        copy.quantize("int8")
        copy.export(path("keras_int8"), format="litert")
        return {"size": os.path.getsize(path("keras_int8"))}

    def magnitude_pruning():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        compile_model(copy, 1e-4)
        copy.fit(
            x_train[: args.qat_examples],
            y_train[: args.qat_examples],
            epochs=1,
            batch_size=64,
            verbose=0,
            callbacks=[
                tfcompress.callbacks.MagnitudePruning(
                    tfcompress.pruning.ConstantSparsity(0.5, begin_step=0)
                )
            ],
        )
        report = tfcompress.pruning.sparsity_report(copy)
        return {"sparsity": report.sparsity, "kernels": len(report.rows)}

    def channel_pruning():
        pruned, report = tfcompress.pruning.prune_channels(
            model, sparsity=0.5
        )
        left_alone = [r.name for r in report.rows if r.status == "left alone"]
        return {
            "macs_ratio": report.macs_ratio,
            "pruned": sum(r.status == "pruned" for r in report.rows),
            "left_alone": len(left_alone),
        }

    def decomposition():
        _, report = tfcompress.decomposition.decompose(
            model, target_macs_ratio=0.7, verbose=False
        )
        return {
            "macs_ratio": report.macs_after / report.macs_before,
            "layers": len(report.rows),
        }

    def round_trip():
        file = os.path.join(tmp, f"{name}.keras")
        model.save(file)
        loaded = keras.saving.load_model(file, safe_mode=True)
        difference = np.abs(
            loaded.predict(x_test[:64], verbose=0)
            - model.predict(x_test[:64], verbose=0)
        ).max()
        return {"max_abs_difference": float(difference)}

    for step, function in (
        ("profile", profile),
        ("float32", float32),
        ("ptq_int8", ptq),
        ("qat_int8", qat),
        ("keras_quantize", keras_quantize),
        ("magnitude_pruning", magnitude_pruning),
        ("prune_channels", channel_pruning),
        ("decompose", decomposition),
        (".keras", round_trip),
    ):
        if args.steps and step not in args.steps:
            continue
        log(f"{name}: {step}")
        rows.append(timed(step, function))
    return {"model": name, "float_accuracy": accuracy, "steps": rows}


def cell(step):
    if not step["ok"]:
        return "fail"
    parts = []
    if "int8_op_share" in step:
        parts.append(f"int8 ops {step['int8_op_share']:.0%}")
    if "size_vs_ptq" in step:
        parts.append(f"{step['size_vs_ptq']:.2f}x PTQ size")
    if "agreement" in step:
        parts.append(f"agree {step['agreement']:.1%}")
    if "kernel_agreement" in step:
        parts.append(f"XNNPACK vs builtin kernels {step['kernel_agreement']:.1%}")
    if "relative_error" in step and step["step"] == "float32":
        parts.append(f"rel err {step['relative_error']:.1e}")
    if "macs_ratio" in step:
        parts.append(f"MACs x{step['macs_ratio']:.2f}")
    if "sparsity" in step:
        parts.append(f"{step['sparsity']:.1%} zeros")
    if "macs" in step:
        parts.append(f"{step['macs'] / 1e6:.1f} M MACs")
        if step["unknown_macs"]:
            parts.append(f"{len(step['unknown_macs'])} unknown")
    if "max_abs_difference" in step:
        parts.append(f"max diff {step['max_abs_difference']:.0e}")
    if step["step"] == "keras_quantize":
        parts.append(f"{step['size'] / 1024:.0f} KiB")
    parts.append(f"{step['seconds']:.0f} s")
    return ", ".join(parts)


def markdown(results, args):
    steps = [step["step"] for step in results[0]["steps"]]
    lines = [
        "# Model zoo: every tool on the architectures users bring",
        "",
        "Full networks at small inputs (`tfcompress.models.zoo_model(name, "
        "\"full\")`), each trained briefly first "
        f"({args.epochs} epoch(s) on {args.train} examples), then through "
        "each tool. Agreement: top-1 of the LiteRT file vs its Keras model "
        f"on {args.test} held-out examples. int8 ops: share of the file's "
        "weighted ops (conv, fully connected, batch matmul, gather, ...) "
        "that compute in integer, read back from the file. PTQ size: the "
        "QAT file against the converter's own int8 file of the float model. "
        "XNNPACK vs builtin kernels: the QAT file run by LiteRT's default "
        "XNNPACK delegate and by TFLite's builtin kernels, top-1 agreement: "
        "how much its answers depend on rounding. "
        "Failures are listed below the table.",
        "",
        *command_lines(),
        "",
    ]
    header = ["model", "float acc", *steps]
    table = [
        [
            result["model"],
            f"{result['float_accuracy']:.1%}",
            *(cell(step) for step in result["steps"]),
        ]
        for result in results
    ]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in table),
        "",
    ]
    failures = [
        (result["model"], step)
        for result in results
        for step in result["steps"]
        if not step["ok"]
    ]
    if failures:
        lines += ["## Failures", ""]
        lines += [
            f"- {model}, {step['step']}: `{step['error'][:400]}`"
            for model, step in failures
        ]
    exceptions = [
        (result["model"], step["step"], step["float_ops"])
        for result in results
        for step in result["steps"]
        if step.get("float_ops")
    ]
    if exceptions:
        lines += ["", "## Float ops in int8 files", ""]
        lines += [
            f"- {model}, {step}: {', '.join(ops[:12])}"
            + (f" (+{len(ops) - 12} more)" if len(ops) > 12 else "")
            for model, step, ops in exceptions
        ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(ZOO_MODELS))
    parser.add_argument("--steps", nargs="*", default=None)
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--qat-examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="model_zoo")
    parser.add_argument(
        "--quick", action="store_true", help="few examples, for a smoke run"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the models results/<name>.json holds; run the others",
    )
    parser.add_argument(
        "--redo",
        nargs="*",
        default=[],
        help="with --resume: run these models again, replacing their rows "
        "(with --steps, only those steps' cells)",
    )
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.epochs, args.qat_examples = 256, 128, 1, 128
        args.name += "_quick"
    unknown = sorted(set(args.models + args.redo) - set(ZOO_MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {ZOO_MODELS}")
    results = []
    json_path = RESULTS / f"{args.name}.json"
    earlier = {}
    if args.resume and json_path.exists():
        earlier = {r["model"]: r for r in json.loads(json_path.read_text())}
        results = [
            r
            for name, r in earlier.items()
            if name in args.models and name not in args.redo
        ]
    done = {r["model"] for r in results}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            if name in done:
                log(f"{name}: kept from {json_path.name}")
                continue
            result = run_model(name, args, tmp)
            if args.steps and name in earlier:
                # A redo of some steps keeps the model's other rows.
                ran = {step["step"]: step for step in result["steps"]}
                result["steps"] = [
                    ran.get(step["step"], step) for step in earlier[name]["steps"]
                ]
            results.append(result)
            results.sort(key=lambda r: ZOO_MODELS.index(r["model"]))
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{args.name}.json").write_text(
                json.dumps(results, indent=2, default=str)
            )
            text = markdown(results, args)
            (RESULTS / f"{args.name}.md").write_text(text)
    print(text)
    total = sum(step["seconds"] for r in results for step in r["steps"])
    log(f"done: {len(results)} models, {total / 60:.1f} min of steps")
    return 0 if math.isfinite(total) else 1


if __name__ == "__main__":
    raise SystemExit(main())
