import keras
import numpy as np
import pytest

from tests.sequence_models import MODELS
from tests.sequence_models import VOCABULARY
from tests.sequence_models import data_for
from tests.sequence_models import trained_model
from tfcompress.callbacks import MagnitudePruning
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.pruning import ConstantSparsity
from tfcompress.pruning import sparsity_report
from tfcompress.pruning.targets import all_prunable_weights

L = keras.layers


def _prunable(model):
    return {w.path: w for w in all_prunable_weights(model)}


def test_embedding_and_cell_kernels_are_prunable():
    model = MODELS["embedding_lstm"]()
    weights = _prunable(model)
    assert list(weights) == [
        "embedding/embeddings",
        "lstm/lstm_cell",
        "lstm/lstm_cell/recurrent_kernel",
        "logits",
    ]
    # An embedding table has no input-channel axis for N:M groups; both
    # cell kernels reduce over axis 0 of (inputs or units, 4 * units).
    assert weights["embedding/embeddings"].input_channel_axis is None
    assert weights["lstm/lstm_cell"].variable.shape == (8, 64)
    assert weights["lstm/lstm_cell"].input_channel_axis == 0
    recurrent = weights["lstm/lstm_cell/recurrent_kernel"]
    assert recurrent.variable.shape == (16, 64)
    assert recurrent.input_channel_axis == 0


def test_gru_simple_rnn_and_bidirectional_cells_are_found():
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            L.Embedding(VOCABULARY, 4, name="embedding"),
            L.Bidirectional(
                L.GRU(3, return_sequences=True, name="gru"),
                name="bidirectional",
            ),
            L.SimpleRNN(2, name="simple_rnn"),
        ]
    )
    paths = list(_prunable(model))
    assert paths == [
        "embedding/embeddings",
        "bidirectional/forward_gru/gru_cell",
        "bidirectional/forward_gru/gru_cell/recurrent_kernel",
        "bidirectional/backward_gru/gru_cell",
        "bidirectional/backward_gru/gru_cell/recurrent_kernel",
        "simple_rnn/simple_rnn_cell",
        "simple_rnn/simple_rnn_cell/recurrent_kernel",
    ]


@pytest.fixture(scope="module")
def pruned_text_model():
    """The Embedding + LSTM classifier, pruned to 80% while fine-tuned."""
    model = trained_model("embedding_lstm")
    x, y = data_for("embedding_lstm", 300, seed=3)
    # Fine-tuning starts where training stopped; prune then, and every 10
    # steps after.
    step = int(model.optimizer.iterations.numpy())
    pruning = MagnitudePruning(
        ConstantSparsity(0.8, begin_step=step, frequency=10)
    )
    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[pruning])
    return model, pruning


def test_magnitude_pruning_reaches_embedding_and_lstm_kernels(
    pruned_text_model,
):
    model, pruning = pruned_text_model
    assert pruning.pruned == [
        "embedding/embeddings",
        "lstm/lstm_cell",
        "lstm/lstm_cell/recurrent_kernel",
        "logits",
    ]
    report = sparsity_report(model)
    for kernel in report.kernels:
        # Exactly round(0.8 * size) zeros in each.
        assert kernel.zeros == round(0.8 * kernel.size), kernel.path
    assert report["embedding/embeddings"].layer_class == "Embedding"
    assert report["lstm/lstm_cell/recurrent_kernel"].layer_class == "LSTMCell"
    assert report.sparsity == pytest.approx(0.8, abs=1e-3)


def test_pruned_model_still_learns_exports_and_verifies(
    pruned_text_model, tmp_path
):
    model, _ = pruned_text_model
    x_test, y_test = data_for("embedding_lstm", 200, seed=2)
    predictions = np.argmax(model.predict(x_test, verbose=0), -1)
    # Measured: 100% before and after pruning.
    assert np.mean(predictions == y_test) >= 0.9
    export = to_tflite(model, tmp_path / "pruned.tflite")
    verify(model, export, x_test).assert_parity(
        min_top1_agreement=1.0, max_relative_error=1e-4
    )
    dense = to_tflite(
        trained_model("embedding_lstm"), tmp_path / "dense.tflite"
    )
    # The zeros stay in the file: same size, smaller once compressed
    # (measured: 63% of the unpruned file's gzipped size).
    assert export.size_bytes == dense.size_bytes
    assert export.gzipped_size_bytes < 0.8 * dense.gzipped_size_bytes


def test_m_by_n_prunes_cell_kernels_and_skips_the_embedding():
    keras.utils.set_random_seed(0)
    model = MODELS["embedding_lstm"]()
    model.compile(
        keras.optimizers.SGD(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = data_for("embedding_lstm", 32)
    pruning = MagnitudePruning(
        ConstantSparsity(0.5, begin_step=0), sparsity_m_by_n=(2, 4)
    )
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[pruning])
    assert ("embedding/embeddings", "no input-channel axis for N:M") in (
        pruning.skipped
    )
    for path in ("lstm/lstm_cell", "lstm/lstm_cell/recurrent_kernel"):
        kernel = _prunable(model)[path].variable.numpy()
        # 2 zeros in every 4 consecutive entries along the input axis.
        groups = kernel.reshape(-1, 4, kernel.shape[-1])
        assert np.all(np.sum(groups == 0, axis=1) == 2), path
