"""Training of exit heads: jointly with the model, or the heads alone, each
exit distilled from the final head (Hinton et al.'s loss from
`tfcompress.distillation`)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfcompress.argument_validation import integer_at_least
from tfcompress.argument_validation import verbosity
from tfcompress.distillation import distillation_loss
from tfcompress.dynamic.exit_naming import exit_names
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

MODES = ("joint", "heads")


@dataclasses.dataclass(frozen=True)
class ExitAccuracy(Row):
    """Top-1 accuracy of one exit (or of the final head, `"final"`)."""

    name: str
    accuracy: float


@dataclasses.dataclass(frozen=True, repr=False)
class ExitTrainingReport(Report):
    """Result of `train_exits`.

    Attributes:
        mode: `"joint"` or `"heads"`.
        rows: One `ExitAccuracy` per exit, then `"final"`, measured on the
            validation data (the training data when there is none).
        losses: Mean training loss of each epoch.
        measured_on: `"validation"` or `"training"`.
    """

    mode: str
    rows: tuple
    losses: tuple
    measured_on: str

    def table(self):
        lines = format_table(
            ["exit", f"{self.measured_on} top-1"],
            [[row.name, f"{row.accuracy:.4f}"] for row in self.rows],
        )
        losses = ", ".join(f"{loss:.4f}" for loss in self.losses)
        lines.append(f"mode {self.mode}; loss per epoch: {losses}")
        return "\n".join(lines)


def train_exits(
    model,
    x,
    y,
    *,
    mode="heads",
    epochs=1,
    batch_size=64,
    optimizer=None,
    temperature=3.0,
    alpha=0.5,
    validation_data=None,
    seed=0,
    verbose="auto",
):
    """Trains the exits of a model from `attach_exits`, in place.

    Each exit's loss is `distillation_loss(y, exit_logits, final_logits,
    temperature, alpha)`: the labels and the final head's softened outputs
    (its logits are constants for that loss), summed over the exits.

    - `"heads"`: only the exit heads train; the backbone and the final
      head run in inference mode (batch normalization statistics kept), so
      the model's final predictions do not change.
    - `"joint"`: everything trains, the final head's cross-entropy added to
      the exits' losses, so the backbone learns features the early exits
      can use too (at some risk to the final head's accuracy).

    Args:
        model: A model from `attach_exits`.
        x: Training inputs, an array.
        y: Integer labels, shape `(N,)`.
        mode: `"heads"` or `"joint"`. Defaults to `"heads"`.
        epochs: Passes over the data, an integer >= 1. Defaults to `1`.
        batch_size: Examples per step, an integer >= 1. Defaults to `64`.
        optimizer: A Keras optimizer. Defaults to `None`: Adam, 1e-3.
        temperature: Distillation temperature. Defaults to `3.0`.
        alpha: Weight of the soft (distillation) part, in `[0, 1]`.
            Defaults to `0.5`.
        validation_data: `(x_val, y_val)` to measure the exits on. Defaults
            to `None`: measured on the training data.
        seed: Seed of the shuffling. Defaults to `0`.
        verbose: `0` silent; `1`, `2` or `"auto"` print one line per
            epoch. Defaults to `"auto"`.

    Returns:
        `(model, ExitTrainingReport)`; the model is the one passed in.

    Raises:
        ValueError: If `mode` is unknown, the model has no exits, or `x`
            and `y` differ in length.

    Example:

    ```python
    with_exits, _ = attach_exits(model, at=["block1", "block2"])
    with_exits, report = train_exits(with_exits, x, y, mode="heads")
    print(report)
    ```
    """
    if mode not in MODES:
        raise ValueError(
            f"`mode` must be one of {MODES}. Received: mode={mode!r}"
        )
    names = exit_names(model)
    if not names:
        raise ValueError(
            "`model` has no exit heads; attach them with `attach_exits`. "
            f"Received: model={model.name!r}"
        )
    verbose = verbosity(verbose)
    integer_at_least("epochs", epochs, minimum=1)
    integer_at_least("batch_size", batch_size, minimum=1)
    x = np.asarray(x, np.float32)
    y = np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(
            "`x` and `y` must have the same length. Received: "
            f"len(x)={len(x)}, len(y)={len(y)}"
        )
    # Checked once here, not inside the traced step.
    distillation_loss(
        np.zeros(1, np.int32), np.zeros((1, 2)), np.zeros((1, 2)),
        temperature, alpha,
    )
    optimizer = optimizer or keras.optimizers.Adam(1e-3)
    heads = [model.get_layer(name) for name in names]
    if mode == "heads":
        variables = [v for head in heads for v in head.trainable_variables]
    else:
        variables = list(model.trainable_variables)
    step = _train_step(model, optimizer, variables, mode, temperature, alpha)

    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total, count = 0.0, 0
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            loss = step(tf.constant(x[batch]), tf.constant(y[batch]))
            total += float(loss) * len(batch)
            count += len(batch)
        losses.append(total / count)
        if verbose:
            print(f"train_exits ({mode}): epoch {epoch + 1}/{epochs}, "
                  f"loss {losses[-1]:.4f}")

    eval_x, eval_y, measured_on = x, y, "training"
    if validation_data is not None:
        eval_x, eval_y = validation_data
        measured_on = "validation"
    accuracies = exit_accuracies(model, eval_x, eval_y, batch_size=256)
    rows = tuple(
        ExitAccuracy(name=name, accuracy=accuracy)
        for name, accuracy in zip([*names, "final"], accuracies)
    )
    report = ExitTrainingReport(
        mode=mode, rows=rows, losses=tuple(losses), measured_on=measured_on
    )
    return model, report


def exit_accuracies(model, x, y, batch_size=256):
    """Top-1 accuracy of every exit of `model`, then of its final head."""
    outputs = model.predict(np.asarray(x), batch_size=batch_size, verbose=0)
    y = np.asarray(y).reshape(-1)
    return [float(np.mean(np.argmax(o, axis=-1) == y)) for o in outputs]


def _train_step(model, optimizer, variables, mode, temperature, alpha):
    training = mode == "joint"

    # No autograph: the step has no data-dependent control flow, and
    # converting the closure only warns.
    @tf.function(autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            outputs = model(x, training=training)
            final = outputs[-1]
            loss = 0.0
            for logits in outputs[:-1]:
                loss += distillation_loss(
                    y, logits, final, temperature=temperature, alpha=alpha
                )
            if training:
                loss += keras.ops.mean(
                    keras.losses.sparse_categorical_crossentropy(
                        y, final, from_logits=True
                    )
                )
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    return step
