"""A layer the tools have never seen, registered once, known to every tool.

`MyDense` below is a user's own layer (a dense layer written from
scratch, not a `keras.layers.Dense` subclass). The single `register_layer`
call after it is all the support it gets; each test then runs one tool on a model holding it: the profiler,
magnitude pruning, structured channel pruning, quantization-aware training
exported to int8 and checked in LiteRT, and SVD decomposition.
"""

import math

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.decomposition.svd import SVDMethod
from tfcompress.pruning import channel_rules
from tfcompress.quantization import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class MyDense(keras.layers.Layer):
    """`activation(x @ kernel + bias)`."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = True

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units)
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer="zeros"
        )

    def call(self, inputs):
        return self.activation(keras.ops.matmul(inputs, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
        }


def register_my_dense():
    """Everything tfcompress needs to know about MyDense, in one place."""
    tfcompress.register_layer(
        MyDense,
        prunable_kernels=["kernel"],
        macs=lambda layer, inputs, output: math.prod(output) * inputs[0][-1],
        channels=channel_rules.producer(size_argument="units"),
        quantize=QuantizeRule.rounded_kernels({"kernel": -1}),
        # Its kernel, bias and activation are what SVD of a Dense reads.
        decompositions={"svd": SVDMethod()},
    )


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_my_dense()
    yield
    # The registry is global: other tests' messages list what it knows.
    tfcompress.graph.unregister_layer(MyDense)


def _model():
    inputs = keras.Input((64,))
    x = MyDense(32, activation="relu", name="mine")(inputs)
    outputs = keras.layers.Dense(10, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="module")
def data(digits):
    x_train, y_train, x_test, y_test = digits
    flat = lambda x: x.reshape(len(x), -1).astype("float32")  # noqa: E731
    return flat(x_train), y_train, flat(x_test), y_test


@pytest.fixture(scope="module")
def trained(data):
    keras.utils.set_random_seed(1)
    x, y, _, _ = data
    model = _model()
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model


def test_profile_counts_its_macs(trained):
    report = tfcompress.profile(trained)
    assert report.row("mine").macs == 64 * 32
    assert report.unknown_macs == []
    assert report.macs == 64 * 32 + 32 * 10


def test_magnitude_pruning_sparsifies_its_kernel(data):
    x, y, _, _ = data
    model = _model()
    pruning = tfcompress.callbacks.MagnitudePruning(
        tfcompress.pruning.ConstantSparsity(0.75, begin_step=0), filters=["mine"]
    )
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[pruning])
    report = tfcompress.pruning.sparsity_report(model)
    assert report["mine"].layer_class == "MyDense"
    assert report["mine"].sparsity == pytest.approx(0.75, abs=1e-3)
    assert report["logits"].sparsity == 0.0


def test_prune_channels_removes_its_units(trained, data):
    _, _, x_test, _ = data
    pruned, report = tfcompress.pruning.prune_channels(trained, sparsity=0.5)
    row = report.row("mine")
    assert (row.status, row.channels_before, row.channels_after) == (
        "pruned",
        32,
        16,
    )
    assert pruned.get_layer("mine").units == 16
    assert tuple(pruned.get_layer("logits").kernel.shape) == (16, 10)
    # The pruned model computes the original with the removed units dropped.
    kept = np.asarray(row.kept_indices)
    hidden = keras.Model(trained.input, trained.get_layer("mine").output)
    logits = trained.get_layer("logits")
    expected = (
        hidden.predict(x_test, verbose=0)[:, kept]
        @ keras.ops.convert_to_numpy(logits.kernel)[kept]
        + keras.ops.convert_to_numpy(logits.bias)
    )
    np.testing.assert_allclose(
        pruned.predict(x_test, verbose=0), expected, rtol=1e-4, atol=1e-4
    )
    assert report.macs_after == 64 * 16 + 16 * 10


def test_qat_rounds_its_kernel_and_exports_int8_with_parity(
    trained, data, tmp_path
):
    x, y, x_test, _ = data
    qat_model, report = tfcompress.quantization.quantize_model(
        trained, data=x[:256]
    )
    assert report.quantized == ("mine", "logits")
    assert report.float_layers == ()
    wrapper = qat_model.get_layer("mine")
    assert isinstance(wrapper, tfcompress.quantization.RoundedKernels)
    # It computes with its kernel on the per-channel int8 grid.
    kernel = keras.ops.convert_to_numpy(wrapper.layer.kernel)
    scale = np.abs(kernel).max(axis=0) / 127
    rounded = np.round(kernel / scale) * scale
    probe = x_test[:8]
    np.testing.assert_allclose(
        wrapper(probe),
        np.maximum(probe @ rounded + keras.ops.convert_to_numpy(wrapper.layer.bias), 0),
        rtol=1e-5,
        atol=1e-5,
    )
    qat_model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    qat_model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "mine.tflite"
    tfcompress.to_tflite(qat_model, str(path), quantization="int8")
    inspection = tfcompress.export.inspect_tflite(str(path))
    fully_connected = [
        op for op in inspection.ops if op.name == "FULLY_CONNECTED"
    ]
    assert len(fully_connected) == 2
    for op in fully_connected:
        assert [t.dtype for t in op.inputs[:2]] == ["int8", "int8"]
    parity = tfcompress.export.verify(qat_model, str(path), x_test)
    assert parity.top1_agreement >= 0.99
    # It saves and loads with the model (safe mode), wrapper and all.
    saved = tmp_path / "qat.keras"
    qat_model.save(saved)
    loaded = keras.saving.load_model(saved, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x_test, verbose=0),
        qat_model.predict(x_test, verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_decompose_factorizes_it_with_svd(trained, data):
    _, _, x_test, _ = data
    new_model, report = tfcompress.decomposition.decompose(
        trained,
        method="svd",
        rank=8,
        filters=["mine"],
        data=x_test,
        verbose=False,
    )
    assert [(row.name, row.rank) for row in report.layers] == [("mine", 8)]
    factorized = new_model.get_layer("mine")
    assert type(factorized).__name__ == "LowRankDense"
    assert report.macs_after == (64 + 32) * 8 + 32 * 10
    # Its factors multiply to the best rank-8 approximation of the kernel.
    kernel = keras.ops.convert_to_numpy(trained.get_layer("mine").kernel)
    a, s, b = np.linalg.svd(kernel, full_matrices=False)
    best = (a[:, :8] * s[:8]) @ b[:8]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(factorized.full_kernel()),
        best,
        rtol=1e-4,
        atol=1e-4,
    )


def test_unregistered_it_is_unknown_to_every_tool(trained):
    tfcompress.graph.unregister_layer(MyDense)
    try:
        report = tfcompress.profile(trained)
        assert report.unknown_macs == ["mine"]
        _, channels = tfcompress.pruning.prune_channels(trained, sparsity=0.5)
        assert channels.row("mine").status == "left alone"
        _, quantization = tfcompress.quantization.quantize_model(trained)
        assert quantization.row("mine").status == "float"
        weights = tfcompress.pruning.targets.all_prunable_weights(trained)
        assert [weight.path for weight in weights] == ["logits"]
    finally:
        register_my_dense()
