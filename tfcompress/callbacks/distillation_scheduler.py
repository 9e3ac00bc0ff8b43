"""Annealing a Distiller's temperature and student loss weight during `fit`."""

import math
import numbers

import keras

from tfcompress.distillation import Distiller

UPDATE_FREQS = ("epoch", "step")
_CHECKS = {
    "temperature": ("> 0", lambda value: value > 0.0),
    "student_loss_weight": ("in [0, 1]", lambda value: 0.0 <= value <= 1.0),
}


class DistillationScheduler(keras.callbacks.Callback):
    """Sets a Distiller's temperature and student loss weight from schedules.

    Add it to `fit` of a `tfcompress.distillation.Distiller`, which keeps
    both values in variables read by the compiled train step: each new
    value applies from the next step on, without retracing. (Keras's own
    `keras.distillation.Distiller` keeps them as Python floats frozen into
    its traced step, so it is refused.)

    With `update_freq="epoch"`, each schedule is called with the epoch index
    (0, 1, ...) at the start of every epoch; with `"step"`, with the
    optimizer's step count (`model.optimizer.iterations`, so a resumed run
    continues the schedule) before every batch (before every execution
    with `steps_per_execution > 1`). The values used in an epoch's last
    step are added to the epoch logs as `temperature` and
    `student_loss_weight`, so they land in `fit`'s history and TensorBoard.

    `alpha`, the weight of the soft targets in Hinton et al. and in
    `tfcompress.distillation.distillation_loss`, is `1 - student_loss_weight`.

    Args:
        temperature: `None` to leave the temperature alone, a number `> 0`,
            or a schedule: any callable `schedule(step) -> number`, such as
            `tfcompress.distillation.LinearSchedule`, `CosineSchedule` or a
            `keras.optimizers.schedules.LearningRateSchedule`. Sets the
            temperature of every `LogitsDistillation` loss.
        student_loss_weight: `None`, a number in `[0, 1]`, or a schedule of
            such numbers.
        update_freq: `"epoch"` (default) or `"step"`: what the schedules
            count, and how often the values are set.
        verbose: Print the values whenever they change. Defaults to
            `False`.

    Example:

    ```python
    scheduler = tfcompress.callbacks.DistillationScheduler(
        temperature=tfcompress.distillation.LinearSchedule(8.0, 2.0, 10),
        student_loss_weight=tfcompress.distillation.CosineSchedule(
            0.0, 0.5, 10))
    history = distiller.fit(x, y, epochs=10, callbacks=[scheduler])
    history.history["temperature"]  # [8.0, 7.33, ...]
    ```
    """

    def __init__(
        self,
        temperature=None,
        student_loss_weight=None,
        update_freq="epoch",
        verbose=False,
    ):
        super().__init__()
        if temperature is None and student_loss_weight is None:
            raise ValueError(
                "Pass a `temperature` or a `student_loss_weight` schedule (or "
                "both). Received: temperature=None, student_loss_weight=None"
            )
        self.schedules = {}
        for name, schedule in (
            ("temperature", temperature),
            ("student_loss_weight", student_loss_weight),
        ):
            if schedule is None:
                continue
            if isinstance(schedule, numbers.Real) and not isinstance(
                schedule, bool
            ):
                _check_value(name, schedule)
            elif not callable(schedule):
                raise ValueError(
                    f"`{name}` must be None, a number or a schedule "
                    "(a callable `schedule(step) -> number`, such as "
                    "tfcompress.distillation.LinearSchedule). "
                    f"Received: {name}={schedule!r}"
                )
            self.schedules[name] = schedule
        if update_freq not in UPDATE_FREQS:
            raise ValueError(
                f"`update_freq` must be one of {UPDATE_FREQS}. "
                f"Received: update_freq={update_freq!r}"
            )
        self.temperature = temperature
        self.student_loss_weight = student_loss_weight
        self.update_freq = update_freq
        self.verbose = verbose
        self._values = {}

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, Distiller):
            raise ValueError(
                "DistillationScheduler needs a tfcompress.distillation."
                "Distiller, whose temperature and student loss weight are "
                "variables that the compiled train step reads. (Keras's "
                "keras.distillation.Distiller keeps them as Python floats, "
                "frozen in the traced step.) Received: a model of type "
                f"{type(self.model).__module__}.{type(self.model).__name__}"
            )
        if "temperature" in self.schedules and self.model.temperature is None:
            raise ValueError(
                "A `temperature` schedule needs a LogitsDistillation loss "
                "in the Distiller. Received: distillation_losses="
                f"{self.model.distillation_losses!r}"
            )
        if self.update_freq == "step" and self.model.optimizer is None:
            raise ValueError(
                'update_freq="step" counts steps with the model\'s optimizer: '
                "call `compile(optimizer=...)` before `fit`."
            )
        self._values = {}

    def on_epoch_begin(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self._apply(epoch, "epoch")

    def on_train_batch_begin(self, batch, logs=None):
        if self.update_freq == "step":
            step = int(
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            )
            self._apply(step, "step")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._values)

    def _apply(self, step, unit):
        values = {
            name: self._evaluate(name, schedule, step, unit)
            for name, schedule in self.schedules.items()
        }
        if values == self._values:
            return
        for name, value in values.items():
            setattr(self.model, name, value)
        if self.verbose:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"DistillationScheduler: {unit} {step}: {shown}")
        self._values = values

    def _evaluate(self, name, schedule, step, unit):
        if callable(schedule):
            value = schedule(step)
            value = float(keras.ops.convert_to_numpy(value))
        else:
            value = float(schedule)
        _check_value(
            name, value, f"The `{name}` schedule returned {value!r} at "
            f"{unit} {step}: "
        )
        return value


def _check_value(name, value, prefix=""):
    accepted, valid = _CHECKS[name]
    if not (math.isfinite(value) and valid(value)):
        raise ValueError(
            f"{prefix}`{name}` must be a number {accepted}. "
            f"Received: {name}={value!r}"
        )
