"""Argument checks shared across tfcompress.

Every check raises a `ValueError` that names the argument, says what is
accepted and shows what was received, in Keras's own wording.
"""

import numbers


def integer_at_least(name, value, minimum):
    """Returns `value` as an `int` if it is an integer >= `minimum`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def positive_int(name, value):
    """Returns `value` as an `int` if it is an integer >= 1, else raises."""
    return integer_at_least(name, value, 1)


def int_pair(name, value):
    """Returns an `(int, int)` tuple from an int or a pair of ints >= 1."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
            for v in value
        )
    ):
        raise ValueError(
            f"`{name}` must be an integer >= 1 or a tuple of 2 such "
            f"integers. Received: {name}={value!r}"
        )
    return (int(value[0]), int(value[1]))


def padding_mode(value):
    """Returns the lower-cased padding mode if it is "valid" or "same"."""
    mode = value.lower() if isinstance(value, str) else value
    if mode not in ("valid", "same"):
        raise ValueError(
            '`padding` must be "valid" or "same". '
            f"Received: padding={value!r}"
        )
    return mode


def channels_last(layer_name, input_shape, min_rank=4):
    """Returns the channel count of a channels-last input shape."""
    if len(input_shape) < min_rank or input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} expects a channels-last input of rank "
            f">= {min_rank} with a known number of channels (TFLite runs "
            f"NHWC). Received: input_shape={tuple(input_shape)}"
        )
    return int(input_shape[-1])


def verbosity(value, name="verbose"):
    """Returns Keras's `verbose` argument as an int: 0, 1 or 2.

    The long-running tools take `verbose` as `model.fit` and
    `model.predict` do: `0` is silent, `1` and `2` print progress (one
    line per layer; tfcompress draws no progress bars, so the two print
    the same), `"auto"` is `1`. `True` and `False`, what these tools took
    before, are `1` and `0`.
    """
    if value == "auto":
        return 1
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral) and value in (0, 1, 2):
        return int(value)
    raise ValueError(
        f'`{name}` must be "auto", 0, 1 or 2 (as in Keras\'s fit), or '
        f"True / False. Received: {name}={value!r}"
    )
