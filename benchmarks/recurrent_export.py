"""Three routes from a Keras 3 LSTM to builtin LiteRT ops, side by side.

An Embedding + LSTM classifier (the task of `tests/sequence_models.py`,
`--timesteps` long) is trained, then exported three ways, each in float32,
dynamic range and int8:

- unrolled: `tfcompress.to_tflite`, which unrolls recurrent layers;
- fused: the converter's `UNIDIRECTIONAL_SEQUENCE_LSTM`, from a copy of the
  model whose LSTM calls a function marked `api_implements="lstm_..."`
  with the signature the converter fuses (tf.keras 2's `standard_lstm`),
  with a batch of 1 (the fusion needs static state shapes) and constant
  zero initial states (as tf.keras 2 passes them);
- fused, computed states: the same, with initial states computed from the
  input (zeros all the same), which the converter does not turn into
  variable tensors;
- while: Keras's own `tf.while_loop`, which the converter lowers to a
  builtin `WHILE` once the batch is fixed (1).

For each: file size, parity with Keras (one example per `invoke()`, as an
app runs it; and for the fused file also with the interpreter's variables
reset before each example), and LiteRT latency as ratios to the unrolled
file (measured side by side, 1 thread). The int8
conversion of the `WHILE` route runs in a child process, since it crashed
the converter. Also: the unrolled float file's size against the number of
timesteps.

    .venv/bin/python benchmarks/recurrent_export.py [--timesteps 16]

Writes benchmarks/results/recurrent_export.md and .json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fashion_mnist_runs import command_lines  # noqa: E402
from fashion_mnist_runs import log  # noqa: E402
from tests import sequence_models  # noqa: E402
from tfcompress.export import LiteRTModel  # noqa: E402
from tfcompress.export import compare_latency  # noqa: E402
from tfcompress.export import inspect_tflite  # noqa: E402
from tfcompress.export import to_tflite  # noqa: E402
from tfcompress.export import verify  # noqa: E402
from tfcompress.export.calibration_data import calibration_examples  # noqa: E402
from tfcompress.export.converter import converter_settings  # noqa: E402

L = keras.layers
MODES = ("none", "dynamic", "int8")
ROUTES = ("unrolled", "fused", "fused_computed", "while")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    """The body the converter replaces when it fuses (batch-major)."""
    h, c, outputs = init_h, init_c, []
    for x_t in tf.unstack(inputs, axis=1):
        z = tf.matmul(x_t, kernel) + tf.matmul(h, recurrent_kernel) + bias
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs.append(h)
    outputs = tf.stack(outputs, axis=1)
    return outputs[:, -1], outputs, h, c, tf.constant(0.0)


class FusableLSTM(L.Layer):
    """An LSTM (last output only) calling `standard_lstm` as a function the
    converter fuses, with the weights of a Keras LSTM."""

    def __init__(self, lstm, computed_states=False, **kwargs):
        super().__init__(name=lstm.name, **kwargs)
        self.units = lstm.units
        self.lstm = lstm
        self.computed_states = computed_states
        self.function = tf.function(
            standard_lstm,
            autograph=False,
            experimental_attributes={
                "api_implements": f"lstm_{uuid.uuid4().hex}",
                "time_major": False,
                "go_backwards": False,
            },
        )

    def call(self, x):
        if self.computed_states:
            # Two different products that are zero: one shared tensor is
            # refused ("cannot duplicate the value since it's not
            # constant").
            features = x.shape[-1]
            state_h = tf.matmul(
                x[:, 0] * 0.0, tf.zeros((features, self.units))
            )
            state_c = tf.matmul(
                x[:, -1] * 0.0, tf.ones((features, self.units))
            )
        else:
            state_h = state_c = tf.zeros((x.shape[0], self.units), x.dtype)
        cell = self.lstm.cell
        last, _, _, _, _ = self.function(
            x,
            state_h,
            state_c,
            tf.convert_to_tensor(cell.kernel),
            tf.convert_to_tensor(cell.recurrent_kernel),
            tf.convert_to_tensor(cell.bias),
        )
        return last


def fused_output(model, inputs, computed_states):
    """The model's output with its LSTM replaced by a `FusableLSTM`."""
    x = model.get_layer("embedding")(inputs)
    x = FusableLSTM(model.get_layer("lstm"), computed_states)(x)
    return model.get_layer("logits")(x)


