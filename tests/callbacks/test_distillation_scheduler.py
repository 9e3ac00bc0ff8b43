"""`DistillationScheduler` on real `fit` runs: the scheduled values reach
the loss of the compiled step (checked against `distillation_loss` with the
learning rate at 0), by epoch and by step, without retracing."""

import keras
import numpy as np
import pytest

from tfcompress.callbacks import DistillationScheduler
from tfcompress.distillation import CosineSchedule
from tfcompress.distillation import Distiller
from tfcompress.distillation import LinearSchedule
from tfcompress.distillation import distillation_loss
from tests.distillation.conftest import LOSS
from tests.distillation.conftest import mlp


class CountingDistiller(Distiller):
    """Counts Python runs of `compute_loss`: once per trace when compiled."""

    traces = 0

    def compute_loss(self, *args, **kwargs):
        self.traces += 1
        return super().compute_loss(*args, **kwargs)


def frozen_distiller(cls=Distiller, **kwargs):
    """A Distiller whose student does not move (learning rate 0)."""
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    distiller = cls(
        teacher, student,
        keras.distillation.LogitsDistillation(
            3.0, loss=keras.losses.KLDivergence()),
        **kwargs,
    )
    distiller.compile(keras.optimizers.SGD(0.0), loss=LOSS)
    return distiller


def expected_loss(distiller, x, y, temperature, student_loss_weight):
    return float(distillation_loss(
        y, distiller.student(x), distiller.teacher(x), temperature,
        1.0 - student_loss_weight,
    ))


def test_epoch_schedules_reach_the_loss(digits):
    x, y, _, _ = digits
    x, y = x[:128], y[:128]
    distiller = frozen_distiller()
    scheduler = DistillationScheduler(
        temperature=LinearSchedule(4.0, 1.0, 2),
        student_loss_weight=LinearSchedule(0.2, 0.8, 2),
    )
    history = distiller.fit(x, y, epochs=3, batch_size=128, verbose=0,
                            callbacks=[scheduler])
    assert history.history["temperature"] == [4.0, 2.5, 1.0]
    np.testing.assert_allclose(history.history["student_loss_weight"],
                               [0.2, 0.5, 0.8])
    for epoch in range(3):
        temperature = history.history["temperature"][epoch]
        weight = history.history["student_loss_weight"][epoch]
        np.testing.assert_allclose(
            history.history["loss"][epoch],
            expected_loss(distiller, x, y, temperature, weight),
            rtol=1e-5,
        )
    assert distiller.temperature == 1.0
    assert distiller.student_loss_weight == pytest.approx(0.8)


def test_step_schedules_change_every_step_without_retracing(digits):
    x, y, _, _ = digits
    x, y = x[:128], y[:128]
    distiller = frozen_distiller(CountingDistiller, student_loss_weight=0.5)
    temperature = CosineSchedule(5.0, 1.0, 8)
    scheduler = DistillationScheduler(temperature=temperature,
                                      update_freq="step")
    history = distiller.fit(x, y, epochs=3, batch_size=32, verbose=0,
                            shuffle=False, callbacks=[scheduler])
    assert distiller.traces == 1  # 12 steps, 9 temperatures, one trace
    # The epoch loss is the mean of its 4 steps, each at its own T.
    for epoch in range(3):
        steps = range(4 * epoch, 4 * epoch + 4)
        expected = np.mean([
            expected_loss(distiller, x[32 * b:32 * b + 32],
                          y[32 * b:32 * b + 32], temperature(step), 0.5)
            for b, step in enumerate(steps)
        ])
        np.testing.assert_allclose(history.history["loss"][epoch], expected,
                                   rtol=1e-5)
        assert history.history["temperature"][epoch] == temperature(
            steps[-1])
    assert "student_loss_weight" not in history.history


