"""What a compressed model may cost: `Budget`.

A budget is stated in the units the user cares about, absolute or as a
fraction of the uncompressed model's; `Budget.limits(reference)` turns it
into absolute limits once the reference model is measured.
"""

import dataclasses

from tfcompress.analysis import profile

# The costs a budget can bound, with the unit each is stated in.
COST_UNITS = {"macs": "MACs per example", "params": "parameters"}


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one model costs: MACs per example and parameters."""

    macs: int
    params: int

    def ratio_to(self, reference):
        """`{kind: self / reference}` for every cost kind."""
        return {
            kind: getattr(self, kind) / max(getattr(reference, kind), 1)
            for kind in COST_UNITS
        }


def measure_cost(model):
    """Returns the `Cost` of a built Keras model (from `profile`)."""
    report = profile(model)
    return Cost(macs=int(report.macs), params=int(report.params))


@dataclasses.dataclass(frozen=True)
class Budget:
    """Upper limits on what the compressed model may cost.

    Give each limit either absolutely (`macs=2_000_000`) or as a fraction
    of the uncompressed model's (`macs_ratio=0.5`); every limit given must
    hold.

    Args:
        macs: Most MACs per example, an int.
        macs_ratio: Most MACs as a fraction of the original model's, in
            `(0, 1]`.
        params: Most parameters, an int.
        params_ratio: Most parameters as a fraction of the original's.

    Example:

    ```python
    budget = Budget(macs_ratio=0.5)
    limits = budget.limits(measure_cost(model))  # {"macs": ...}
    ```
    """

    macs: int | None = None
    macs_ratio: float | None = None
    params: int | None = None
    params_ratio: float | None = None

    def __post_init__(self):
        given = False
        for kind in COST_UNITS:
            absolute = getattr(self, kind)
            ratio = getattr(self, f"{kind}_ratio")
            if absolute is not None and ratio is not None:
                raise ValueError(
                    f"Give `{kind}` or `{kind}_ratio`, not both. Received: "
                    f"{kind}={absolute!r}, {kind}_ratio={ratio!r}"
                )
            if absolute is not None:
                if isinstance(absolute, bool) or not (
                    isinstance(absolute, int) and absolute > 0
                ):
                    raise ValueError(
                        f"`{kind}` must be a positive int ({COST_UNITS[kind]}"
                        f"). Received: {kind}={absolute!r}"
                    )
                given = True
            if ratio is not None:
                if isinstance(ratio, bool) or not (
                    isinstance(ratio, (int, float)) and 0 < ratio <= 1
                ):
                    raise ValueError(
                        f"`{kind}_ratio` must be a fraction in (0, 1] of the "
                        f"original model's {COST_UNITS[kind]}. Received: "
                        f"{kind}_ratio={ratio!r}"
                    )
                given = True
        if not given:
            raise ValueError(
                "A Budget needs at least one limit: "
                + ", ".join(f"`{k}` or `{k}_ratio`" for k in COST_UNITS)
                + "."
            )

    def limits(self, reference):
        """`{kind: most allowed}` in absolute units, for the kinds given.

        Args:
            reference: The `Cost` of the uncompressed model.
        """
        limits = {}
        for kind in COST_UNITS:
            if getattr(self, kind) is not None:
                limits[kind] = getattr(self, kind)
            elif getattr(self, f"{kind}_ratio") is not None:
                limits[kind] = getattr(self, f"{kind}_ratio") * getattr(reference, kind)
        return limits

    def allows(self, cost, reference):
        """Whether `cost` is within every limit."""
        return all(
            getattr(cost, kind) <= limit
            for kind, limit in self.limits(reference).items()
        )

    def slack(self, cost, reference):
        """The smallest `limit / cost` over the limits: >= 1 when within."""
        return min(
            limit / max(getattr(cost, kind), 1)
            for kind, limit in self.limits(reference).items()
        )

    def __str__(self):
        parts = []
        for kind in COST_UNITS:
            if getattr(self, kind) is not None:
                parts.append(f"{kind} <= {getattr(self, kind):,}")
            elif getattr(self, f"{kind}_ratio") is not None:
                parts.append(f"{kind} <= {getattr(self, f'{kind}_ratio'):g}x")
        return ", ".join(parts)
