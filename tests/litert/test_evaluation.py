import keras
import numpy as np
import pytest

from tfcompress.export import evaluate_tflite


def keras_accuracy(model, x, y):
    predictions = model.predict(x, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == y))


def test_float_file_equals_keras_accuracy(
    conv_model, conv_float, brightness_data
):
    _, _, x_test, y_test = brightness_data
    expected = keras_accuracy(conv_model, x_test, y_test)
    assert expected > 0.8  # The task was learnt.
    assert evaluate_tflite(conv_float.path, x_test, y_test) == expected
    assert evaluate_tflite(conv_float, x_test, y_test) == expected
    one_hot = keras.utils.to_categorical(y_test, 10)
    assert evaluate_tflite(conv_float.path, x_test, one_hot) == expected
    column = y_test[:, None]
    assert evaluate_tflite(conv_float.path, x_test, column, 7) == expected


def test_int8_file_close_to_keras_accuracy(
    conv_model, conv_int8, brightness_data
):
    _, _, x_test, y_test = brightness_data
    expected = keras_accuracy(conv_model, x_test, y_test)
    accuracy = evaluate_tflite(conv_int8.path, x_test, y_test, num_threads=1)
    assert abs(accuracy - expected) <= 0.03


def test_length_mismatch(conv_float, brightness_data):
    _, _, x_test, y_test = brightness_data
    with pytest.raises(
        ValueError,
        match=r"same number of examples. Received: x.shape=\(200, 8, 8, 1\), "
        r"y.shape=\(199,\)",
    ):
        evaluate_tflite(conv_float.path, x_test, y_test[:199])


def test_labels_out_of_range(conv_float, brightness_data):
    _, _, x_test, y_test = brightness_data
    with pytest.raises(ValueError, match=r"must lie in \[0, 9\].*to 10"):
        evaluate_tflite(conv_float.path, x_test, y_test + 1)


def test_one_hot_class_count_mismatch(conv_float, brightness_data):
    _, _, x_test, y_test = brightness_data
    with pytest.raises(ValueError, match=r"has 12 classes but the model"):
        evaluate_tflite(
            conv_float.path, x_test, keras.utils.to_categorical(y_test, 12)
        )


def test_labels_of_wrong_rank(conv_float, brightness_data):
    _, _, x_test, _ = brightness_data
    with pytest.raises(ValueError, match=r"Received: y.shape=\(200, 2, 5\)"):
        evaluate_tflite(conv_float.path, x_test, np.zeros((200, 2, 5)))
