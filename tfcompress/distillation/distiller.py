"""Keras's Distiller, with a temperature and weight that can change in `fit`."""

import contextlib
import numbers

import keras

from tfcompress.distillation import teacher_cache

_LOSS_TRACKERS = (
    "student_loss_tracker",
    "distillation_loss_tracker",
    "total_loss_tracker",
)


class _NoTracking:
    """Stands in for a loss tracker while the parent's loss is evaluated."""

    def update_state(self, *args, **kwargs):
        pass


@keras.saving.register_keras_serializable(package="tfcompress")
class Distiller(keras.distillation.Distiller):
    """`keras.distillation.Distiller` whose temperature and weight are variables.

    The same model, arguments, losses and logs as Keras's Distiller, with
    two additions:

    1. `student_loss_weight` and the `temperature` of every
       `LogitsDistillation` loss are held in non-trainable variables that
       the compiled train step reads. Assigning `distiller.temperature` or
       `distiller.student_loss_weight` between steps therefore changes the
       loss of the very next step, without retracing or recompiling. Keras's
       own Distiller keeps both as Python floats, which its traced train
       step freezes at their first values (and it branches on
       `student_loss_weight` in Python). `tfcompress.callbacks.
       DistillationScheduler` anneals them during `fit`.
    2. It accepts the output of `cache_teacher_outputs` as `x`, and then
       reads the teacher's outputs from the data instead of running the
       teacher.

    How: the combined loss `w * student_loss + (1 - w) * distillation_loss`
    is linear in the weight `w`, so each step evaluates Keras's own
    `compute_loss` at `w = 1` (the student loss) and at `w = 0` (the
    distillation loss, with the temperature variables in place of the
    floats), then mixes the two with the variable. The numbers are those of
    Keras's Distiller at the same settings. Two consequences: both parts
    are always computed (the teacher runs even at `student_loss_weight=1`,
    unless its outputs are cached), and `fit` on `x` alone (no labels) gives
    a student loss of 0, so set `student_loss_weight=0` for it (and compile
    without metrics, which need labels).

    Under `tf.distribute`, as with Keras's Distiller, the `student_loss`,
    `distillation_loss` and `total_loss` logs are per-replica values that
    Keras's `Loss` objects have divided by the number of replicas; the
    `loss` log is the true loss.

    With `LogitsDistillation`, use `loss=keras.losses.KLDivergence()` (an
    instance): Keras then applies the softmax and the `T**2` factor of
    Hinton et al., which is `tfcompress.distillation.distillation_loss` with
    `alpha = 1 - student_loss_weight`. Its default, `loss="kl_divergence"`,
    resolves to a function that Keras applies to the scaled logits without
    a softmax; this class raises an error for it.

    Args:
        teacher: A trained `keras.Model`; frozen (`trainable=False`).
        student: The `keras.Model` to train.
        distillation_losses: A `keras.distillation.DistillationLoss`
            (`LogitsDistillation`, `FeatureDistillation`) or a list of them.
        distillation_loss_weights: Weights of the distillation losses, one
            per loss. Defaults to `None`: all `1.0`.
        student_loss_weight: Weight `w` of the supervised student loss, in
            `[0, 1]`; the distillation losses get `1 - w`. Defaults to
            `0.5`.
        name: Name of the model. Defaults to `"distiller"`.
        **kwargs: Passed to `keras.Model`.

    Attributes:
        teacher: The teacher model.
        student: The student model; use it alone after training.
        student_loss_weight: The current weight `w` (a float); assign a
            number in `[0, 1]` to change it.
        temperature: The temperature of the `LogitsDistillation` losses
            (the first one's if they differ; `None` without one); assign a
            number `> 0` to set all of them. (Assign it here: the loss
            objects' own `temperature` floats are not read in training.)

    Example:

    ```python
    distiller = tfcompress.distillation.Distiller(
        teacher, student,
        keras.distillation.LogitsDistillation(
            temperature=4.0, loss=keras.losses.KLDivergence()),
        student_loss_weight=0.1)
    distiller.compile(
        keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    distiller.fit(x_train, y_train, epochs=10, callbacks=[
        tfcompress.callbacks.DistillationScheduler(
            temperature=tfcompress.distillation.LinearSchedule(8.0, 2.0, 10))])
    student = distiller.student
    ```
    """

    def __init__(
        self,
        teacher,
        student,
        distillation_losses,
        distillation_loss_weights=None,
        student_loss_weight=0.5,
        name="distiller",
        **kwargs,
    ):
        super().__init__(
            teacher,
            student,
            distillation_losses,
            distillation_loss_weights=distillation_loss_weights,
            student_loss_weight=student_loss_weight,
            name=name,
            **kwargs,
        )
        self._temperature_losses = []
        for index, loss in enumerate(self.distillation_losses):
            if isinstance(loss, keras.distillation.LogitsDistillation):
                _check_not_kl_on_logits(loss, index)
                self._temperature_losses.append(loss)
        self._temperature = (
            float(self._temperature_losses[0].temperature)
            if self._temperature_losses
            else None
        )
        self._student_loss_weight_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.student_loss_weight),
            trainable=False,
            name="student_loss_weight",
        )
        self._temperature_variables = [
            self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(loss.temperature),
                trainable=False,
                name="temperature",
            )
            for loss in self._temperature_losses
        ]

    # -- The scheduled values -------------------------------------------

    @property
    def student_loss_weight(self):
        fixed = self.__dict__.get("_fixed_student_loss_weight")
        if fixed is not None:
            return fixed
        return self._student_loss_weight

    @student_loss_weight.setter
    def student_loss_weight(self, value):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not 0.0 <= value <= 1.0
        ):
            raise ValueError(
                "`student_loss_weight` must be a number in [0, 1]. "
                f"Received: student_loss_weight={value!r}"
            )
        self._student_loss_weight = float(value)
        variable = self.__dict__.get("_student_loss_weight_variable")
        if variable is not None:
            variable.assign(float(value))

    @property
    def temperature(self):
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        if not self._temperature_losses:
            raise ValueError(
                "This Distiller has no LogitsDistillation loss, so no "
                "temperature to set. Received: temperature="
                f"{value!r}, distillation_losses={self.distillation_losses!r}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not value > 0.0
        ):
            raise ValueError(
                "`temperature` must be a number > 0. "
                f"Received: temperature={value!r}"
            )
        self._temperature = float(value)
        for loss, variable in zip(
            self._temperature_losses, self._temperature_variables
        ):
            loss.temperature = float(value)  # What get_config() returns.
            variable.assign(float(value))

    # -- The loss -------------------------------------------------------

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Keras's combined distillation loss, with the variables' values.

        Args:
            x: Input data, or the dict made by `cache_teacher_outputs`.
            y: Labels, or `None` (then the student loss is 0).
            y_pred: The student's predictions; computed when `None`.
            sample_weight: Ignored, as by Keras's Distiller.
            training: Whether the model is in training mode.

        Returns:
            The scalar loss `w * student_loss + (1 - w) * distillation_loss`.
        """
        if y_pred is None:
            y_pred = self(x, training=training)
        parts = []
        with self._parent_trackers_off():
            for weight in (1.0, 0.0):
                with self._parent_evaluated_at(weight):
                    parts.append(
                        super().compute_loss(
                            x=x,
                            y=y,
                            y_pred=y_pred,
                            sample_weight=sample_weight,
                            training=training,
                        )
                    )
        student_loss, distillation_loss = parts
        weight = self._student_loss_weight_variable
        total_loss = keras.ops.add(
            keras.ops.multiply(weight, student_loss),
            keras.ops.multiply(keras.ops.subtract(1.0, weight), distillation_loss),
        )
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.total_loss_tracker.update_state(total_loss)
        return total_loss

    @contextlib.contextmanager
    def _parent_evaluated_at(self, weight):
        """Keras's `compute_loss` at `student_loss_weight=weight` (0 or 1).

        At 0 the `LogitsDistillation` losses also read the temperature
        variables. Only swaps Python attributes while the train step is
        traced: one replica traces at a time under tf.distribute.
        """
        floats = [loss.temperature for loss in self._temperature_losses]
        self.__dict__["_fixed_student_loss_weight"] = weight
        if weight == 0.0:
            for loss, variable in zip(
                self._temperature_losses, self._temperature_variables
            ):
                loss.temperature = variable
        try:
            yield
        finally:
            self.__dict__["_fixed_student_loss_weight"] = None
            for loss, value in zip(self._temperature_losses, floats):
                loss.temperature = value

    @contextlib.contextmanager
    def _parent_trackers_off(self):
        """Keeps Keras's `compute_loss` from updating the loss trackers.

        `object.__setattr__` leaves Keras's tracking of the metrics alone.
        """
        trackers = {name: getattr(self, name) for name in _LOSS_TRACKERS}
        for name in _LOSS_TRACKERS:
            object.__setattr__(self, name, _NoTracking())
        try:
            yield
        finally:
            for name, tracker in trackers.items():
                object.__setattr__(self, name, tracker)

    # -- Cached teacher outputs -----------------------------------------

    def call(self, inputs, training=None, **kwargs):
        """The student's outputs (on the inputs of cached data)."""
        inputs, _ = teacher_cache.unpack(inputs)
        return super().call(inputs, training=training, **kwargs)

    def _extract_all_teacher_features(self, x):
        inputs, outputs = teacher_cache.unpack(x)
        if outputs is None:
            return super()._extract_all_teacher_features(inputs)
        return teacher_cache.as_teacher_features(
            outputs, self._teacher_feature_extractor
        )

    def _extract_all_student_features(self, x, y_pred):
        inputs, _ = teacher_cache.unpack(x)
        return super()._extract_all_student_features(inputs, y_pred)


def _check_not_kl_on_logits(loss, index):
    functions = [f for f in keras.tree.flatten(loss.loss) if f is not None]
    if any(f is keras.losses.kl_divergence for f in functions):
        raise ValueError(
            f"distillation_losses[{index}] is a LogitsDistillation whose loss "
            "is the function keras.losses.kl_divergence (what its default, "
            "loss='kl_divergence', resolves to). Keras applies that function "
            "to the temperature-scaled logits themselves: no softmax, no "
            "T**2 factor, negative logits clipped to 1e-7. Pass "
            "loss=keras.losses.KLDivergence() (an instance) for the "
            "softened-softmax KL of Hinton et al. Received: "
            f"LogitsDistillation(temperature={loss.temperature!r}, "
            f"loss={loss.loss!r})"
        )
