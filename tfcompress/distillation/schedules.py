"""Schedules for a distillation temperature or weight: step -> value.

A schedule is any callable `schedule(step) -> number`, counted in epochs or
in optimizer steps (`DistillationScheduler(update_freq=...)` decides), so a
`keras.optimizers.schedules.LearningRateSchedule` works too. The two here go
from `start` to `end` over `duration` steps and then stay at `end`; unlike
Keras's decay schedules they may rise as well as fall.
"""

import math
import numbers

from tfcompress import argument_validation


class _StartEndSchedule:
    def __init__(self, start, end, duration):
        for name, value in (("start", start), ("end", end)):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise ValueError(
                    f"`{name}` must be a finite number. "
                    f"Received: {name}={value!r}"
                )
        self.start = start
        self.end = end
        self.duration = argument_validation.positive_int("duration", duration)

    def _progress(self, step):
        if isinstance(step, bool) or not isinstance(step, numbers.Real):
            raise ValueError(
                f"A step must be a number. Received: step={step!r}"
            )
        return min(max(float(step), 0.0), self.duration) / self.duration

    def get_config(self):
        return {"start": self.start, "end": self.end, "duration": self.duration}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class LinearSchedule(_StartEndSchedule):
    """Goes linearly from `start` at step 0 to `end` at step `duration`.

    Args:
        start: Value at step 0 (and before).
        end: Value at step `duration` and after.
        duration: Number of steps (or epochs) of the ramp, an integer >= 1.

    Returns:
        Called with a step, the value there as a float.

    Example:

    >>> schedule = LinearSchedule(start=8.0, end=2.0, duration=4)
    >>> [schedule(step) for step in range(6)]
    [8.0, 6.5, 5.0, 3.5, 2.0, 2.0]
    """

    def __call__(self, step):
        return float(self.start + (self.end - self.start) * self._progress(step))


class CosineSchedule(_StartEndSchedule):
    """Goes from `start` to `end` along a half cosine over `duration` steps.

    Slow at both ends, fastest in the middle, as in SGDR's learning-rate
    curve: `end + (start - end) * (1 + cos(pi * step / duration)) / 2`.

    Args:
        start: Value at step 0 (and before).
        end: Value at step `duration` and after.
        duration: Number of steps (or epochs) of the curve, an integer >= 1.

    Returns:
        Called with a step, the value there as a float.

    Example:

    >>> schedule = CosineSchedule(start=0.0, end=1.0, duration=4)
    >>> [round(schedule(step), 4) for step in range(6)]
    [0.0, 0.1464, 0.5, 0.8536, 1.0, 1.0]
    """

    def __call__(self, step):
        cosine = (1.0 + math.cos(math.pi * self._progress(step))) / 2.0
        return float(self.end + (self.start - self.end) * cosine)
