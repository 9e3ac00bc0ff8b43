"""Quantization-aware training of LSTM models (`LSTMInOps`).

`quantize_model` writes an LSTM out step by step over two Dense layers, as
the int8 file runs it, so its file is all-integer and agrees with the
quantization-aware model. Tiny models: 6 timesteps, 8 units.
"""

import keras
import numpy as np
import pytest

import tfcompress
from tests.quantization.conftest import LOSS
from tfcompress.quantization import LSTMInOps
from tfcompress.quantization import quantize_model

TIMESTEPS = 6


def _marker_task(count, seed):
    """Token sequences whose class (of 4) is the marker token they hold."""
    rng = np.random.default_rng(seed)
    x = rng.integers(5, 40, (count, TIMESTEPS))
    y = rng.integers(0, 4, count)
    x[np.arange(count), rng.integers(0, TIMESTEPS, count)] = y + 1
    return x.astype("int32"), y


def _text_model(**lstm_arguments):
    inputs = keras.Input((TIMESTEPS,), dtype="int32")
    x = keras.layers.Embedding(40, 8, name="embedding")(inputs)
    x = keras.layers.LSTM(8, name="lstm", **lstm_arguments)(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_in_ops_computes_what_the_lstm_computes(return_sequences):
    lstm = keras.layers.LSTM(
        5, return_sequences=return_sequences, activation="relu"
    )
    x = np.random.default_rng(0).normal(size=(3, 4, 2)).astype("float32")
    expected = lstm(x)
    twin = LSTMInOps(**lstm.get_config())
    twin.build(x.shape)
    twin.set_weights(lstm.get_weights())
    np.testing.assert_allclose(twin(x), expected, atol=1e-6)
    assert [w.shape for w in twin.get_weights()] == [
        w.shape for w in lstm.get_weights()
    ]


def test_lstm_model_exports_int8_and_matches(tmp_path):
    x, y = _marker_task(1024, 0)
    model = _text_model()
    model.compile(keras.optimizers.Adam(1e-2), LOSS, jit_compile=False)
    model.fit(x[:512], y[:512], epochs=4, batch_size=64, verbose=0)
    qat, report = quantize_model(model, data=x[:128])
    assert report.float_layers == ()
    quantized = [row.name for row in report.rows if row.status == "int8"]
    assert "lstm/input_projection" in quantized
    assert "lstm/recurrent_projection" in quantized
    qat.compile(keras.optimizers.Adam(1e-4), LOSS, jit_compile=False)
    qat.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0)
    exported = tfcompress.to_tflite(
        qat, tmp_path / "lstm.tflite", quantization="int8", strict=True
    )
    assert exported.precision.is_integer
    ops = [op.name for op in tfcompress.export.inspect_tflite(exported).ops]
    # One projection of every step's input; per step a state projection
    # and 3 gates (the first step, from a zero state, has no state
    # projection and no forget gate); and the head.
    assert ops.count("FULLY_CONNECTED") == 1 + TIMESTEPS - 1 + 1
    assert ops.count("LOGISTIC") == 3 * TIMESTEPS - 1
    assert ops.count("TANH") == 2 * TIMESTEPS
    parity = tfcompress.export.verify(qat, exported, x[512:])
    assert parity.top1_agreement >= 0.99, str(parity)


@pytest.mark.parametrize(
    "arguments, reason",
    [({"go_backwards": True}, "go_backwards=True"), ({"dropout": 0.1}, "dropout")],
)
def test_unsupported_lstm_stays_float_with_its_reason(arguments, reason):
    _, report = quantize_model(_text_model(**arguments))
    ((path, why),) = report.float_layers
    assert path == "lstm" and reason in why


def test_masked_lstm_stays_float():
    inputs = keras.Input((TIMESTEPS,), dtype="int32")
    x = keras.layers.Embedding(40, 8, mask_zero=True)(inputs)
    outputs = keras.layers.LSTM(8, name="lstm")(x)
    _, report = quantize_model(keras.Model(inputs, outputs))
    ((path, why),) = report.float_layers
    assert path == "lstm" and "mask" in why