def trained_lstm(timesteps):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((timesteps,), dtype="int32"),
            L.Embedding(sequence_models.VOCABULARY, 16, name="embedding"),
            L.LSTM(24, name="lstm"),
            L.Dense(sequence_models.NUM_CLASSES, name="logits"),
        ]
    )
    x, y = sequence_models.text_data(600, timesteps=timesteps)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model


def export_with_batch_one(model, path, mode, x_calibration):
    settings = converter_settings(mode, select_tf_ops=False)
    if mode == "int8":
        settings["representative_dataset"] = calibration_examples(
            model, x_calibration, 100
        )
    spec = model.inputs[0]
    model.export(
        path,
        format="litert",
        verbose=False,
        input_signature=[
            tf.TensorSpec((1, *spec.shape[1:]), spec.dtype)
        ],
        **settings,
    )


def parity_with_resets(model, path, x):
    """Parity when the interpreter's variables are reset before each
    example, as a fused file needs."""
    litert_model = LiteRTModel(path)
    interpreter = litert_model.interpreter
    outputs = []
    for example in x:
        interpreter.reset_all_variables()
        outputs.append(litert_model.predict(example[None]))
    outputs = np.concatenate(outputs).astype(np.float64)
    expected = model.predict(x, verbose=0).astype(np.float64)
    return {
        "top1_agreement": float(
            np.mean(outputs.argmax(-1) == expected.argmax(-1))
        ),
        "relative_error": float(
            np.linalg.norm(outputs - expected) / np.linalg.norm(expected)
        ),
    }