def test_constants_callables_and_keras_schedules(digits):
    x, y, _, _ = digits
    distiller = frozen_distiller()
    scheduler = DistillationScheduler(
        temperature=keras.optimizers.schedules.PolynomialDecay(4.0, 2, 2.0),
        student_loss_weight=lambda epoch: 1.0 / (epoch + 1),
    )
    history = distiller.fit(x[:64], y[:64], epochs=3, batch_size=64,
                            verbose=0, callbacks=[scheduler])
    np.testing.assert_allclose(history.history["temperature"],
                               [4.0, 3.0, 2.0])
    np.testing.assert_allclose(history.history["student_loss_weight"],
                               [1.0, 0.5, 1 / 3])
    # Reused with constants on a second fit: state reset at train begin.
    constant = DistillationScheduler(temperature=2, student_loss_weight=0)
    history = distiller.fit(x[:64], y[:64], epochs=1, batch_size=64,
                            verbose=0, callbacks=[constant])
    assert history.history["temperature"] == [2.0]
    assert history.history["student_loss_weight"] == [0.0]
    np.testing.assert_allclose(
        history.history["loss"][0],
        expected_loss(distiller, x[:64], y[:64], 2.0, 0.0), rtol=1e-5,
    )


def test_training_follows_the_schedule(digits):
    x, y, x_test, y_test = digits
    distiller = frozen_distiller()
    distiller.optimizer.learning_rate.assign(1e-2)
    teacher_before = [w.numpy().copy() for w in distiller.teacher.weights]
    scheduler = DistillationScheduler(
        student_loss_weight=LinearSchedule(0.0, 1.0, 3), verbose=True)
    history = distiller.fit(x[:512], y[:512], epochs=4, batch_size=64,
                            verbose=0, callbacks=[scheduler])
    assert history.history["student_loss_weight"] == pytest.approx(
        [0.0, 1 / 3, 2 / 3, 1.0])
    for before, after in zip(teacher_before, distiller.teacher.weights):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Pass a `temperature` or a `student_loss_weight`"),
        ({"temperature": 0.0}, "`temperature` must be a number > 0. "
                               "Received: temperature=0.0"),
        ({"student_loss_weight": 1.5}, r"`student_loss_weight` must be a "
         r"number in \[0, 1\]. Received: student_loss_weight=1.5"),
        ({"temperature": "linear"}, "must be None, a number or a schedule"),
        ({"temperature": 2.0, "update_freq": "batch"},
         r"`update_freq` must be one of \('epoch', 'step'\). "
         "Received: update_freq='batch'"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistillationScheduler(**kwargs)


def test_bad_models_and_schedule_values_raise_clear_errors(digits):
    x, y, _, _ = digits
    x, y = x[:32], y[:32]
    scheduler = DistillationScheduler(temperature=LinearSchedule(2.0, 0.0, 2))
    stock = frozen_distiller(keras.distillation.Distiller)
    with pytest.raises(ValueError, match=r"frozen in the traced step.\) "
                       "Received: a model of type keras.src.distillation."
                       "distiller.Distiller"):
        stock.fit(x, y, verbose=0, callbacks=[scheduler])
    plain = mlp(8, "plain")
    plain.compile("sgd", LOSS)
    with pytest.raises(ValueError, match="model of type keras.src.models.sequential.Sequential"):
        plain.fit(x, y, verbose=0, callbacks=[scheduler])
    features = Distiller(mlp(32, "teacher"), mlp(8, "student"),
                         keras.distillation.FeatureDistillation("mse"))
    features.compile("sgd", loss=LOSS)
    with pytest.raises(ValueError, match="needs a LogitsDistillation loss"):
        features.fit(x, y, verbose=0, callbacks=[scheduler])
    distiller = frozen_distiller()
    with pytest.raises(
        ValueError,
        match="The `temperature` schedule returned 0.0 at epoch 2: "
              "`temperature` must be a number > 0",
    ):
        distiller.fit(x, y, epochs=3, verbose=0, callbacks=[scheduler])
