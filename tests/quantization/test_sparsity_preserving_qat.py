"""Pruning-preserving QAT: a pruned model's zeros survive quantization-aware
training and are zeros of the int8 kernels in the exported file."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.callbacks import MagnitudePruning
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.litert import kernels
from tfcompress.litert import tflite_weights
from tfcompress.pruning import ConstantSparsity
from tfcompress.quantization import quantize_model

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _pruned(digits, **pruning):
    x, y, _, _ = digits
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile("adam", LOSS, metrics=["accuracy"])
    model.fit(
        x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
        callbacks=[MagnitudePruning(ConstantSparsity(0.8, 0), **pruning)],
    )
    return model


@pytest.fixture(scope="module")
def pruned(digits):
    """80% magnitude-pruned (one epoch); tests quantize copies of it."""
    return _pruned(digits)


def _qat(model, digits, preserve_sparsity=True):
    x, y, _, _ = digits
    qat_model, report = quantize_model(
        model, data=x[:64], preserve_sparsity=preserve_sparsity
    )
    qat_model.compile("adam", LOSS, metrics=["accuracy"])
    qat_model.fit(
        x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
        callbacks=[
            QuantizationAwareTraining(preserve_sparsity=preserve_sparsity)
        ],
    )
    return qat_model, report


def _kernel(model, name):
    for layer in model.layers:
        if layer.name.startswith(name):
            return keras.ops.convert_to_numpy(layer.kernel)
    raise KeyError(name)


def _file_kernels(path):
    """`{op name: int8 kernel}` of the file, read back from its buffers."""
    found = {w.kernel_of: w for w in kernels(tflite_weights(path))}
    assert {w.dtype for w in found.values()} == {"int8"}
    return {name: w.values for name, w in found.items()}


def test_pqat_keeps_the_zeros_in_training_and_in_the_int8_file(
    pruned, digits, tmp_path
):
    conv, logits = _kernel(pruned, "conv"), _kernel(pruned, "logits")
    qat_model, report = _qat(pruned, digits)
    assert dict(report.sparse_kernels) == pytest.approx(
        {"conv": np.mean(conv == 0), "logits": 0.8}
    )
    # The same entries are zero after a QAT epoch, and only they.
    np.testing.assert_array_equal(_kernel(qat_model, "conv") == 0, conv == 0)
    np.testing.assert_array_equal(
        _kernel(qat_model, "logits") == 0, logits == 0
    )
    export = tfcompress.to_tflite(
        qat_model, tmp_path / "pqat.tflite", quantization="int8",
        verbose=False,
    )
    stored = _file_kernels(export)
    # TFLite stores FULLY_CONNECTED weights as (out, in), CONV_2D as
    # (out, h, w, in): zeros where Keras's kernels have them, rounding
    # added none in the conv (its batch norm folded in) nor the dense.
    np.testing.assert_array_equal(
        stored["FULLY_CONNECTED"] == 0, logits.T == 0
    )
    np.testing.assert_array_equal(
        stored["CONV_2D"] == 0, np.transpose(conv, (3, 0, 1, 2)) == 0
    )
    assert np.mean(stored["FULLY_CONNECTED"] == 0) == pytest.approx(0.8)


def test_without_preserve_sparsity_qat_fills_the_zeros(pruned, digits):
    qat_model, report = _qat(pruned, digits, preserve_sparsity=False)
    assert report.sparse_kernels == ()
    # (Inputs that are always 0 after the ReLU give some entries no
    # gradient: those stay 0.)
    assert np.mean(_kernel(qat_model, "logits") == 0) < 0.3


def test_n_by_m_pattern_survives_qat_into_the_file(digits, tmp_path):
    qat_model, _ = _qat(_pruned(digits, sparsity_m_by_n=(2, 4)), digits)
    export = tfcompress.to_tflite(
        qat_model, tmp_path / "nm.tflite", quantization="int8", verbose=False
    )
    # (The conv has one input channel: no group of 4 to prune.) Input
    # channels are the innermost axis of TFLite's (out, in) weights.
    weights = _file_kernels(export)["FULLY_CONNECTED"]
    zeros_per_group = np.sum(weights.reshape(-1, 4) == 0, axis=1)
    assert zeros_per_group.min() >= 2
    assert np.mean(weights == 0) == pytest.approx(0.5)


def test_a_reloaded_qat_model_gets_its_masks_from_the_callback(
    pruned, digits, tmp_path
):
    x, y, _, _ = digits
    qat_model, _ = quantize_model(pruned, data=x[:64])
    path = tmp_path / "qat.keras"
    qat_model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    before = _kernel(loaded, "logits") == 0
    loaded.compile("adam", LOSS)
    loaded.fit(
        x[:256], y[:256], epochs=1, batch_size=64, verbose=0,
        callbacks=[QuantizationAwareTraining()],
    )
    np.testing.assert_array_equal(_kernel(loaded, "logits") == 0, before)


def test_preserve_sparsity_must_be_a_bool(digits):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="preserve_sparsity"):
        quantize_model(model, preserve_sparsity="yes")
    with pytest.raises(ValueError, match="preserve_sparsity"):
        QuantizationAwareTraining(preserve_sparsity=1)


def test_hold_zeros_skips_dense_and_all_zero_kernels():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, name="sparse"),
            keras.layers.Dense(4, name="dense"),
            keras.layers.Dense(3, kernel_initializer="zeros", name="untrained"),
        ]
    )
    sparse = model.get_layer("sparse").kernel
    values = keras.ops.convert_to_numpy(sparse)
    values[:3] = 0.0
    sparse.assign(values)
    held = tfcompress.pruning.hold_zeros(model)
    assert [(h.path.split("/")[0], h.zeros, h.size) for h in held] == [
        ("sparse", 12, 24)
    ]
    # The zero-initialized kernel is not frozen: one step moves it.
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 6)), np.ones((8, 3)), epochs=1, verbose=0)
    assert np.count_nonzero(model.get_layer("untrained").kernel.numpy()) > 0
    assert np.all(model.get_layer("sparse").kernel.numpy()[:3] == 0)
