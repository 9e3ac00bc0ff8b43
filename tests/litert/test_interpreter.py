import keras
import numpy as np
import pytest

from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.export import verify


def test_predict_matches_keras_with_partial_last_batch(
    conv_model, conv_float, brightness_data
):
    x_test = brightness_data[2]
    expected = conv_model.predict(x_test, verbose=0)
    assert LiteRTModel(conv_float).path == conv_float.path  # An export too.
    for batch_size in (1, 7, 200, 512):
        outputs = LiteRTModel(conv_float.path).predict(x_test, batch_size)
        assert outputs.dtype == np.float32
        assert outputs.shape == (200, 10)
        assert np.max(np.abs(outputs - expected)) < 1e-4


def test_resizes_only_when_batch_size_changes(conv_float, brightness_data):
    litert_model = LiteRTModel(conv_float.path, num_threads=2)
    resize = litert_model.interpreter.resize_tensor_input
    shapes = []

    def counting_resize(index, shape, strict=False):
        shapes.append(list(shape))
        return resize(index, shape, strict)

    litert_model.interpreter.resize_tensor_input = counting_resize
    x = brightness_data[2]
    litert_model.predict(x[:64], batch_size=32)
    litert_model.predict(x[:96], batch_size=32)
    assert shapes == [[32, 8, 8, 1]]
    litert_model.predict(x[:40], batch_size=32)  # Batches of 32 and 8.
    assert shapes == [[32, 8, 8, 1], [8, 8, 8, 1]]


def test_int8_input_and_output_tensors(
    conv_model, conv_int8_io_path, brightness_data
):
    x_test = brightness_data[2]
    litert_model = LiteRTModel(conv_int8_io_path)
    assert litert_model.input_details[0]["dtype"] == np.int8
    assert litert_model.output_details[0]["dtype"] == np.int8
    outputs = litert_model.predict(x_test)
    expected = conv_model.predict(x_test, verbose=0)
    assert outputs.dtype == np.float32
    agreement = np.mean(outputs.argmax(-1) == expected.argmax(-1))
    assert agreement >= 0.95
    # Dequantized outputs are on the float scale, not raw int8 codes.
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(outputs - expected)) < 0.1 * scale


def test_int8_input_quantization_clips(conv_int8_io_path):
    litert_model = LiteRTModel(conv_int8_io_path)
    # Far outside the calibrated range: clipped, not wrapped around.
    outputs = litert_model.predict(np.full((2, 8, 8, 1), 1e6))
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(outputs[0], outputs[1])


def test_fixed_batch_model_pads_the_last_batch(fixed_batch_path):
    model, path = fixed_batch_path
    x = np.random.default_rng(0).random((5, 6), "float32")
    outputs = LiteRTModel(path).predict(x, batch_size=4)
    assert outputs.shape == (5, 3)
    expected = model.predict(x, verbose=0)
    assert np.max(np.abs(outputs - expected)) < 1e-5


def test_input_shape_mismatch(conv_float):
    litert_model = LiteRTModel(conv_float.path)
    with pytest.raises(
        ValueError,
        match=r"expected per-example shape \(8, 8, 1\) \(model input shape "
        r"\(None, 8, 8, 1\)\). Received: x.shape=\(5, 8, 8\)",
    ):
        litert_model.predict(np.zeros((5, 8, 8)))
    with pytest.raises(ValueError, match=r"Received: x.shape=\(5, 8, 8, 3\)"):
        litert_model.predict(np.zeros((5, 8, 8, 3)))


def test_empty_input(conv_float):
    with pytest.raises(ValueError, match=r"`x` is empty"):
        LiteRTModel(conv_float.path).predict(np.zeros((0, 8, 8, 1)))


def test_multi_input_model_is_rejected_by_predict(tmp_path):
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], keras.layers.Dense(2)(merged))
    export = to_tflite(model, tmp_path / "model.tflite")
    with pytest.raises(ValueError, match=r"one input and one output"):
        LiteRTModel(export.path).predict(np.zeros((1, 4)))


@pytest.mark.parametrize("num_threads", [0, -2, 1.5, True])
def test_num_threads_must_be_positive(conv_float, num_threads):
    with pytest.raises(
        ValueError, match=rf"Received: num_threads={num_threads}"
    ):
        LiteRTModel(conv_float.path, num_threads=num_threads)


def test_batch_size_must_be_positive(conv_float):
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        LiteRTModel(conv_float.path).predict(np.zeros((1, 8, 8, 1)), 0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Received: path='.*nope"):
        LiteRTModel(tmp_path / "nope.tflite")


def test_builtin_kernels_without_xnnpack(
    conv_model, conv_float, conv_int8_io_path, brightness_data
):
    x_test = brightness_data[2]

    def op_names(litert_model):
        return [op["op_name"] for op in litert_model.interpreter._get_ops_details()]

    # XNNPACK, the default, takes the graph over as DELEGATE nodes.
    assert "DELEGATE" in op_names(LiteRTModel(conv_float))
    builtin = LiteRTModel(conv_float, xnnpack=False)
    assert "DELEGATE" not in op_names(builtin)
    expected = conv_model.predict(x_test, verbose=0)
    assert np.max(np.abs(builtin.predict(x_test) - expected)) < 1e-4
    assert verify(conv_model, conv_float, x_test, xnnpack=False).relative_error < 1e-5
    # On an int8 file the two kernels round differently, by output steps.
    delegated = LiteRTModel(conv_int8_io_path).predict(x_test)
    reference = LiteRTModel(conv_int8_io_path, xnnpack=False).predict(x_test)
    scale = LiteRTModel(conv_int8_io_path).output_details[0]["quantization"][0]
    assert np.max(np.abs(delegated - reference)) <= 2 * scale + 1e-6
    assert np.mean(delegated.argmax(-1) == reference.argmax(-1)) >= 0.95


def test_xnnpack_must_be_a_bool(conv_float):
    with pytest.raises(ValueError, match="`xnnpack` must be True or False"):
        LiteRTModel(conv_float, xnnpack="no")
