import json

import keras
import numpy as np
import pytest

from tests.tflite_fixtures import make_dense_model
from tfcompress.export import to_tflite
from tfcompress.litert import FloatOp
from tfcompress.litert import Precision
from tfcompress.litert import inspect_tflite
from tfcompress.litert import tflite_precision
from tfcompress.quantization import op_layers

VOCABULARY, WIDTH = 300, 16


def make_embedding_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, WIDTH, name="emb")(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


@pytest.fixture(scope="module")
def embedding_exports(tmp_path_factory):
    model = make_embedding_model()
    ids = np.random.default_rng(0).integers(0, VOCABULARY, (50, 5))
    directory = tmp_path_factory.mktemp("precision")
    exports = {
        mode: to_tflite(
            model,
            directory / f"{mode}.tflite",
            quantization=mode,
            data=ids.astype("int32") if mode == "int8" else None,
            verbose=False,
        )
        for mode in ("float16", "int8")
    }
    return model, exports


def test_int8_file_computes_in_integer(conv_int8):
    # A path and a TFLiteExport give the same report.
    from_path = tflite_precision(conv_int8.path, quantization="int8")
    assert tflite_precision(conv_int8, quantization="int8") == from_path
    assert isinstance(from_path, Precision)
    assert (from_path.num_weighted_ops, from_path.num_integer_ops) == (2, 2)
    assert from_path.is_integer and from_path.rows == ()
    # 8 3x3 conv kernels and a 10x8 dense kernel; biases are not weights.
    assert from_path.weight_bytes_by_dtype == {"int8": 8 * 9 + 10 * 8}
    assert from_path.weight_fraction("int8") == 1.0
    assert from_path.headline == (
        "int8: 2 of 2 weighted ops integer, 100.0% of weight bytes int8"
    )
    assert str(from_path) == from_path.table() == from_path.headline
    # The export read its own file back, and found the same.
    assert conv_int8.precision == from_path


def test_float16_weights_are_read_through_their_dequantize(
    embedding_exports,
):
    model, exports = embedding_exports
    inspection = inspect_tflite(exports["float16"])
    assert inspection.op_counts["DEQUANTIZE"] == 2
    precision = tflite_precision(
        inspection,
        quantization="float16",
        layers=op_layers(model, inspection),
    )
    # The table of the embedding (read by GATHER) and the dense kernel,
    # stored as float16 and dequantized to float32 before their ops.
    assert (precision.num_weighted_ops, precision.num_integer_ops) == (2, 0)
    assert precision.weight_bytes_by_dtype == {
        "float16": 2 * (VOCABULARY * WIDTH + WIDTH * 3)
    }
    assert [(row.op, row.name) for row in precision.rows] == [
        ("GATHER", "emb"),
        ("FULLY_CONNECTED", "head"),
    ]
    row = precision.row("emb")
    assert isinstance(row, FloatOp)
    assert (row.compute, row.activation_dtype, row.weight_dtype) == (
        "float",
        "float32",
        "float16",
    )
    assert precision.headline == (
        "float16: 0 of 2 weighted ops integer (2 float: emb, head), 100.0% "
        "of weight bytes float16"
    )
    lines = precision.table().splitlines()
    assert lines[1].split() == [
        "#", "Op", "Layer", "Compute", "Activations", "Weights"
    ]
    assert lines[3].split()[1:] == [
        "GATHER", "emb", "float", "float32", "float16"
    ]
    data = precision.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["num_float_ops"] == 2 and data["rows"][1]["name"] == "head"


def test_int8_embedding_table_is_an_integer_weight(embedding_exports):
    _, exports = embedding_exports
    precision = exports["int8"].precision
    assert (precision.num_weighted_ops, precision.num_integer_ops) == (2, 2)
    assert precision.weight_bytes_by_dtype == {
        "int8": VOCABULARY * WIDTH + WIDTH * 3
    }


def test_dynamic_range_ops_are_hybrid(tmp_path):
    keras.utils.set_random_seed(0)
    export = to_tflite(
        make_dense_model(),
        tmp_path / "dynamic.tflite",
        quantization="dynamic",
        verbose=False,
    )
    precision = tflite_precision(export, quantization="dynamic")
    assert precision.num_integer_ops == 0
    assert {row.compute for row in precision.rows} == {"hybrid"}
    assert {row.weight_dtype for row in precision.rows} == {"int8"}
    # Without the model, rows are named after their output tensors.
    assert all(row.layers == () and row.name for row in precision.rows)
    assert precision.weight_bytes_by_dtype == {"int8": 64 * 256 + 256 * 10}
    assert "2 hybrid: integer weights, float activations" in (
        precision.headline
    )


def test_errors(conv_int8, tmp_path):
    with pytest.raises(ValueError, match=r"\(5 ops\). Received: 1 entries"):
        tflite_precision(conv_int8, layers=[("conv",)])
    with pytest.raises(FileNotFoundError, match=r"Received: path='.*nope"):
        tflite_precision(tmp_path / "nope.tflite")
