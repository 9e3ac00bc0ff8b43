"""`LinearSchedule` and `CosineSchedule`: values, config, errors."""

import pytest

from tfcompress.distillation import CosineSchedule
from tfcompress.distillation import LinearSchedule


@pytest.mark.parametrize("cls", [LinearSchedule, CosineSchedule])
def test_ends_middle_and_config(cls):
    falling, rising = cls(8.0, 2.0, 10), cls(0.0, 1.0, 4)
    assert falling(-3) == falling(0) == 8.0
    assert falling(10) == falling(99) == 2.0
    assert falling(5) == pytest.approx(5.0)  # both pass the midpoint
    assert rising(2) == pytest.approx(0.5)
    assert rising(1) < rising(2) < rising(3)
    config = falling.get_config()
    assert config == {"start": 8.0, "end": 2.0, "duration": 10}
    assert cls.from_config(config)(3) == falling(3)
    assert repr(falling) == f"{cls.__name__}(start=8.0, end=2.0, duration=10)"


def test_cosine_is_slow_at_both_ends():
    linear, cosine = LinearSchedule(1.0, 0.0, 10), CosineSchedule(1.0, 0.0, 10)
    assert cosine(1) > linear(1) and cosine(9) < linear(9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": "8"}, "`start` must be a finite number. Received: start='8'"),
        ({"end": float("nan")}, "`end` must be a finite number"),
        ({"duration": 0}, "`duration` must be an integer >= 1. "
                          "Received: duration=0"),
        ({"duration": 2.5}, "Received: duration=2.5"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    arguments = {"start": 8.0, "end": 2.0, "duration": 10, **kwargs}
    for cls in (LinearSchedule, CosineSchedule):
        with pytest.raises(ValueError, match=message):
            cls(**arguments)
    with pytest.raises(ValueError, match="A step must be a number"):
        LinearSchedule(1.0, 0.0, 4)("3")
