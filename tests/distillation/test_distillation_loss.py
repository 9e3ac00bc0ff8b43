"""`distillation_loss` against a NumPy reference and against what
`keras.distillation.Distiller` computes; errors, Keras's own included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfcompress
from tfcompress.distillation import distillation_loss
from tests.distillation.conftest import LOSS
from tests.distillation.conftest import mlp

RNG = np.random.default_rng(0)
BATCH, CLASSES = 16, 10


def reference(y, student, teacher, temperature, alpha):
    """Hinton et al. (2015) in float64 NumPy."""

    def softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)

    one_hot = np.eye(student.shape[-1])[y] if y.ndim == 1 else y
    hard = -np.mean(np.sum(one_hot * np.log(softmax(student)), axis=-1))
    p, q = softmax(teacher / temperature), softmax(student / temperature)
    kl = np.mean(np.sum(p * np.log(p / q), axis=-1))
    return (1 - alpha) * hard + alpha * temperature**2 * kl


def logits(scale=3.0):
    return (scale * RNG.normal(size=(BATCH, CLASSES))).astype("float32")


@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_matches_the_formula(temperature, alpha):
    y = RNG.integers(0, CLASSES, BATCH)
    student, teacher = logits(), logits()
    expected = reference(y, student.astype("float64"),
                         teacher.astype("float64"), temperature, alpha)
    for labels in (y, y[:, None], np.eye(CLASSES, dtype="float32")[y]):
        loss = distillation_loss(labels, student, teacher, temperature, alpha)
        np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_soft_part_is_scaled_by_t_squared():
    y = RNG.integers(0, CLASSES, BATCH)
    student, teacher = logits(), logits()
    # The gradients of KL(T) shrink as 1/T**2; the loss is scaled back up.
    for temperature in (2.0, 8.0):
        soft = float(distillation_loss(y, student, teacher, temperature, 1.0))
        unscaled = reference(y, student, teacher, temperature, 1.0)
        np.testing.assert_allclose(soft, unscaled, rtol=1e-5)
        kl = float(keras.ops.mean(keras.losses.kl_divergence(
            keras.ops.softmax(teacher / temperature),
            keras.ops.softmax(student / temperature))))
        np.testing.assert_allclose(soft, temperature**2 * kl, rtol=1e-6)


def distillers(teacher, student, temperature, student_loss_weight, loss):
    """Keras's Distiller and tfcompress's, compiled with the same loss."""
    made = []
    for cls in (keras.distillation.Distiller,
                tfcompress.distillation.Distiller):
        distiller = cls(
            teacher, student,
            keras.distillation.LogitsDistillation(
                temperature, loss=keras.losses.KLDivergence()),
            student_loss_weight=student_loss_weight,
        )
        distiller.compile("sgd", loss=loss)
        made.append(distiller)
    return made


@pytest.mark.parametrize("one_hot", [False, True], ids=["sparse", "one_hot"])
@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.0), (4.0, 0.3),
                                                (2.5, 0.9), (3.0, 1.0)])
def test_equals_the_keras_distiller_loss(digits, temperature, alpha, one_hot):
    x, y, _, _ = digits
    x, y = x[:BATCH], y[:BATCH]
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    loss = LOSS
    if one_hot:
        y = np.eye(CLASSES, dtype="float32")[y]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    student_logits, teacher_logits = student(x), teacher(x)
    expected = distillation_loss(y, student_logits, teacher_logits,
                                 temperature, alpha)
    for distiller in distillers(teacher, student, temperature, 1 - alpha,
                                loss):
        got = distiller.compute_loss(x, y, student_logits)
        np.testing.assert_allclose(float(got), float(expected), rtol=1e-6,
                                   err_msg=type(distiller).__module__)


def test_keras_default_kl_string_is_not_the_softmax_kl(digits):
    # Pins what Keras 3 does with LogitsDistillation's default
    # loss="kl_divergence": the string resolves to the *function*
    # keras.losses.kl_divergence, applied to the scaled logits (clipped to
    # [1e-7, 1]) with no softmax and no T**2. tfcompress refuses it.
    x, y, _, _ = digits
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    t, s = teacher(x[:BATCH]), student(x[:BATCH])
    temperature = 3.0
    default = keras.distillation.LogitsDistillation(temperature)
    assert default.loss is keras.losses.kl_divergence
    got = float(default.compute_loss(t, s))
    on_logits = float(keras.ops.mean(
        keras.losses.kl_divergence(t / temperature, s / temperature)))
    np.testing.assert_allclose(got, on_logits, rtol=1e-6)
    soft = float(distillation_loss(None, s, t, temperature, alpha=1.0))
    assert abs(got - soft) > 0.1 * soft
    with pytest.raises(ValueError, match="keras.losses.KLDivergence()"):
        tfcompress.distillation.Distiller(teacher, student, default)


def test_custom_training_loop_with_a_variable_temperature(digits, teacher):
    x, y, _, _ = digits
    x, y = x[:256], y[:256]
    student = mlp(16, "student")
    teacher_logits = teacher.predict(x, verbose=0)
    optimizer = keras.optimizers.Adam(0.01)
    temperature = tf.Variable(4.0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = distillation_loss(y, student(x, training=True),
                                     teacher_logits, temperature, alpha=0.5)
        grads = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses
    temperature.assign(1.0)  # no retrace: the variable is read in the graph
    expected = distillation_loss(y, student(x), teacher_logits, 1.0, 0.5)
    np.testing.assert_allclose(float(step()), float(expected), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": -0.1}, r"`alpha` must be a number in \[0, 1\]. "
                          r"Received: alpha=-0.1"),
        ({"alpha": 1.5}, "Received: alpha=1.5"),
        ({"alpha": True}, "Received: alpha=True"),
        ({"temperature": 0.0}, "`temperature` must be a number > 0. "
                               "Received: temperature=0.0"),
        ({"temperature": -2}, "Received: temperature=-2"),
        ({"teacher_logits": np.zeros((BATCH, 5))},
         r"same number of classes .* teacher_logits.shape=\(16, 5\)"),
        ({"y_true": np.zeros((BATCH, 3))}, r"y_true.shape=\(16, 3\)"),
        ({"y_true": None}, "only for pure distillation, alpha=1"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    arguments = dict(
        y_true=RNG.integers(0, CLASSES, BATCH), student_logits=logits(),
        teacher_logits=logits(), temperature=3.0, alpha=0.5,
    )
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        distillation_loss(**arguments)


def test_keras_distiller_raises_its_own_clear_errors():
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    kl = keras.losses.KLDivergence()
    for cls in (keras.distillation.Distiller,
                tfcompress.distillation.Distiller):
        with pytest.raises(ValueError, match="between 0.0 and 1.0, got 1.5"):
            cls(teacher, student,
                keras.distillation.LogitsDistillation(3.0, kl),
                student_loss_weight=1.5)
        with pytest.raises(
            ValueError,
            match=r"output shapes are incompatible. Teacher: \(None, 10\), "
                  r"Student: \(None, 5\)",
        ):
            cls(teacher, mlp(8, "narrow", classes=5),
                keras.distillation.LogitsDistillation(3.0, kl))
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be positive"):
            keras.distillation.LogitsDistillation(temperature, kl)
