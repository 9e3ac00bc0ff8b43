"""Parameter sharing across layers: one layer in place of a group, stored
once in the `.tflite` file, trained from every place it is used."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.clustering import share_layers
from tfcompress.clustering import shareable_groups
from tfcompress.litert import kernels
from tfcompress.litert import tflite_weights
from tfcompress.quantization import quantize_model

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
BLOCK_PARAMS = 8 * 8 * 3 * 3 + 8


def _repeated_blocks():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    for k in range(3):
        x = keras.layers.Conv2D(
            8, 3, padding="same", activation="relu", name=f"block{k}"
        )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    x, y, _, _ = digits
    model = _repeated_blocks()
    model.compile(keras.optimizers.Adam(3e-3), LOSS, metrics=["accuracy"])
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    return model


def test_groups_found_and_shared_weights_are_the_mean(trained, digits):
    x = digits[2][:64]
    assert shareable_groups(trained) == [["block0", "block1", "block2"]]
    before = [w.copy() for w in trained.get_weights()]
    shared, report = share_layers(trained)
    # The input model is untouched.
    for old, new in zip(before, trained.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert [g.layers for g in report.groups] == [("block0", "block1", "block2")]
    assert report.params_before - report.params_after == 2 * BLOCK_PARAMS
    assert shared.count_params() == report.params_after
    assert "block1" not in [layer.name for layer in shared.layers]
    assert f"{2 * BLOCK_PARAMS:,} saved" in str(report)
    # Same outputs as the input model with each block set to the mean.
    reference = keras.models.clone_model(trained)
    reference.set_weights(trained.get_weights())
    mean = [
        np.mean([trained.get_layer(f"block{k}").get_weights()[i]
                 for k in range(3)], axis=0)
        for i in range(2)
    ]
    for k in range(3):
        reference.get_layer(f"block{k}").set_weights(mean)
    np.testing.assert_allclose(
        shared.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5
    )
    first, _ = share_layers(trained, [["block2", "block0"]], initialization="first")
    np.testing.assert_array_equal(
        first.get_layer("block0").get_weights()[0],
        trained.get_layer("block0").get_weights()[0],
    )
    assert first.count_params() == trained.count_params() - BLOCK_PARAMS


def test_fine_tuned_shared_model_exports_its_weights_once(trained, digits, tmp_path):
    x, y, x_test, y_test = digits
    shared, _ = share_layers(trained)
    shared.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
    before = shared.evaluate(x_test, y_test, verbose=0)[1]
    shared.fit(x, y, epochs=3, batch_size=64, verbose=0)
    after = shared.evaluate(x_test, y_test, verbose=0)[1]
    assert after > before  # Training reaches the one set of weights.
    plain = tfcompress.to_tflite(trained, tmp_path / "plain.tflite", verbose=False)
    export = tfcompress.to_tflite(shared, tmp_path / "shared.tflite", verbose=False)
    ops = [op.name for op in tfcompress.export.inspect_tflite(export).ops]
    assert ops.count("CONV_2D") == 4  # The graph and its MACs are unchanged.
    # Three CONV_2D ops read one stored kernel: 2 blocks' weights fewer.
    stored = kernels(tflite_weights(export))
    assert len(stored) == len(kernels(tflite_weights(plain))) - 2 == 3
    assert plain.size_bytes - export.size_bytes >= 2 * BLOCK_PARAMS * 4
    parity = tfcompress.export.verify(shared, export, x_test[:256])
    assert parity.relative_error < 1e-4, str(parity)
    # int8: the converter's own calibration, one int8 kernel for the group.
    int8 = tfcompress.to_tflite(
        shared, tmp_path / "shared_int8.tflite", quantization="int8",
        data=x[:128], verbose=False,
    )
    assert int8.precision.is_integer
    assert [w.dtype for w in kernels(tflite_weights(int8))] == ["int8"] * 3
    assert tfcompress.export.verify(shared, int8, x_test[:256]).top1_agreement >= 0.97


def test_qat_of_a_shared_model_keeps_one_kernel(trained, digits, tmp_path):
    x, y, x_test, _ = digits
    shared, _ = share_layers(trained)
    qat_model, _ = quantize_model(shared, data=x[:64])
    qat_model.compile(keras.optimizers.Adam(1e-4), LOSS)
    qat_model.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
                  callbacks=[QuantizationAwareTraining()])
    export = tfcompress.to_tflite(
        qat_model, tmp_path / "qat.tflite", quantization="int8", verbose=False
    )
    assert export.precision.is_integer
    assert [w.dtype for w in kernels(tflite_weights(export))] == ["int8"] * 3
    parity = tfcompress.export.verify(qat_model, export, x_test[:256])
    assert parity.top1_agreement >= 0.99, str(parity)


def test_shared_model_round_trips_in_safe_mode(trained, digits, tmp_path):
    x = digits[2][:32]
    shared, _ = share_layers(trained)
    shared.save(tmp_path / "shared.keras")
    loaded = keras.saving.load_model(tmp_path / "shared.keras", safe_mode=True)
    assert loaded.count_params() == shared.count_params()
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), shared.predict(x, verbose=0), atol=1e-6
    )


def test_errors_say_what_is_wrong(trained):
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        share_layers(trained, [["block0", "nope"]])
    with pytest.raises(ValueError, match="2 or more layers"):
        share_layers(trained, [["block0"]])
    with pytest.raises(ValueError, match="in two groups"):
        share_layers(trained, [["block0", "block1"], ["block1", "block2"]])
    with pytest.raises(ValueError, match="'stem' and 'block0'.*input shapes"):
        share_layers(trained, [["stem", "block0"]])
    with pytest.raises(ValueError, match="'block0' and 'logits'.*classes"):
        share_layers(trained, [["block0", "logits"]])
    with pytest.raises(ValueError, match="`initialization` must be one of"):
        share_layers(trained, initialization="median")
    with pytest.raises(ValueError, match="list of lists of layer names"):
        share_layers(trained, "block0")
    lone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="no shareable group"):
        share_layers(lone)
