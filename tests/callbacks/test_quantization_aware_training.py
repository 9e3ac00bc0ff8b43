import textwrap

import keras
import numpy as np
import pytest

import tfcompress
from tests.quantization.conftest import LOSS
from tests.quantization.conftest import export_qat
from tests.quantization.conftest import float_ops
from tests.two_cpus import run_on_two_cpus
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.quantization import ActivationQuantizer
from tfcompress.quantization import quantize_model
from tfcompress.quantization import simulated_bits
from tfcompress.quantization import with_bit_widths


def _qat_cnn(digits, **kwargs):
    keras.utils.set_random_seed(0)
    model = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)
    qat, _ = quantize_model(model, **kwargs)
    qat.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
    return qat


def test_delay_freezes_and_logs_follow_the_steps(digits):
    x, y = digits[0][:512], digits[1][:512]  # 8 steps per epoch.
    qat = _qat_cnn(digits)
    states = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            states.append(
                (
                    float(qat.get_layer("stem").quantize_enabled.numpy()),
                    float(qat.get_layer("stem_relu_quant").quantize_enabled),
                    float(qat.get_layer("stem_bn").frozen.numpy()),
                    float(qat.get_layer("stem_relu_quant").range_frozen),
                )
            )

    history = qat.fit(
        x,
        y,
        epochs=2,
        batch_size=64,
        verbose=0,
        callbacks=[
            QuantizationAwareTraining(
                quantize_delay=3, freeze_bn_after=10, freeze_ranges_after=12
            ),
            Probe(),
        ],
    )
    # Batch i runs at step i: rounding from step 3, BN frozen from step 10,
    # ranges from step 12.
    assert [s[0] for s in states] == [0.0] * 3 + [1.0] * 13
    assert [s[1] for s in states] == [0.0] * 3 + [1.0] * 13
    assert [s[2] for s in states] == [0.0] * 10 + [1.0] * 6
    assert [s[3] for s in states] == [0.0] * 12 + [1.0] * 4
    assert history.history["qat_quantizing"] == [1.0, 1.0]
    assert history.history["qat_bn_frozen"] == [0.0, 1.0]
    assert history.history["qat_ranges_frozen"] == [0.0, 1.0]


def test_frozen_statistics_and_ranges_stop_moving(digits):
    x, y = digits[0][:256], digits[1][:256]
    qat = _qat_cnn(digits)
    callback = QuantizationAwareTraining(freeze_bn_after=0, freeze_ranges_after=0)
    # One step to initialize the ranges, frozen from the start after that.
    qat.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0)
    bn = qat.get_layer("block1_expand_bn")
    quantizer = qat.get_layer("block1_project_bn_quant")
    mean = bn.moving_mean.numpy().copy()
    gamma = bn.gamma.numpy().copy()
    range_max = float(quantizer.range_max.numpy())
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)
    assert float(quantizer.range_max.numpy()) == range_max
    # gamma still trains.
    assert not np.allclose(bn.gamma.numpy(), gamma)


def test_ranges_are_learned_as_moving_averages():
    quantizer = ActivationQuantizer(ema_decay=0.9)
    first = np.linspace(-1.0, 3.0, 50, dtype="float32")
    quantizer(first, training=True)
    assert float(quantizer.range_min.numpy()) == pytest.approx(-1.0)
    assert float(quantizer.range_max.numpy()) == pytest.approx(3.0)
    second = np.linspace(-2.0, 5.0, 50, dtype="float32")
    outputs = quantizer(second, training=True).numpy()
    assert float(quantizer.range_min.numpy()) == pytest.approx(-1.1)
    assert float(quantizer.range_max.numpy()) == pytest.approx(3.2)
    # Values are clipped to the range and rounded to 256 levels of it.
    assert outputs.max() == pytest.approx(3.2, abs=0.02)
    step = (3.2 + 1.1) / 255
    offsets = (outputs - outputs.min()) / step
    np.testing.assert_allclose(offsets, np.round(offsets), atol=1e-3)
    quantizer.quantize_enabled.assign(0.0)
    np.testing.assert_array_equal(quantizer(second, training=True), second)


