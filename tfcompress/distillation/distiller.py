"""Keras's Distiller, with a temperature and weight that can change in `fit`."""

import numbers

import keras

from tfcompress.distillation import teacher_cache
from tfcompress.graph import keras_internals
from tfcompress.distillation.teacher_cache import FINAL_OUTPUT


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

    How: `compute_loss` computes Keras's two terms itself, as Keras's
    Distiller does (the compiled loss on the labels; each distillation loss
    on the teacher's outputs or features in inference mode and the
    student's, times its `distillation_loss_weights` entry), with the
    temperature variables in place of the floats, then mixes them with the
    weight variable: `w * student_loss + (1 - w) * distillation_loss`. The
    numbers are those of Keras's Distiller at the same settings. Two
    consequences: both parts are always computed (the teacher runs even at
    `student_loss_weight=1`, unless its outputs are cached), and `fit` on
    `x` alone (no labels) gives a student loss of 0, so set
    `student_loss_weight=0` for it (and compile without metrics, which need
    labels).

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
        # Checked first: Keras's constructor freezes the teacher.
        losses = (
            distillation_losses
            if isinstance(distillation_losses, (list, tuple))
            else [distillation_losses]
        )
        for index, loss in enumerate(losses):
            if isinstance(loss, keras.distillation.LogitsDistillation):
                _check_logits_distillation(loss, index)
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
        for loss in self.distillation_losses:
            if isinstance(loss, keras.distillation.LogitsDistillation):
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

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Configures training, as `keras.distillation.Distiller.compile`.

        Args:
            optimizer: Optimizer of the student. Defaults to `"adam"`.
            loss: The student's supervised loss: a loss identifier or
                instance, or a structure of them matching the student's
                outputs. Required.
            metrics: A list of metrics of the student's predictions, or
                `None`.
            **kwargs: Passed to `keras.Model.compile`.

        Raises:
            ValueError: if `loss` is `None` or `metrics` is not a list.
        """
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics,
                        **kwargs)
        # Keras's Distiller keeps the resolved losses in a private
        # attribute; `compute_loss` below reads its own copy, resolved the
        # same way (a string becomes the function `keras.losses.get`
        # returns, anything else is used as given).
        self._compiled_student_losses = keras.tree.map_structure(
            _loss_function, loss
        )

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Keras's combined distillation loss, with the variables' values.

        The same terms as `keras.distillation.Distiller.compute_loss`: the
        student loss on `(y, y_pred)`, the weighted sum of the distillation
        losses on the teacher's (inference mode) and the student's outputs
        or features, combined as `w * student_loss + (1 - w) *
        distillation_loss`. Here `w` and every `LogitsDistillation`
        temperature are read from their variables, and both terms are
        always computed (Keras skips the one whose weight is 0, deciding in
        Python at trace time).

        Args:
            x: Input data, or the dict made by `cache_teacher_outputs`.
            y: Labels, or `None` (then the student loss is 0).
            y_pred: The student's predictions; computed when `None`.
            sample_weight: Ignored, as by Keras's Distiller.
            training: Whether the model is in training mode.

        Returns:
            The scalar loss `w * student_loss + (1 - w) * distillation_loss`.
        """
        inputs, cached_teacher_outputs = teacher_cache.unpack(x)
        if y_pred is None:
            y_pred = self(inputs, training=training)
        student_loss = self._supervised_loss(y, y_pred)
        distillation_loss = self._weighted_distillation_loss(
            inputs, cached_teacher_outputs, y_pred
        )
        weight = self._student_loss_weight_variable
        total_loss = keras.ops.add(
            keras.ops.multiply(weight, student_loss),
            keras.ops.multiply(
                keras.ops.subtract(1.0, weight), distillation_loss
            ),
        )
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.total_loss_tracker.update_state(total_loss)
        return total_loss

    def _supervised_loss(self, y, y_pred):
        """The compiled loss(es) on the labels, summed, as a scalar."""
        if y is None:
            return 0.0
        values = keras.tree.map_structure(
            lambda loss, target, prediction: loss(target, prediction),
            self._compiled_student_losses,
            y,
            y_pred,
        )
        values = keras.tree.flatten(values)
        loss = (
            keras.ops.sum(keras.ops.stack(values))
            if len(values) > 1
            else values[0]
        )
        if len(getattr(loss, "shape", ())) > 0:
            loss = keras.ops.mean(loss)
        return loss

    def _weighted_distillation_loss(
        self, inputs, cached_teacher_outputs, y_pred
    ):
        """The distillation losses, each times its weight, summed."""
        teacher_features = self._teacher_features(
            inputs, cached_teacher_outputs
        )
        student_features = self._student_features(inputs, y_pred)
        # One variable per LogitsDistillation loss, in the losses' order.
        temperatures = iter(self._temperature_variables)
        total = 0.0
        for index, (loss, weight) in enumerate(
            zip(self.distillation_losses, self.distillation_loss_weights)
        ):
            # As Keras: a loss naming a teacher layer reads the features of
            # the layers it names; any other reads the final outputs.
            if getattr(loss, "teacher_layer_name", None) is not None:
                teacher_output = _feature(
                    teacher_features, loss.teacher_layer_name, "teacher", index
                )
                student_output = _feature(
                    student_features, loss.student_layer_name, "student", index
                )
            else:
                teacher_output = teacher_features[FINAL_OUTPUT]
                student_output = y_pred
            loss.validate_outputs(teacher_output, student_output)
            if isinstance(loss, keras.distillation.LogitsDistillation):
                value = _logits_distillation_loss(
                    loss, teacher_output, student_output, next(temperatures)
                )
            else:
                value = loss.compute_loss(teacher_output, student_output)
            if len(getattr(value, "shape", ())) > 0:
                raise ValueError(
                    f"distillation_losses[{index}] "
                    f"({type(loss).__name__}) returned a loss of shape "
                    f"{tuple(value.shape)}; its `compute_loss` must return "
                    "a scalar."
                )
            total = keras.ops.add(total, keras.ops.multiply(weight, value))
        return total

    # The feature extractors are Keras's own (see
    # `keras_internals.distiller_feature_extractors`).

    def _teacher_features(self, inputs, cached_teacher_outputs):
        """The teacher's outputs and features, run in inference mode."""
        extractor, _ = keras_internals.distiller_feature_extractors(self)
        if cached_teacher_outputs is not None:
            return teacher_cache.as_teacher_features(
                cached_teacher_outputs, extractor
            )
        if extractor is not None:
            return extractor(inputs, training=False)
        return {FINAL_OUTPUT: self.teacher(inputs, training=False)}

    def _student_features(self, inputs, y_pred):
        """The student's features: `y_pred`, plus the named layers' outputs.

        As Keras, the extractor runs in training mode whatever `training`
        is.
        """
        _, extractor = keras_internals.distiller_feature_extractors(self)
        if extractor is not None:
            return extractor(inputs, training=True)
        return {FINAL_OUTPUT: y_pred}

    # -- Cached teacher outputs -----------------------------------------

    def call(self, inputs, training=None, **kwargs):
        """The student's outputs (on the inputs of cached data)."""
        inputs, _ = teacher_cache.unpack(inputs)
        return super().call(inputs, training=training, **kwargs)


def _loss_function(loss):
    """A compiled loss identifier as the callable Keras's Distiller uses."""
    if isinstance(loss, str):
        return keras.losses.get(loss)
    return loss


def _feature(features, layer_name, model, index):
    key = layer_name or FINAL_OUTPUT
    if key not in features:
        raise ValueError(
            f"distillation_losses[{index}] reads the {model} layer {key!r}, "
            f"which is not among the extracted {model} features. "
            f"Available: {sorted(features)}"
        )
    return features[key]


def _logits_distillation_loss(loss, teacher_logits, student_logits,
                              temperature):
    """`LogitsDistillation.compute_loss`, at the given temperature.

    Keras's method reads the loss object's `temperature` float; this is its
    computation, step for step, with a temperature that may be a variable.
    """
    teacher_scaled = keras.tree.map_structure(
        lambda x: keras.ops.divide(x, temperature), teacher_logits
    )
    student_scaled = keras.tree.map_structure(
        lambda x: keras.ops.divide(x, temperature), student_logits
    )

    def apply(loss_fn, teacher, student):
        if loss_fn is None:
            return 0.0
        if isinstance(loss_fn, keras.losses.KLDivergence):
            # Probabilities, and the T**2 of Hinton et al.
            value = keras.ops.mean(
                loss_fn(
                    keras.ops.softmax(teacher, axis=-1),
                    keras.ops.softmax(student, axis=-1),
                )
            )
            return value * (temperature**2)
        return keras.ops.mean(loss_fn(teacher, student))

    values = keras.tree.map_structure(
        apply, loss.loss, teacher_scaled, student_scaled
    )
    return keras.ops.sum(keras.ops.stack(keras.tree.flatten(values)))


def _check_logits_distillation(loss, index):
    if (
        type(loss).compute_loss
        is not keras.distillation.LogitsDistillation.compute_loss
    ):
        raise ValueError(
            f"distillation_losses[{index}] is a {type(loss).__name__}, a "
            "LogitsDistillation with its own `compute_loss`. This Distiller "
            "computes the LogitsDistillation loss itself, at the temperature "
            "held in its variable, so it would not run that method. Use "
            "keras.distillation.Distiller, or subclass "
            "keras.distillation.DistillationLoss instead. Received: "
            f"{loss!r}"
        )
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
