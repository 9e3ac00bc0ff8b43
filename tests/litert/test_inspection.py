import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.export import TFLiteInspection
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tests.tflite_fixtures import make_dense_model

FILTERS = 8


def make_conv_bn_model():
    """Conv2D + BatchNormalization + ReLU, with non-trivial BN statistics.

    Random moving statistics and affine terms make the folding real: an
    identity batch norm could vanish without being folded.
    """
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(FILTERS, 3, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, bias_initializer="ones"),
        ]
    )
    batch_norm = model.layers[1]
    rng = np.random.default_rng(1)
    batch_norm.set_weights(
        [
            rng.uniform(0.5, 2.0, FILTERS),  # gamma
            rng.normal(0.0, 0.5, FILTERS),  # beta
            rng.normal(0.0, 0.5, FILTERS),  # moving mean
            rng.uniform(0.5, 2.0, FILTERS),  # moving variance
        ]
    )
    return model


@pytest.fixture(scope="module")
def conv_bn_model():
    return make_conv_bn_model()


@pytest.fixture(scope="module")
def conv_bn_int8(conv_bn_model, tmp_path_factory):
    x = np.random.default_rng(0).random((100, 8, 8, 1), dtype="float32")
    return to_tflite(
        conv_bn_model,
        tmp_path_factory.mktemp("inspection") / "conv_bn_int8.tflite",
        quantization="int8",
        data=x,
    )


@pytest.fixture(scope="module")
def conv_bn_float(conv_bn_model, tmp_path_factory):
    return to_tflite(
        conv_bn_model,
        tmp_path_factory.mktemp("inspection") / "conv_bn_float.tflite",
    )


def test_int8_conv_bn_relu_is_one_fused_conv(conv_bn_int8):
    inspection = inspect_tflite(conv_bn_int8.path)
    assert isinstance(inspection, TFLiteInspection)
    # to_tflite keeps float I/O: the file quantizes on entry and
    # dequantizes on exit, and everything between runs in int8.
    assert [op.name for op in inspection.ops] == [
        "QUANTIZE",
        "CONV_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "DEQUANTIZE",
    ]
    assert inspection.op_counts == {
        "QUANTIZE": 1,
        "CONV_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "DEQUANTIZE": 1,
    }
    # Batch norm folded into the conv: no MUL/ADD left for it.
    assert "MUL" not in inspection.op_counts
    assert "ADD" not in inspection.op_counts

    conv = inspection.ops[1]
    assert inspection.rows == inspection.ops
    assert inspection.row("CONV_2D") is conv
    assert conv.activation == "RELU"
    data, kernel, bias = conv.inputs
    assert data.dtype == "int8" and not data.is_constant
    assert data.shape == (None, 8, 8, 1)
    assert kernel.dtype == "int8"
    assert kernel.shape == (FILTERS, 3, 3, 1)  # OHWI
    assert kernel.constant_bytes == FILTERS * 3 * 3 * 1
    assert kernel.quantization.granularity == "per-channel"
    assert kernel.quantization.num_scales == FILTERS
    assert kernel.quantization.axis == 0
    assert all(z == 0 for z in kernel.quantization.zero_points)
    # The folded BN shift becomes an int32 bias, also per channel.
    assert bias.dtype == "int32" and bias.shape == (FILTERS,)
    assert bias.constant_bytes == 4 * FILTERS
    assert bias.quantization.num_scales == FILTERS
    (output,) = conv.outputs
    assert output.dtype == "int8" and output.shape == (None, 6, 6, FILTERS)
    assert output.quantization.granularity == "per-tensor"

    assert inspection.ops[0].activation is None  # QUANTIZE cannot fuse.
    assert inspection.ops[3].activation == "NONE"
    assert inspection.input_dtypes == ["float32"]
    assert inspection.output_dtypes == ["float32"]
    assert inspection.inputs[0].shape == (None, 8, 8, 1)
    assert inspection.outputs[0].shape == (None, 10)
    # int8: conv kernel 72 + dense kernel 80; int32: biases 8 + 10 (4 B
    # each) and MEAN's 2 axes.
    assert inspection.weight_bytes_by_dtype == {
        "int8": 72 + 80,
        "int32": 4 * (8 + 10) + 4 * 2,
    }
    assert inspection.weight_bytes == 152 + 80


def test_float32_weights_take_4_bytes_per_parameter(
    conv_bn_model, conv_bn_float
):
    inspection = inspect_tflite(conv_bn_float)  # A TFLiteExport works too.
    assert inspection.op_counts == {
        "CONV_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
    }
    conv, _, dense = inspection.ops
    assert conv.activation == "RELU"
    kernel, bias = conv.inputs[1:]
    conv_params = conv_bn_model.layers[0].count_params()
    assert conv_params == 72
    assert kernel.dtype == "float32"
    assert kernel.constant_bytes == 4 * conv_params
    assert kernel.quantization is None
    assert bias.constant_bytes == 4 * FILTERS  # Folded from the BN.
    dense_params = conv_bn_model.layers[-1].count_params()
    assert sum(t.constant_bytes for t in dense.inputs) == 4 * dense_params
    assert inspection.weight_bytes_by_dtype == {
        "float32": 4 * (conv_params + FILTERS + dense_params),
        "int32": 8,
    }
    # Conv kernel and bias, dense kernel and bias, MEAN's axes.
    assert len(inspection.constants) == 5


