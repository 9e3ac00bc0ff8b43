"""Checks of rank arguments, shared by the decomposition methods.

A rank is an integer >= 1 or, for the methods that have singular values to
measure it by, a float in `(0, 1]`: the fraction of energy to keep. Errors
name the argument and show what was received, as
`tfcompress.argument_validation` does.
"""

import numbers

from tfcompress import argument_validation


def is_fraction(rank):
    """Whether `rank` is a float (an energy fraction), not an integer."""
    return (
        isinstance(rank, numbers.Real)
        and not isinstance(rank, (numbers.Integral, bool))
    )


def energy_fraction(name, value):
    """Returns `value` as a float if it is in `(0, 1]`, else raises."""
    if not is_fraction(value) or not 0 < value <= 1:
        raise ValueError(
            f"`{name}` must be a fraction of energy to keep, a float in "
            f"(0, 1]. Received: {name}={value!r}"
        )
    return float(value)


def positive_rank(name, value):
    """Returns `value` as an `int` if it is an integer >= 1, else raises."""
    return argument_validation.positive_int(name, value)


def rank_at_most(name, value, full_rank):
    """Returns `value` if it is an integer in `[1, full_rank]`, else raises."""
    value = positive_rank(name, value)
    if value > full_rank:
        raise ValueError(
            f"`{name}` must be at most the full rank {full_rank}. "
            f"Received: {name}={value!r}"
        )
    return value


def powers_of_two_up_to(full_rank):
    """`[1, 2, 4, ...]` below `full_rank`, then `full_rank` itself."""
    grid = []
    rank = 1
    while rank < full_rank:
        grid.append(rank)
        rank *= 2
    return grid + [full_rank]


class OneIntegerRank:
    """Rank defaults of a method whose rank is one integer in [1, full rank].

    Mixed into the SVD, channel-SVD and CP methods (Tucker-2's rank is a
    pair); the class supplies `full_rank(layer)`.
    """

    def exceeds_full_rank(self, layer, rank):
        return rank > self.full_rank(layer)

    def candidate_ranks(self, layer):
        """Every valid rank, in increasing order of MACs."""
        return list(range(1, self.full_rank(layer) + 1))

    def default_grid(self, layer):
        return powers_of_two_up_to(self.full_rank(layer))
