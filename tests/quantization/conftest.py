import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress
from tests.tflite_fixtures import brightness_data  # noqa: F401
from tests.tflite_fixtures import conv_float  # noqa: F401
from tests.tflite_fixtures import conv_int8  # noqa: F401
from tests.tflite_fixtures import conv_model  # noqa: F401
from tests.tflite_fixtures import export_dir  # noqa: F401
from tfcompress.export import inspect_tflite

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="session")
def trained_mobilenet(digits):
    """A small MobileNetV2 trained 3 epochs on digits (about 93%)."""
    keras.utils.set_random_seed(0)
    x, y, _, _ = digits
    model = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)
    model.compile("adam", LOSS, metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    return model


def export_qat(model, path):
    """Converts a QAT model with the converter's QAT path (no calibration
    data: the ranges come from the fake-quant ops)."""
    model.export(
        str(path),
        format="litert",
        verbose=False,
        optimizations=[tf.lite.Optimize.DEFAULT],
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
    )
    return str(path)


def float_ops(path):
    """Ops of a .tflite file that compute on float32 tensors, other than
    the QUANTIZE / DEQUANTIZE at the model's edges."""
    inspection = inspect_tflite(path)
    return [
        op.name
        for op in inspection.ops
        if op.name not in ("QUANTIZE", "DEQUANTIZE")
        and any(t.dtype == "float32" for t in op.inputs + op.outputs)
    ]


def top1(model, x):
    return np.argmax(model.predict(x, verbose=0), axis=-1)
