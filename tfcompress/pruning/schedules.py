"""Pruning schedules: at a training step, whether to prune and to what sparsity.

Same arguments and numbers as tfmot's `ConstantSparsity` and
`PolynomialDecay` (tensorflow_model_optimization.sparsity.keras), so that a
user migrating from Keras 2 gets the same masks at the same steps. The
arithmetic is done in float32, as tfmot does it in TensorFlow, so the
target sparsities are bit-identical. Unlike tfmot's, `get_config()` returns
exactly the constructor arguments.
"""

import numbers

import keras
import numpy as np

from tfcompress import argument_validation


class PruningSchedule:
    """Base class: `schedule(step)` returns `(should_prune, sparsity)`.

    Pruning happens at steps `begin_step, begin_step + frequency, ...` up to
    and including `end_step` (`end_step=-1` means until training ends).
    Subclasses implement `sparsity_at(step)` and `get_config()`.

    Args:
        begin_step: First step at which to prune, an integer >= 0.
        end_step: Last step at which to prune, `>= begin_step`, or `-1` for
            no end.
        frequency: Prune every `frequency` steps, an integer >= 1.
    """

    def __init__(self, begin_step, end_step, frequency):
        self.begin_step = argument_validation.integer_at_least(
            "begin_step", begin_step, 0
        )
        self.end_step = argument_validation.integer_at_least(
            "end_step", end_step, -1
        )
        if self.end_step != -1 and self.end_step < self.begin_step:
            raise ValueError(
                "`end_step` must be >= `begin_step` "
                f"({self.begin_step}), or -1 to prune until training ends. "
                f"Received: end_step={end_step!r}"
            )
        self.frequency = argument_validation.positive_int(
            "frequency", frequency
        )

    def should_prune(self, step):
        """Whether the masks are updated at `step`."""
        step = _as_step(step)
        in_range = step >= self.begin_step and (
            self.end_step < 0 or step <= self.end_step
        )
        return in_range and (step - self.begin_step) % self.frequency == 0

    def sparsity_at(self, step):
        """Target sparsity (fraction of zeros) at `step`."""
        raise NotImplementedError

    def __call__(self, step):
        """Returns `(should_prune, target_sparsity)` at `step`, as tfmot."""
        return self.should_prune(step), self.sparsity_at(step)

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and (
            self.get_config() == other.get_config()
        )


@keras.saving.register_keras_serializable(package="tfcompress")
class ConstantSparsity(PruningSchedule):
    """The same target sparsity at every pruning step.

    Args:
        target_sparsity: Fraction of weights set to zero, in [0, 1).
        begin_step: First step at which to prune, an integer >= 0.
        end_step: Last step at which to prune, or `-1` (the default) to
            prune until training ends.
        frequency: Prune every `frequency` steps. Defaults to `100`.

    Example:

    >>> schedule = ConstantSparsity(0.8, begin_step=0, frequency=100)
    >>> schedule(200)
    (True, 0.800000011920929)
    >>> schedule(250)
    (False, 0.800000011920929)
    """

    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = _sparsity("target_sparsity", target_sparsity)

    def sparsity_at(self, step):
        _as_step(step)
        return float(np.float32(self.target_sparsity))

    def get_config(self):
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package="tfcompress")
class PolynomialDecay(PruningSchedule):
    """Sparsity rising from `initial_sparsity` to `final_sparsity`.

    Zhu & Gupta (2017): at step t,
    `s(t) = final + (initial - final) * (1 - p) ** power` with
    `p = clip((t - begin_step) / (end_step - begin_step), 0, 1)`: fast
    pruning first, slower as the network has fewer redundant weights left.

    Args:
        initial_sparsity: Sparsity at `begin_step`, in [0, 1).
        final_sparsity: Sparsity at and after `end_step`, in [0, 1).
        begin_step: First step at which to prune, an integer >= 0.
        end_step: Last step at which to prune, `> begin_step`.
        power: Exponent of the decay. Defaults to `3`.
        frequency: Prune every `frequency` steps. Defaults to `100`.

    Example:

    >>> schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000)
    >>> round(schedule(500)[1], 4)  # 0.8 - 0.8 * 0.5 ** 3
    0.7
    """

    def __init__(
        self,
        initial_sparsity,
        final_sparsity,
        begin_step,
        end_step,
        power=3,
        frequency=100,
    ):
        super().__init__(begin_step, end_step, frequency)
        if self.end_step <= self.begin_step:
            # tfmot accepts end_step == begin_step and then divides by zero.
            raise ValueError(
                "PolynomialDecay needs `end_step` > `begin_step` "
                f"({self.begin_step}) to decay over; use ConstantSparsity "
                f"for a single step. Received: end_step={end_step!r}"
            )
        self.initial_sparsity = _sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _sparsity("final_sparsity", final_sparsity)
        if (
            isinstance(power, bool)
            or not isinstance(power, numbers.Real)
            or not power > 0
        ):
            raise ValueError(
                f"`power` must be a positive number. Received: power={power!r}"
            )
        self.power = power

    def sparsity_at(self, step):
        step = _as_step(step)
        # float32 backend ops in tfmot's order: numpy's float32 `power`
        # differs from TensorFlow's in the last bit.
        ops = keras.ops
        progress = ops.divide(
            ops.cast(step - self.begin_step, "float32"),
            ops.cast(self.end_step - self.begin_step, "float32"),
        )
        progress = ops.minimum(1.0, ops.maximum(0.0, progress))
        decay = ops.power(
            ops.subtract(1.0, progress), ops.cast(self.power, "float32")
        )
        sparsity = ops.add(
            ops.multiply(
                ops.cast(self.initial_sparsity - self.final_sparsity, "float32"),
                decay,
            ),
            ops.cast(self.final_sparsity, "float32"),
        )
        return float(ops.convert_to_numpy(sparsity))

    def get_config(self):
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }


def _sparsity(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"`{name}` must be a fraction of weights in [0, 1). "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _as_step(step):
    """The training step as a Python int (accepts eager tensors)."""
    try:
        value = int(keras.ops.convert_to_numpy(step))
    except (TypeError, ValueError):
        raise ValueError(
            "`step` must be an integer or a scalar integer tensor, e.g. "
            f"`int(optimizer.iterations)`. Received: step={step!r}"
        ) from None
    if value < 0:
        raise ValueError(f"`step` must be >= 0. Received: step={step!r}")
    return value