_WHILE_INT8 = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {benchmarks!r})
import keras
import recurrent_export
model = keras.models.load_model({model_path!r})
x, _ = recurrent_export.sequence_models.text_data(200, 1, {t})
recurrent_export.export_with_batch_one(model, {path!r}, "int8", x)
"""


def while_int8_in_child(model, path, timesteps, scratch):
    """Runs the WHILE route's int8 conversion in a child process; returns
    its exit status (negative: killed by that signal)."""
    model_path = os.path.join(scratch, "model.keras")
    model.save(model_path)
    here = os.path.dirname(os.path.abspath(__file__))
    script = _WHILE_INT8.format(
        root=os.path.dirname(here),
        benchmarks=here,
        model_path=model_path,
        path=path,
        t=timesteps,
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=900
    )
    return result.returncode


def route_row(route, mode, model, path, x_test, resets=False):
    report = verify(model, path, x_test, batch_size=1)
    row = {
        "route": route,
        "mode": mode,
        "size_bytes": os.path.getsize(path),
        "ops": inspect_tflite(path).op_counts,
        "top1_agreement": report.top1_agreement,
        "relative_error": report.relative_error,
    }
    if resets:
        row["with_resets"] = parity_with_resets(model, path, x_test)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timesteps", type=int, default=16)
    args = parser.parse_args()
    timesteps = args.timesteps
    log(f"training an Embedding + LSTM(24) classifier, {timesteps} steps")
    model = trained_lstm(timesteps)
    x_calibration, _ = sequence_models.text_data(200, 1, timesteps)
    x_test, _ = sequence_models.text_data(200, 2, timesteps)
    fusable = {
        route: keras.Model(inputs, fused_output(model, inputs, computed))
        for route, computed in (("fused", False), ("fused_computed", True))
        for inputs in [keras.Input((timesteps,), dtype="int32", batch_size=1)]
    }
    rows, files = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for mode in MODES:
            log(f"{mode}: unrolled, fused, while")
            path = os.path.join(scratch, f"unrolled_{mode}.tflite")
            to_tflite(
                model,
                path,
                quantization=mode,
                data=x_calibration if mode == "int8" else None,
                verbose=False,
            )
            rows.append(route_row("unrolled", mode, model, path, x_test))
            files[mode, "unrolled"] = path
            for route, copy in fusable.items():
                path = os.path.join(scratch, f"{route}_{mode}.tflite")
                export_with_batch_one(copy, path, mode, x_calibration)
                rows.append(
                    route_row(route, mode, model, path, x_test, resets=True)
                )
                files[mode, route] = path
            path = os.path.join(scratch, f"while_{mode}.tflite")
            if mode == "int8":
                status = while_int8_in_child(model, path, timesteps, scratch)
                if status != 0:
                    rows.append(
                        {"route": "while", "mode": mode, "exit": status}
                    )
                    continue
            else:
                export_with_batch_one(model, path, mode, x_calibration)
            rows.append(route_row("while", mode, model, path, x_test))
            files[mode, "while"] = path
        latency = {}
        for mode in MODES:
            log(f"{mode}: latency")
            routes = [r for r in ROUTES if (mode, r) in files]
            paths = [files[mode, r] for r in routes]
            times = compare_latency(paths, num_runs=300, rounds=3)
            base = times[paths[0]]
            latency[mode] = {
                route: times[path] / base for route, path in zip(routes, paths)
            }
        sizes = {}
        for steps in (8, 16, 32, 64):
            log(f"unrolled size, {steps} timesteps")
            scaled = keras.Sequential(
                [keras.Input((steps,), dtype="int32"), *model.layers]
            )
            path = os.path.join(scratch, f"steps_{steps}.tflite")
            export = to_tflite(scaled, path)
            sizes[steps] = {
                "size_bytes": export.size_bytes,
                "weight_bytes": inspect_tflite(path).weight_bytes,
            }
    write_results(timesteps, rows, latency, sizes)


def write_results(timesteps, rows, latency, sizes):
    unrolled = {r["mode"]: r for r in rows if r["route"] == "unrolled"}
    lines = [
        f"# Recurrent export routes: Embedding + LSTM(24), {timesteps} "
        "timesteps",
        "",
        "Parity: one example per `invoke()`, 200 held-out examples. Size "
        "and latency as ratios to the unrolled file of the same mode "
        "(latency: 1 thread, files measured side by side).",
        "",
        "| route | mode | size | size / unrolled | top-1 agreement | "
        "relative error | with resets | latency / unrolled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "exit" in row:
            lines.append(
                f"| {row['route']} | {row['mode']} | conversion crashed "
                f"(exit status {row['exit']}) | | | | | |"
            )
            continue
        ratio = row["size_bytes"] / unrolled[row["mode"]]["size_bytes"]
        resets = row.get("with_resets")
        reset_text = (
            f"{resets['top1_agreement']:.1%}, {resets['relative_error']:.2g}"
            if resets
            else ""
        )
        speed = latency.get(row["mode"], {}).get(row["route"])
        lines.append(
            f"| {row['route']} | {row['mode']} | {row['size_bytes']:,} B | "
            f"{ratio:.2f} | {row['top1_agreement']:.1%} | "
            f"{row['relative_error']:.2g} | {reset_text} | "
            f"{'' if speed is None else f'{speed:.2f}'} |"
        )
    lines += [
        "",
        "Unrolled float32 file against the number of timesteps:",
        "",
        "| timesteps | file size | of which weights |",
        "|---|---|---|",
    ]
    for steps, size in sizes.items():
        lines.append(
            f"| {steps} | {size['size_bytes']:,} B | "
            f"{size['weight_bytes']:,} B |"
        )
    lines += command_lines()
    text = "\n".join(lines)
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "recurrent_export.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "recurrent_export.json"), "w") as f:
        json.dump(
            {
                "timesteps": timesteps,
                "rows": rows,
                "latency_ratio": latency,
                "sizes": sizes,
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
