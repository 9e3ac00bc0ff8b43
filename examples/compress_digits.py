"""A Keras model from tfcompress layers, profiled, exported to int8 TFLite
and checked in LiteRT: the library's public API in forty lines.

    .venv/bin/python examples/compress_digits.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import tfcompress  # noqa: E402
from tfcompress import layers  # noqa: E402
from tfcompress.export import benchmark_tflite  # noqa: E402
from tfcompress.export import evaluate_tflite  # noqa: E402

(x_train, y_train), (x_test, y_test) = tfcompress.datasets.load_digits()

model = keras.Sequential(
    [
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.DepthwiseSeparableConv2D(32, momentum=0.9),
        layers.ShuffleConv2D(32, groups=4, activation="relu"),
        layers.PartialConv2D(n_div=4),
        keras.layers.Flatten(),
        layers.LowRankDense(64, rank=8, activation="relu"),
        keras.layers.Dense(10),
    ]
)
model.compile(
    "adam",
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=2)
print(tfcompress.profile(model))

os.makedirs("example_output", exist_ok=True)
export = tfcompress.to_tflite(
    model,
    "example_output/digits_int8.tflite",
    quantization="int8",
    data=x_train[:300],
)
print(export)
_, keras_accuracy = model.evaluate(x_test, y_test, verbose=0)
litert_accuracy = evaluate_tflite(export.path, x_test, y_test)
print(f"accuracy: Keras {keras_accuracy:.2%}, LiteRT int8 {litert_accuracy:.2%}")
print("latency:", benchmark_tflite(export.path, num_runs=100))
