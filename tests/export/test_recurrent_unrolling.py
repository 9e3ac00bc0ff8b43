import keras
import numpy as np
import pytest

from tests.sequence_models import MODELS
from tests.sequence_models import TIMESTEPS
from tests.sequence_models import VOCABULARY
from tests.sequence_models import data_for
from tests.sequence_models import text_data
from tests.sequence_models import trained_model
from tfcompress.export import LiteRTModel
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.export.recurrent_unrolling import layers_to_unroll
from tfcompress.export.recurrent_unrolling import unrolled_recurrent_layers
from tfcompress.quantization import quantize_model

L = keras.layers
MODES = ("none", "dynamic", "int8")
# Ops a plain LiteRT build lacks, or the loop unrolling replaces.
LOOP_OPS = ("WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM")
# Timesteps times directions: 11 for the GRU after the strided Conv1D.
HYBRID_OPS = {
    "embedding_lstm": TIMESTEPS,
    "embedding_gru": TIMESTEPS,
    "bidirectional_lstm": 2 * TIMESTEPS,
    "conv1d_gru": 11,
}


@pytest.fixture(scope="module")
def models():
    """The four models of `MODELS`, trained once, on demand."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = trained_model(name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def exports(models, tmp_path_factory):
    """`(model, export, x_test)` per model and mode, made once, on demand."""
    directory = tmp_path_factory.mktemp("recurrent")
    cache = {}

    def get(name, mode):
        if (name, mode) not in cache:
            model = models(name)
            x_calibration, _ = data_for(name, 200, seed=1)
            x_test, _ = data_for(name, 200, seed=2)
            export = to_tflite(
                model,
                directory / f"{name}_{mode}.tflite",
                quantization=mode,
                data=x_calibration if mode == "int8" else None,
                verbose=False,
            )
            cache[name, mode] = (model, export, x_test)
        return cache[name, mode]

    return get


def _non_builtin_ops(path):
    return [
        op
        for op in inspect_tflite(path).op_counts
        if op.startswith("Flex") or op == "CUSTOM" or op in LOOP_OPS
    ]


@pytest.mark.parametrize("name", list(MODELS))
def test_float_export_is_builtin_and_exact(exports, name):
    model, export, x_test = exports(name, "none")
    assert _non_builtin_ops(export) == []
    report = verify(model, export, x_test)
    # Measured: 100% agreement, relative error about 8e-8 for all four.
    report.assert_parity(min_top1_agreement=1.0, max_relative_error=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_dynamic_range_export(exports, name):
    model, export, x_test = exports(name, "dynamic")
    assert _non_builtin_ops(export) == []
    precision = export.precision
    # The recurrent kernels (>= 1024 entries) are stored once in int8 and
    # read by one hybrid FULLY_CONNECTED per timestep (and direction); the
    # converter leaves smaller tensors in float.
    hybrid = [row for row in precision.rows if row.compute == "hybrid"]
    assert len(hybrid) == HYBRID_OPS[name]
    assert {row.op for row in hybrid} == {"FULLY_CONNECTED"}
    assert precision.weight_bytes_by_dtype["int8"] > 0
    report = verify(model, export, x_test)
    # Measured: 100% agreement, relative error 0.03% to 0.13%.
    report.assert_parity(min_top1_agreement=0.99, max_relative_error=0.01)


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_export_is_all_integer_and_agrees(exports, name):
    model, export, x_test = exports(name, "int8")
    assert _non_builtin_ops(export) == []
    precision = export.precision
    # Every weighted op, the unrolled recurrent steps included, is integer.
    assert precision.num_integer_ops == precision.num_weighted_ops
    assert precision.unrequested_float_ops == ()
    report = verify(model, export, x_test)
    # Measured: 100% agreement, relative error 0.5% to 1.0%.
    report.assert_parity(min_top1_agreement=0.99, max_relative_error=0.05)


def test_each_timestep_is_a_cell_step(exports):
    _, export, _ = exports("embedding_lstm", "none")
    ops = inspect_tflite(export).op_counts
    # Input and recurrent kernel of each step, and the Dense.
    assert ops["FULLY_CONNECTED"] == 2 * TIMESTEPS + 1
    assert ops["GATHER"] == 1  # The Embedding.


def test_the_model_is_left_as_it_was(models, tmp_path):
    model = models("bidirectional_lstm")
    config = model.get_config()
    weights = [w.copy() for w in model.get_weights()]
    x_calibration, _ = data_for("bidirectional_lstm", 20)
    to_tflite(
        model, tmp_path / "model.tflite", quantization="int8",
        data=x_calibration, verbose=False,
    )
    assert model.get_config() == config
    bidirectional = model.layers[1]
    assert not bidirectional.forward_layer.unroll
    assert not bidirectional.backward_layer.unroll
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_layers_to_unroll_finds_nested_and_wrapped_layers():
    inner = keras.Sequential(
        [L.LSTM(4, return_sequences=True, name="inner_lstm"), L.GRU(3)],
        name="inner",
    )
    inputs = keras.Input((TIMESTEPS,), dtype="int32")
    x = L.Embedding(VOCABULARY, 4)(inputs)
    x = L.Bidirectional(L.SimpleRNN(2, return_sequences=True))(x)
    outputs = L.Dense(2)(inner(x))
    model = keras.Model(inputs, outputs)
    names = [layer.name for layer in layers_to_unroll(model)]
    assert len(names) == 4
    assert "inner_lstm" in names
    # An already unrolled layer is left alone.
    unrolled = keras.Sequential(
        [keras.Input((5, 2)), L.LSTM(3, unroll=True), L.Dense(2)]
    )
    assert layers_to_unroll(unrolled) == []


def test_masked_sequences(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS,), dtype="int32"),
            L.Embedding(VOCABULARY, 8, mask_zero=True),
            L.LSTM(12),
            L.Dense(3),
        ]
    )
    x, _ = text_data(64)
    lengths = np.random.default_rng(0).integers(3, TIMESTEPS, len(x))
    x[np.arange(TIMESTEPS)[None, :] >= lengths[:, None]] = 0  # Padding.
    export = to_tflite(model, tmp_path / "masked.tflite")
    assert _non_builtin_ops(export) == []
    verify(model, export, x).assert_parity(
        min_top1_agreement=1.0, max_relative_error=1e-4
    )


def test_no_state_is_carried_between_calls(exports):
    model, export, x_test = exports("embedding_gru", "none")
    litert_model = LiteRTModel(export)
    first = litert_model.predict(x_test[:1])
    litert_model.predict(x_test[1:50])
    again = litert_model.predict(x_test[:1])
    np.testing.assert_array_equal(first, again)


def test_unknown_timesteps_raise_and_write_nothing(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCABULARY, 4),
            L.GRU(4, name="gru"),
            L.Dense(2),
        ],
        name="variable_length",
    )
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="fixed number of timesteps") as info:
        to_tflite(model, path)
    message = str(info.value)
    assert "GRU 'gru'" in message and "'variable_length'" in message
    assert "select_tf_ops=True" in message
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_unknown_timesteps_found_while_tracing_raise(tmp_path):
    class Encoder(L.Layer):
        """A layer calling an RNN in its `call`: the RNN's input shape is
        only known once the export traces the model."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.rnn = L.SimpleRNN(4)

        def call(self, x):
            return self.rnn(x)

    encoder = Encoder()
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCABULARY, 4),
            encoder,
            L.Dense(2),
        ]
    )
    assert layers_to_unroll(model) == [encoder.rnn]
    with pytest.raises(ValueError, match="fixed number of timesteps"):
        to_tflite(model, tmp_path / "model.tflite")
    assert not encoder.rnn.unroll
    assert list(tmp_path.iterdir()) == []