def test_no_quantized_layer_is_a_clear_error(digits):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="found no quantized layer"):
        model.fit(
            np.zeros((4, 4)),
            np.zeros((4, 2)),
            verbose=0,
            callbacks=[QuantizationAwareTraining()],
        )
    with pytest.raises(ValueError, match="quantize_delay"):
        QuantizationAwareTraining(quantize_delay=-1)
    with pytest.raises(ValueError, match="freeze_bn_after"):
        QuantizationAwareTraining(freeze_bn_after=1.5)


def test_saves_loads_and_resumes_like_an_uninterrupted_run(digits, tmp_path):
    x, y = digits[0][:256], digits[1][:256]

    def callback():
        return QuantizationAwareTraining(quantize_delay=4, freeze_bn_after=6)

    keras.utils.set_random_seed(1)
    straight = _qat_cnn(digits)
    straight.set_weights(_qat_cnn(digits).get_weights())
    interrupted = _qat_cnn(digits)
    interrupted.set_weights(straight.get_weights())

    straight.fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0,
                 callbacks=[callback()])
    interrupted.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0,
                    callbacks=[callback()])
    path = tmp_path / "qat.keras"
    interrupted.save(path)
    resumed = keras.saving.load_model(path, safe_mode=True)
    assert int(resumed.optimizer.iterations.numpy()) == 4
    resumed.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0,
                callbacks=[callback()])
    assert float(resumed.get_layer("stem_bn").frozen.numpy()) == 1.0
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_low_bit_model_exports_through_its_8_bit_twin(digits, tmp_path):
    x, y, x_test, _ = digits
    qat = _qat_cnn(digits, weight_bits=4, activation_bits=6)
    qat.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert simulated_bits(qat) == ({4}, {6})
    twin = with_bit_widths(qat)
    assert simulated_bits(twin) == ({8}, {8})
    # Compiled like the trained model, with a fresh optimizer.
    assert twin.compiled and twin.optimizer is not qat.optimizer
    assert twin.get_compile_config() == qat.get_compile_config()
    assert simulated_bits(qat) == ({4}, {6})  # untouched
    # Same learned ranges, and 4-bit weights sit within half an 8-bit step.
    np.testing.assert_array_equal(
        twin.get_layer("stem_relu_quant").range_max.numpy(),
        qat.get_layer("stem_relu_quant").range_max.numpy(),
    )
    path = export_qat(twin, tmp_path / "twin.tflite")
    assert float_ops(path) == []
    assert verify(twin, path, x_test).top1_agreement >= 0.99
    # to_tflite goes through the twin itself.
    export = to_tflite(qat, tmp_path / "qat.tflite", quantization="int8")
    assert float_ops(export.path) == []
    assert verify(twin, export.path, x_test).top1_agreement >= 0.99
    with pytest.raises(ValueError, match="no quantization-aware layers"):
        with_bit_widths(tfcompress.models.small_mobilenet_v2((8, 8, 1), 10))


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tfcompress
    from tfcompress.callbacks import QuantizationAwareTraining
    from tfcompress.quantization import quantize_model

    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = tfcompress.datasets.load_digits()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)
        qat, _ = quantize_model(model, data=x[:128])
        qat.compile(
            keras.optimizers.Adam(3e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    qat.fit(x, y, epochs=3, batch_size=64, verbose=0,
            callbacks=[QuantizationAwareTraining(quantize_delay=5,
                                                 freeze_bn_after=40)])
    print("replicas", strategy.num_replicas_in_sync)
    print("accuracy", qat.evaluate(x_test, y_test, verbose=0)[1])
    print("bn_frozen", float(qat.get_layer("stem_bn").frozen.numpy()))
    print("range_max", float(qat.get_layer("stem_relu_quant").range_max.numpy()))
    """
)


def test_mirrored_strategy_over_two_cpus(tmp_path):
    lines = run_on_two_cpus(MIRRORED_SCRIPT, tmp_path)
    values = dict(line.split() for line in lines if " " in line)
    assert values["replicas"] == "2"
    assert float(values["accuracy"]) > 0.6  # learns, from scratch, 3 epochs
    assert values["bn_frozen"] == "1.0"
    # ReLU6 output range learned, within (0, 6].
    assert 0.5 < float(values["range_max"]) <= 6.0
