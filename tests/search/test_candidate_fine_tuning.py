"""The learning rate of each candidate's fine-tune in a search."""

import math

import keras
import numpy as np
import pytest

from tfcompress.search import Budget
from tfcompress.search import search_channel_sparsity
from tfcompress.search.candidate_fine_tuning import fine_tune

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class RecordRate(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def tiny_model(learning_rate):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(learning_rate), LOSS)
    return model


def rates_of_fine_tune(monkeypatch, model, epochs, learning_rate_decay):
    """The learning rate of each batch of `fine_tune(model, ...)` on 32
    examples in batches of 8."""
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    record = RecordRate()
    original_fit = model.fit

    def fit_recording(*args, callbacks=(), **kwargs):
        # The recorder runs after CosineToZero has set the batch's rate.
        return original_fit(*args, callbacks=[*callbacks, record], **kwargs)

    monkeypatch.setattr(model, "fit", fit_recording)
    fine_tune(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=8,
        seed=0,
        learning_rate_decay=learning_rate_decay,
    )
    return record.rates


def test_cosine_decays_the_compiled_rate_to_zero_and_restores_it(monkeypatch):
    model = tiny_model(0.1)
    rates = rates_of_fine_tune(monkeypatch, model, 2, "cosine")
    expected = [0.05 * (1 + math.cos(math.pi * step / 8)) for step in range(8)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)

    rates = rates_of_fine_tune(monkeypatch, tiny_model(0.1), 1, "none")
    np.testing.assert_allclose(rates, [0.1] * 4, rtol=1e-6)


def test_cosine_refuses_a_compiled_schedule():
    model = tiny_model(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int32")
    with pytest.raises(ValueError, match="learning-rate schedule"):
        fine_tune(model, x, y, epochs=1, batch_size=8, seed=0, learning_rate_decay="cosine")


def test_search_with_cosine_fine_tunes(trained):
    model, data, validation = trained
    pruned, report = search_channel_sparsity(
        model,
        budget=Budget(macs_ratio=0.5),
        data=data,
        validation_data=validation,
        trials=1,
        learning_rate_decay="cosine",
        verbose=0,
    )
    assert 0.4 < report.rows[0].macs_ratio <= 0.5
    # The returned model keeps the compiled rate for the user's own fit.
    assert float(pruned.optimizer.learning_rate) == pytest.approx(3e-3)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-3)
    scheduled = keras.models.clone_model(model)
    scheduled.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)),
        LOSS,
    )
    with pytest.raises(ValueError, match="compiled with a learning-rate schedule"):
        search_channel_sparsity(
            scheduled,
            budget=Budget(macs_ratio=0.5),
            data=data,
            validation_data=validation,
            learning_rate_decay="cosine",
        )
    with pytest.raises(ValueError, match="`learning_rate_decay` must be one of"):
        search_channel_sparsity(
            model,
            budget=Budget(macs_ratio=0.5),
            data=data,
            validation_data=validation,
            learning_rate_decay="linear",
        )