def test_subclassed_model_with_known_timesteps(tmp_path):
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = L.Embedding(VOCABULARY, 4)
            self.rnn = L.SimpleRNN(4)
            self.head = L.Dense(2)

        def call(self, x):
            return self.head(self.rnn(self.embedding(x)))

    model = Classifier()
    x, _ = text_data(32)
    model(x[:2])
    export = to_tflite(model, tmp_path / "model.tflite")
    assert _non_builtin_ops(export) == []
    assert not model.rnn.unroll
    verify(model, export, x).assert_parity(
        min_top1_agreement=1.0, max_relative_error=1e-4
    )


def test_select_tf_ops_keeps_the_loop_for_unknown_timesteps(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCABULARY, 4),
            L.LSTM(4),
            L.Dense(2),
        ]
    )
    assert layers_to_unroll(model, select_tf_ops=True) == []
    export = to_tflite(model, tmp_path / "flex.tflite", select_tf_ops=True)
    ops = inspect_tflite(export).op_counts
    assert "WHILE" in ops
    assert any(op.startswith("Flex") for op in ops)


def test_unrolled_recurrent_layers_restores_on_error():
    model = MODELS["embedding_lstm"]()
    lstm = model.get_layer("lstm")
    with pytest.raises(RuntimeError, match="boom"):
        with unrolled_recurrent_layers(model) as layers:
            assert layers == [lstm] and lstm.unroll
            raise RuntimeError("boom")
    assert not lstm.unroll


def test_quantize_model_leaves_gru_float_and_the_file_says_so(
    models, tmp_path
):
    model = models("embedding_gru")
    qat_model, report = quantize_model(model)
    reasons = dict(report.float_layers)
    # GRU has no quantization-aware rewrite (LSTM has: see
    # tests/quantization/test_quantize_recurrent.py).
    assert "gru" in reasons and "GRU" in reasons["gru"]
    x_test, _ = data_for("embedding_gru", 100, seed=2)
    with pytest.warns(UserWarning, match="compute in float"):
        export = to_tflite(
            qat_model, tmp_path / "qat.tflite", quantization="int8",
            verbose=False,
        )
    float_layers = {row.name for row in export.precision.unrequested_float_ops}
    assert float_layers == {"gru"}
    verify(qat_model, export, x_test).assert_parity(min_top1_agreement=0.99)
