"""The knowledge-distillation loss of Hinton et al. (2015) as a function."""

import numbers

import keras


def distillation_loss(
    y_true, student_logits, teacher_logits, temperature=3.0, alpha=0.5
):
    """Hard-label cross-entropy plus the temperature-softened KL to a teacher.

    Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural
    Network", with `alpha` on the soft part:

    ```
    loss = (1 - alpha) * CE(y_true, softmax(student_logits))
           + alpha * T**2 * KL(softmax(teacher_logits / T)
                               || softmax(student_logits / T))
    ```

    averaged over the batch. The `T**2` keeps the soft part's gradients at
    the same scale whatever the temperature (they shrink as `1 / T**2`).
    Written with `keras.ops`, so it runs inside a custom training loop or a
    `tf.function`; the teacher's logits are treated as constants.

    Relation to `keras.distillation.Distiller`: this is exactly the loss a
    Distiller computes (up to float rounding) when built as

    ```python
    keras.distillation.Distiller(
        teacher, student,
        keras.distillation.LogitsDistillation(
            temperature=T, loss=keras.losses.KLDivergence()),
        student_loss_weight=1 - alpha)
    distiller.compile(
        optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    (`CategoricalCrossentropy(from_logits=True)` for one-hot labels). So
    `alpha = 1 - student_loss_weight`. `LogitsDistillation` multiplies by
    `T**2` only when its loss is a `keras.losses.KLDivergence` *instance*:
    then it applies the softmax and the `T**2`, as here. With its default,
    `loss="kl_divergence"`, the string resolves to the function
    `keras.losses.kl_divergence`, which Keras applies to the
    temperature-scaled *logits* themselves: no softmax, no `T**2`, and
    negative logits clipped to 1e-7; that is not this loss, nor a
    divergence between the two output distributions.
    `tfcompress.distillation.Distiller` refuses that configuration.

    Args:
        y_true: Labels: integer class ids of shape `(batch,)` or
            `(batch, 1)`, or one-hot (or soft) labels of shape
            `(batch, classes)`. May be `None` only with `alpha=1` (pure
            distillation, no labels).
        student_logits: The student's logits, shape `(batch, classes)`.
        teacher_logits: The teacher's logits, the same shape.
        temperature: Softmax temperature `T > 0` of the soft part. A number,
            or a scalar tensor or variable (a schedule in a custom loop;
            then it is not range-checked). Defaults to `3.0`, as Keras's
            `LogitsDistillation`.
        alpha: Weight of the soft part, in `[0, 1]`; the hard part has
            `1 - alpha`. A number or a scalar tensor or variable. Defaults
            to `0.5`, as Keras's `student_loss_weight=0.5`.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: if `alpha` is outside `[0, 1]`, `temperature <= 0`, the
            teacher and student logits have a different number of classes,
            the labels' shape fits neither form, or `y_true` is `None` with
            `alpha != 1`.

    Example:

    >>> y = np.array([0, 1])
    >>> student = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> teacher = np.array([[3.0, 0.0], [0.0, 3.0]])
    >>> loss = distillation_loss(y, student, teacher, temperature=2.0,
    ...                          alpha=0.7)
    >>> round(float(loss), 4)
    0.2213
    >>> # alpha=0 is the plain cross-entropy on the labels.
    >>> round(float(distillation_loss(y, student, teacher, 2.0, alpha=0.0)), 4)
    0.2201
    """
    _check_number("alpha", alpha, "in [0, 1]", lambda a: 0.0 <= a <= 1.0)
    _check_number("temperature", temperature, "> 0", lambda t: t > 0.0)
    student_logits = keras.ops.convert_to_tensor(student_logits)
    teacher_logits = keras.ops.stop_gradient(
        keras.ops.convert_to_tensor(teacher_logits, student_logits.dtype)
    )
    classes = _check_logits(student_logits, teacher_logits)

    soft = keras.ops.mean(
        keras.losses.kl_divergence(
            keras.ops.softmax(teacher_logits / temperature, axis=-1),
            keras.ops.softmax(student_logits / temperature, axis=-1),
        )
    )
    soft = keras.ops.multiply(soft, temperature**2)
    if y_true is None:
        if not (isinstance(alpha, numbers.Real) and alpha == 1):
            raise ValueError(
                "`y_true` may be None only for pure distillation, alpha=1. "
                f"Received: y_true=None, alpha={alpha!r}"
            )
        return soft
    hard = keras.ops.mean(_cross_entropy(y_true, student_logits, classes))
    return keras.ops.add(
        keras.ops.multiply(keras.ops.subtract(1.0, alpha), hard),
        keras.ops.multiply(alpha, soft),
    )


def _check_number(name, value, accepted, valid):
    if isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be a number {accepted}. Received: {name}={value!r}"
        )
    if isinstance(value, numbers.Real) and not valid(float(value)):
        raise ValueError(
            f"`{name}` must be a number {accepted}. Received: {name}={value!r}"
        )


def _check_logits(student_logits, teacher_logits):
    if len(student_logits.shape) < 2:
        raise ValueError(
            "Expected `student_logits` of shape (batch, classes). "
            f"Received: student_logits.shape={tuple(student_logits.shape)}"
        )
    if (
        len(teacher_logits.shape) != len(student_logits.shape)
        or teacher_logits.shape[-1] != student_logits.shape[-1]
    ):
        raise ValueError(
            "Expected `teacher_logits` and `student_logits` with the same "
            "number of classes (last dimension). Received: "
            f"student_logits.shape={tuple(student_logits.shape)}, "
            f"teacher_logits.shape={tuple(teacher_logits.shape)}"
        )
    return student_logits.shape[-1]


def _cross_entropy(y_true, logits, classes):
    y_true = keras.ops.convert_to_tensor(y_true)
    rank, logits_rank = len(y_true.shape), len(logits.shape)
    if rank == logits_rank and y_true.shape[-1] == classes and classes != 1:
        return keras.losses.categorical_crossentropy(
            keras.ops.cast(y_true, logits.dtype), logits, from_logits=True
        )
    if rank == logits_rank - 1 or (rank == logits_rank and y_true.shape[-1] == 1):
        return keras.losses.sparse_categorical_crossentropy(
            y_true, logits, from_logits=True
        )
    raise ValueError(
        "Expected `y_true` of integer class ids, shape (batch,) or "
        f"(batch, 1), or one-hot labels of shape (batch, {classes}). "
        f"Received: y_true.shape={tuple(y_true.shape)}"
    )
