"""`qat_parity`: a quantization-aware model against its own int8 file, op
by op, in units of each op's output step."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.quantization import qat_parity


def _pooled_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_each_op_is_measured_in_output_steps(tmp_path):
    """Conv and fully connected: within their kernels' own rounding. The
    reference int8 MEAN (which `qat_parity` runs, to see every tensor)
    rounds twice; the model rounds once, as XNNPACK's MEAN (LiteRT's
    default on CPU, what `verify` runs) does, so the file run as users run
    it agrees with the model on (almost) every output level."""
    x = np.random.default_rng(0).uniform(0, 1, (64, 8, 8, 3)).astype("float32")
    qat_model, _ = tfcompress.quantization.quantize_model(
        _pooled_model(), data=x
    )
    path = tmp_path / "qat.tflite"
    tfcompress.to_tflite(qat_model, str(path), quantization="int8", verbose=False)
    report = qat_parity(qat_model, path, x)
    assert not report.unmatched
    by_op = {row.op: row for row in report.rows}
    assert {"CONV_2D", "MEAN", "FULLY_CONNECTED"} <= set(by_op), report.table()
    for op in ("CONV_2D", "FULLY_CONNECTED"):
        assert by_op[op].local_max_steps <= 1.001, report.table()
    mean = by_op["MEAN"]
    assert mean.local_share_over_half > 0, report.table()
    (pooling_quantizer,) = [
        layer
        for layer in qat_model.layers
        if layer.name.startswith("global_average_pooling")
        and layer.name.endswith("_quant")
    ]
    pooled = keras.Model(qat_model.inputs, pooling_quantizer.output)
    expected = pooled.predict(x, verbose=0)
    inner = tmp_path / "pooled.tflite"
    tfcompress.to_tflite(pooled, str(inner), quantization="int8", verbose=False)
    default = tfcompress.litert.LiteRTModel(str(inner)).predict(x)
    assert np.mean(np.abs(default - expected) > mean.scale / 2) < 0.01


def test_a_float_model_is_refused(tmp_path):
    model = _pooled_model()
    path = tmp_path / "float.tflite"
    tfcompress.to_tflite(model, str(path), verbose=False)
    with pytest.raises(ValueError, match="quantization-aware"):
        qat_parity(model, path, np.zeros((1, 8, 8, 3), "float32"))
