import dataclasses
import gzip
import os
import stat

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.tflite_fixtures import INPUT_SHAPE
from tests.tflite_fixtures import make_conv_model
from tests.tflite_fixtures import make_dense_model
from tfcompress.export import LiteRTModel
from tfcompress.export import TFLiteExport
from tfcompress.export import to_tflite


def top1_agreement(a, b):
    return np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1))


@pytest.fixture(scope="module")
def dense_model():
    keras.utils.set_random_seed(0)
    return make_dense_model()


@pytest.fixture(scope="module")
def dense_exports(dense_model, tmp_path_factory):
    """The Dense 64x256 model in every quantization mode."""
    directory = tmp_path_factory.mktemp("dense")
    calibration = np.random.default_rng(1).random((200, 64), "float32")
    exports = {}
    for mode in ("none", "float16", "dynamic", "int8"):
        exports[mode] = to_tflite(
            dense_model,
            directory / f"dense_{mode}.tflite",
            quantization=mode,
            data=calibration if mode == "int8" else None,
        )
    return exports


def test_float32_matches_keras(conv_model, conv_float, brightness_data):
    x_test = brightness_data[2]
    expected = conv_model.predict(x_test, verbose=0)
    outputs = LiteRTModel(conv_float.path).predict(x_test)
    assert outputs.shape == (200, 10)
    assert np.max(np.abs(outputs - expected)) < 1e-4


def test_export_report(conv_float):
    assert isinstance(conv_float, TFLiteExport)
    assert conv_float.quantization == "none"
    with open(conv_float.path, "rb") as f:
        content = f.read()
    assert conv_float.size_bytes == len(content) == os.path.getsize(
        conv_float.path
    )
    assert conv_float.gzipped_size_bytes == len(gzip.compress(content, 9))
    text = str(conv_float)
    assert conv_float.path in text and "(none)" in text and "gzipped" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv_float.size_bytes = 0


def test_int8_agrees_with_keras_top1(conv_model, conv_int8, brightness_data):
    x_test = brightness_data[2]
    expected = conv_model.predict(x_test, verbose=0)
    litert_model = LiteRTModel(conv_int8.path)
    # Float32 in and out: the file quantizes at the edges.
    assert litert_model.input_details[0]["dtype"] == np.float32
    assert litert_model.output_details[0]["dtype"] == np.float32
    outputs = litert_model.predict(x_test)
    assert top1_agreement(outputs, expected) >= 0.95


def test_sizes_by_mode(dense_exports):
    size = {mode: e.size_bytes for mode, e in dense_exports.items()}
    assert size["int8"] / size["none"] < 0.5
    assert 0.4 < size["float16"] / size["none"] < 0.6
    assert size["dynamic"] / size["none"] < 0.5


@pytest.mark.parametrize(
    "mode, max_error", [("none", 1e-4), ("float16", 1e-2), ("dynamic", 5e-2)]
)
def test_float_modes_match_keras(dense_model, dense_exports, mode, max_error):
    x = np.random.default_rng(2).random((200, 64), "float32")
    expected = dense_model.predict(x, verbose=0)
    outputs = LiteRTModel(dense_exports[mode].path).predict(x)
    assert np.max(np.abs(outputs - expected)) < max_error
    assert top1_agreement(outputs, expected) >= 0.95


def test_int8_dense_agrees_with_keras(dense_model, dense_exports):
    x = np.random.default_rng(2).random((200, 64), "float32")
    expected = dense_model.predict(x, verbose=0)
    outputs = LiteRTModel(dense_exports["int8"].path).predict(x)
    assert top1_agreement(outputs, expected) >= 0.95


def test_int8_from_dataset_of_pairs(conv_model, brightness_data, tmp_path):
    x_train, y_train, x_test, _ = brightness_data
    dataset = tf.data.Dataset.from_tensor_slices(
        (x_train[:200], y_train[:200])
    ).batch(16)
    export = to_tflite(
        conv_model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=dataset,
    )
    outputs = LiteRTModel(export.path).predict(x_test)
    expected = conv_model.predict(x_test, verbose=0)
    assert top1_agreement(outputs, expected) >= 0.95


def test_int8_from_generator_stops_after_calibration_steps(
    conv_model, brightness_data, tmp_path
):
    x_train, _, x_test, _ = brightness_data
    batches_read = []

    def batches():
        for start in range(0, 500, 10):
            batches_read.append(start)
            yield x_train[start : start + 10]

    export = to_tflite(
        conv_model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=batches,
        calibration_steps=25,
    )
    # 25 examples are in the first 3 batches of 10.
    assert len(batches_read) == 3
    outputs = LiteRTModel(export.path).predict(x_test)
    expected = conv_model.predict(x_test, verbose=0)
    assert top1_agreement(outputs, expected) >= 0.9


def test_int8_from_iterator_of_single_examples(
    conv_model, brightness_data, tmp_path
):
    x_train, y_train = brightness_data[0], brightness_data[1]
    examples = ((x_train[i], y_train[i]) for i in range(100))
    export = to_tflite(
        conv_model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=examples,
    )
    assert export.size_bytes > 0