def test_int8_io_file_has_no_quantize_ops(conv_bn_model, tmp_path):
    x = np.random.default_rng(0).random((100, 8, 8, 1), dtype="float32")

    def representative_dataset():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    # to_tflite keeps float I/O; int8 I/O takes the converter's own options.
    path = str(tmp_path / "conv_bn_int8_io.tflite")
    conv_bn_model.export(
        path,
        format="litert",
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_dataset,
        inference_input_type=tf.int8,
        inference_output_type=tf.int8,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    )
    inspection = inspect_tflite(path)
    assert inspection.input_dtypes == ["int8"]
    assert inspection.output_dtypes == ["int8"]
    assert inspection.op_counts == {
        "CONV_2D": 1,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
    }
    assert inspection.ops[0].activation == "RELU"
    assert inspection.ops[0].inputs[0] == inspection.inputs[0]
    assert inspection.inputs[0].quantization.granularity == "per-tensor"


def test_dynamic_range_stores_large_kernels_in_int8(tmp_path):
    model = make_dense_model()
    export = to_tflite(
        model, tmp_path / "dense_dynamic.tflite", quantization="dynamic"
    )
    inspection = inspect_tflite(export.path)
    assert inspection.op_counts == {"FULLY_CONNECTED": 2}
    first, second = inspection.ops
    assert first.activation == "RELU"
    kernel = first.inputs[1]
    assert kernel.dtype == "int8" and kernel.shape == (256, 64)
    assert kernel.constant_bytes == 256 * 64
    assert kernel.quantization.num_scales == 256
    # Both kernels have over 1024 elements, the converter's threshold for
    # quantizing a weight.
    assert second.inputs[1].dtype == "int8"
    assert inspection.weight_bytes_by_dtype["int8"] == 256 * 64 + 10 * 256
    assert inspection.input_dtypes == ["float32"]


def test_str_lists_one_line_per_op(conv_bn_int8):
    text = str(inspect_tflite(conv_bn_int8.path))
    lines = text.splitlines()
    assert lines[0].endswith(
        "5 ops (1 QUANTIZE, 1 CONV_2D, 1 MEAN, 1 FULLY_CONNECTED, "
        "1 DEQUANTIZE)"
    )
    assert lines[1] == "inputs: float32[?,8,8,1]"
    assert lines[2] == "outputs: float32[?,10]"
    assert lines[3] == "weights: 232 B (int8 152 B, int32 80 B)"
    assert lines[4].split() == ["#", "op", "activation", "inputs", "outputs"]
    # The table is `format_table`'s: a rule under the header.
    assert set(lines[5]) == {"-"}
    assert len(lines) == 6 + 5
    conv_line = lines[7]
    assert conv_line.split()[:3] == ["1", "CONV_2D", "RELU"]
    assert "int8[8,3,3,1] (72 B, 8 scales)" in conv_line
    assert conv_line.endswith("int8[?,6,6,8]")
    assert lines[6].split()[:3] == ["0", "QUANTIZE", "-"]


def test_to_dict_is_json_ready(conv_bn_int8):
    result = inspect_tflite(conv_bn_int8.path).to_dict()
    assert json.loads(json.dumps(result)) == result
    conv = result["ops"][1]
    assert conv["name"] == "CONV_2D" and conv["activation"] == "RELU"
    kernel = conv["inputs"][1]
    assert kernel["quantization"]["granularity"] == "per-channel"
    assert len(kernel["quantization"]["scales"]) == FILTERS
    assert result["inputs"][0]["shape"] == [None, 8, 8, 1]
    assert result["op_counts"]["CONV_2D"] == 1
    assert result["weight_bytes"] == 232
    assert len(result["constants"]) == 5  # 2 kernels, 2 biases, MEAN's axes.


def test_missing_file(tmp_path):
    path = str(tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError, match="No `.tflite` file"):
        inspect_tflite(path)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_text("not a flatbuffer at all")
    with pytest.raises(
        ValueError,
        match=r"not a TFLite flatbuffer: expected the file identifier "
        r"b'TFL3' at bytes 4 to 8, found b'a fl'",
    ):
        inspect_tflite(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"found b'' \(0 bytes in all\)"):
        inspect_tflite(path)


def test_truncated_file(conv_bn_int8, tmp_path):
    with open(conv_bn_int8.path, "rb") as f:
        content = f.read()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(content[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        inspect_tflite(path)
