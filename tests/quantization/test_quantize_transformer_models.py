"""Quantization-aware training of a whole text model (Embedding -> Dense on
tokens).

The ViT and ConvNeXt go through the same checks in the model-zoo tier
(`tests/zoo`).

Each model: trained float briefly, `quantize_model`, a short `fit`,
`to_tflite(..., quantization="int8")`. The file must hold every weight of
its FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D / GATHER ops as int8
(and feed its BATCH_MATMULs int8), be no larger than 1.05 times the
converter's own int8 post-training file of the float model, and agree
with the quantization-aware model on the top-1 class of 500+ inputs.
Each test prints its figures (run with `-s` to see them).
"""

import time

import keras
import numpy as np

from tests.quantization.conftest import LOSS
from tests.quantization.conftest import float_ops
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.quantization import quantize_model

# Ops whose constant weights TFLite stores as int8 in an int8 file.
KERNEL_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "GATHER")


def _kernel_weights(path):
    """`(op, dtype, bytes)` of each constant weight of the kernel ops, and
    the dtypes of the BATCH_MATMUL operands."""
    weights, matmul_operands = [], []
    for op in inspect_tflite(path).ops:
        if op.name in KERNEL_OPS:
            for tensor in op.inputs:
                # int32: biases and indices, not weights.
                if tensor.is_constant and tensor.dtype != "int32":
                    weights.append(
                        (op.name, tensor.dtype, tensor.constant_bytes)
                    )
        if op.name == "BATCH_MATMUL":
            matmul_operands += [tensor.dtype for tensor in op.inputs]
    return weights, matmul_operands


def _quantization_aware_export(model, x_train, y_train, x_check, tmp_path):
    """QAT, export and checks; returns the figures."""
    start = time.perf_counter()
    qat, report = quantize_model(model, strict=True)
    qat.compile(keras.optimizers.Adam(3e-4), LOSS, jit_compile=False)
    qat.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    export = to_tflite(qat, tmp_path / "qat.tflite", quantization="int8")
    ptq = to_tflite(
        model,
        tmp_path / "ptq.tflite",
        quantization="int8",
        data=x_train[:200],
    )
    weights, matmul_operands = _kernel_weights(export.path)
    total = sum(size for _, _, size in weights)
    int8 = sum(size for _, dtype, size in weights if dtype == "int8")
    parity = verify(qat, export.path, x_check)
    figures = {
        "model": model.name,
        "int8_weight_share": int8 / total,
        "not_int8": [(op, dtype) for op, dtype, _ in weights if dtype != "int8"],
        "batch_matmul_operands": sorted(set(matmul_operands)),
        "size_vs_ptq": export.size_bytes / ptq.size_bytes,
        "size_bytes": export.size_bytes,
        "ptq_size_bytes": ptq.size_bytes,
        "agreement": parity.top1_agreement,
        "examples": parity.num_examples,
        "float_ops": float_ops(export.path),
        "float_layers": report.float_layers,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(figures)
    return figures


def _check(figures):
    assert figures["not_int8"] == []  # No exception: every kernel has one.
    assert figures["int8_weight_share"] == 1.0
    assert figures["batch_matmul_operands"] in ([], ["int8"])
    assert figures["size_vs_ptq"] <= 1.05
    assert figures["examples"] >= 500
    assert figures["agreement"] >= 0.99
    assert figures["float_layers"] == ()


def test_text_model_exports_int8_and_matches(tmp_path):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 200, (1024, 24)).astype("int32")
    labels = (np.mean(tokens < 60, axis=1) > 0.3).astype("int32")
    inputs = keras.Input((24,), dtype="int32")
    x = keras.layers.Embedding(200, 16, name="embed")(inputs)
    x = keras.layers.Dense(32, activation="relu", name="proj")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs, name="text")
    model.compile(keras.optimizers.Adam(1e-2), LOSS, jit_compile=False)
    model.fit(tokens, labels, epochs=3, batch_size=32, verbose=0)
    figures = _quantization_aware_export(
        model, tokens, labels, tokens[:600], tmp_path
    )
    _check(figures)
    assert figures["float_ops"] == []
    names = [op.name for op in inspect_tflite(tmp_path / "qat.tflite").ops]
    assert names.count("GATHER") == 1 and names.count("FULLY_CONNECTED") == 2