def test_int8_multi_input(tmp_path):
    keras.utils.set_random_seed(0)
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], keras.layers.Dense(5)(merged))
    rng = np.random.default_rng(0)
    xa = rng.random((100, 4), "float32")
    xb = rng.random((100, 3), "float32")
    export = to_tflite(
        model,
        tmp_path / "model.tflite",
        quantization="int8",
        data=[xa, xb],
    )
    runner = LiteRTModel(export.path).interpreter.get_signature_runner()
    outputs = runner(a=xa[:1], b=xb[:1])["output_0"]
    expected = model.predict([xa[:1], xb[:1]], verbose=0)
    assert np.max(np.abs(outputs - expected)) < 0.05


def test_builtin_ops_only_by_default(tmp_path):
    inputs = keras.Input((5,))
    outputs = keras.layers.Lambda(lambda t: keras.ops.erf(t))(inputs)
    model = keras.Model(inputs, outputs)  # Erf is a Flex (TF) op.
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    with pytest.raises(RuntimeError, match="select_tf_ops=True"):
        to_tflite(model, path)
    # The failed export left the existing file and no temporary file.
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]

    export = to_tflite(model, path, select_tf_ops=True)
    assert export.size_bytes == os.path.getsize(path)
    assert path.read_bytes() != b"previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_failure_during_calibration_keeps_existing_file(conv_model, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    rng = np.random.default_rng(0)

    def batches():
        yield rng.random((4,) + INPUT_SHAPE, "float32")
        yield rng.random((4, 8, 8, 3), "float32")  # Wrong channel count.

    with pytest.raises(ValueError, match=r"per-example shape \(8, 8, 1\)"):
        to_tflite(
            conv_model,
            path,
            quantization="int8",
            data=batches,
        )
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_replaces_existing_file_with_default_permissions(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    export = to_tflite(model, str(path))
    assert export.path == str(path)
    assert path.read_bytes()[4:8] == b"TFL3"  # The flatbuffer identifier.
    assert os.listdir(tmp_path) == ["model.tflite"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


# Argument errors: raised before any conversion, and no file is written.


@pytest.fixture
def small_model():
    return make_conv_model()


def test_unknown_quantization(small_model, tmp_path):
    with pytest.raises(
        ValueError, match=r"'none', 'float16', 'dynamic', 'int8'.*"
        r"Received: quantization='int4'"
    ):
        to_tflite(small_model, tmp_path / "m.tflite", quantization="int4")
    assert os.listdir(tmp_path) == []


def test_int8_needs_data(small_model, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"int8 needs calibration data: pass data=",
    ):
        to_tflite(small_model, tmp_path / "m.tflite", quantization="int8")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", ["none", "float16", "dynamic"])
def test_data_rejected_outside_int8(
    small_model, tmp_path, mode
):
    with pytest.raises(
        ValueError,
        match=rf"only used for quantization='int8'.*quantization='{mode}' it "
        "would be ignored",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization=mode,
            data=np.zeros((4,) + INPUT_SHAPE),
        )


def test_data_shape_mismatch(small_model, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"expected per-example shape \(8, 8, 1\).*"
        r"Received: a batch of shape \(10, 8, 8, 3\)",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=np.zeros((10, 8, 8, 3)),
        )
    assert os.listdir(tmp_path) == []


def test_data_x_y_tuple_for_single_input(
    small_model, tmp_path
):
    with pytest.raises(ValueError, match=r"one array per model input"):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=(np.zeros((4,) + INPUT_SHAPE), np.zeros(4)),
        )


@pytest.mark.parametrize(
    "empty",
    [
        np.zeros((0,) + INPUT_SHAPE, "float32"),
        lambda: iter([]),
        tf.data.Dataset.from_tensor_slices(
            np.zeros((0,) + INPUT_SHAPE, "float32")
        ).batch(4),
    ],
    ids=["array", "generator", "dataset"],
)
def test_empty_data(small_model, tmp_path, empty):
    with pytest.raises(ValueError, match=r"`data` is empty"):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=empty,
        )
    assert os.listdir(tmp_path) == []


def test_unsupported_data(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"Received: data of"):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=3.5,
        )


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_calibration_steps_must_be_positive(small_model, tmp_path, steps):
    with pytest.raises(
        ValueError,
        match=rf"integer >= 1. Received: calibration_steps={steps}",
    ):
        to_tflite(
            small_model,
            tmp_path / "m.tflite",
            quantization="int8",
            data=np.zeros((4,) + INPUT_SHAPE),
            calibration_steps=steps,
        )


def test_select_tf_ops_must_be_bool(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"Received: select_tf_ops='yes'"):
        to_tflite(small_model, tmp_path / "m.tflite", select_tf_ops="yes")


def test_path_must_end_with_tflite(small_model, tmp_path):
    with pytest.raises(
        ValueError, match=r"end with '.tflite'. Received: path='.*model.h5'"
    ):
        to_tflite(small_model, tmp_path / "model.h5")
    assert os.listdir(tmp_path) == []


def test_parent_directory_must_exist(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"directory of `path` does not exist"):
        to_tflite(small_model, tmp_path / "missing" / "m.tflite")


def test_model_must_be_built(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(
        ValueError, match=r"not built.*`model.build\(input_shape\)`"
    ):
        to_tflite(model, tmp_path / "m.tflite")
    assert os.listdir(tmp_path) == []
