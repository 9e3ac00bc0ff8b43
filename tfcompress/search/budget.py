"""What a compressed model may cost: `Budget`.

A budget is stated in the units the user cares about, absolute or as a
fraction of the uncompressed model's: MACs and parameters (counted on the
Keras model), and the `.tflite` file's bytes and LiteRT latency (measured
on an exported file, see `tfcompress.search.litert_cost`).
`Budget.allows(cost, reference)` checks a candidate's `Cost` against it.
"""

import dataclasses
import math

from tfcompress.analysis import profile

# The costs a budget can bound, with the unit each is stated in.
COST_UNITS = {
    "macs": "MACs per example",
    "params": "parameters",
    "tflite_bytes": "bytes of the .tflite file",
    "latency_ms": "milliseconds per LiteRT call",
}
# Costs that need an exported file to measure (the others are counted on
# the Keras model).
LITERT_KINDS = ("tflite_bytes", "latency_ms")
# Ratio fields are `<kind>_ratio`, except latency's (`latency_ratio`).
RATIO_FIELDS = {
    "macs": "macs_ratio",
    "params": "params_ratio",
    "tflite_bytes": "tflite_bytes_ratio",
    "latency_ms": "latency_ratio",
}


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one model costs.

    Attributes:
        macs: MACs per example.
        params: Parameters.
        tflite_bytes: Bytes of its `.tflite` file, or `None` when no file
            was measured.
        latency_ms: Median LiteRT latency of that file, or `None`.
        latency_ratio: That latency / the uncompressed model's float file's,
            timed side by side in the same run (so noise on a shared
            machine hits both alike), or `None`.
    """

    macs: int
    params: int
    tflite_bytes: int | None = None
    latency_ms: float | None = None
    latency_ratio: float | None = None

    def ratio_to(self, reference):
        """`{kind: self / reference}` for every cost kind measured.

        Latency's ratio is the side-by-side one (`latency_ratio`).
        """
        ratios = {
            kind: getattr(self, kind) / max(getattr(reference, kind), 1)
            for kind in ("macs", "params")
        }
        if self.tflite_bytes is not None and reference.tflite_bytes:
            ratios["tflite_bytes"] = self.tflite_bytes / reference.tflite_bytes
        if self.latency_ratio is not None:
            ratios["latency_ms"] = self.latency_ratio
        return ratios


def measure_cost(model):
    """Returns the MACs and parameters of a built Keras model (`profile`)."""
    report = profile(model)
    return Cost(macs=int(report.macs), params=int(report.params))


@dataclasses.dataclass(frozen=True)
class Budget:
    """Upper limits on what the compressed model may cost.

    Give each limit either absolutely (`macs=2_000_000`) or as a fraction
    of the uncompressed model's (`macs_ratio=0.5`); every limit given must
    hold. File bytes and latency are measured on the candidate's `.tflite`
    file (float32, or int8 when the search is told the model will be
    quantized) and their ratios are to the uncompressed model's float32
    file, measured in the same run.

    Args:
        macs: Most MACs per example, an int.
        macs_ratio: Most MACs as a fraction of the original model's, in
            `(0, 1]`.
        params: Most parameters, an int.
        params_ratio: Most parameters as a fraction of the original's.
        tflite_bytes: Most bytes of the `.tflite` file, an int.
        tflite_bytes_ratio: Most file bytes as a fraction of the original
            model's float32 file.
        latency_ms: Most milliseconds per LiteRT call (median, batch 1),
            a number.
        latency_ratio: Most latency as a fraction of the original model's
            float32 file's, timed side by side with it.

    Example:

    ```python
    budget = Budget(macs_ratio=0.5)
    limits = budget.limits(measure_cost(model))  # {"macs": ...}
    budget = Budget(latency_ratio=0.33)  # a third of the float file's time
    ```
    """

    macs: int | None = None
    macs_ratio: float | None = None
    params: int | None = None
    params_ratio: float | None = None
    tflite_bytes: int | None = None
    tflite_bytes_ratio: float | None = None
    latency_ms: float | None = None
    latency_ratio: float | None = None

    def __post_init__(self):
        given = False
        for kind in COST_UNITS:
            absolute = getattr(self, kind)
            ratio_field = RATIO_FIELDS[kind]
            ratio = getattr(self, ratio_field)
            if absolute is not None and ratio is not None:
                raise ValueError(
                    f"Give `{kind}` or `{ratio_field}`, not both. Received: "
                    f"{kind}={absolute!r}, {ratio_field}={ratio!r}"
                )
            if absolute is not None:
                _check_absolute(kind, absolute)
                given = True
            if ratio is not None:
                if (
                    isinstance(ratio, bool)
                    or not isinstance(ratio, (int, float))
                    or math.isnan(ratio)
                    or not 0 < ratio <= 1
                ):
                    raise ValueError(
                        f"`{ratio_field}` must be a fraction in (0, 1] of the "
                        f"original model's {COST_UNITS[kind]}. Received: "
                        f"{ratio_field}={ratio!r}"
                    )
                given = True
        if not given:
            raise ValueError(
                "A Budget needs at least one limit: "
                + ", ".join(f"`{k}` or `{RATIO_FIELDS[k]}`" for k in COST_UNITS)
                + "."
            )

    @property
    def needs_litert(self):
        """Whether a limit is on the `.tflite` file (bytes or latency)."""
        return any(
            getattr(self, kind) is not None
            or getattr(self, RATIO_FIELDS[kind]) is not None
            for kind in LITERT_KINDS
        )

    @property
    def needs_latency(self):
        """Whether a limit is on the LiteRT latency."""
        return self.latency_ms is not None or self.latency_ratio is not None

    def limits(self, reference):
        """`{kind: most allowed}` in absolute units, for the kinds given.

        Args:
            reference: The `Cost` of the uncompressed model (with its file's
                bytes and latency for those limits).
        """
        limits = {}
        for kind in COST_UNITS:
            ratio = getattr(self, RATIO_FIELDS[kind])
            if getattr(self, kind) is not None:
                limits[kind] = getattr(self, kind)
            elif ratio is not None and getattr(reference, kind) is not None:
                limits[kind] = ratio * getattr(reference, kind)
        return limits

    def _checks(self, cost, reference):
        """`(kind, value, limit)` for every limit: what is compared."""
        checks = []
        ratios = cost.ratio_to(reference)
        for kind in COST_UNITS:
            ratio = getattr(self, RATIO_FIELDS[kind])
            if getattr(self, kind) is not None:
                value = getattr(cost, kind)
                limit = getattr(self, kind)
            elif ratio is not None:
                value, limit = ratios.get(kind), ratio
            else:
                continue
            if value is None:
                raise ValueError(
                    f"The budget limits {COST_UNITS[kind]}, but the cost was "
                    f"not measured: {cost!r}. Measure candidates with "
                    "`tfcompress.search.LiteRTCostMeter`."
                )
            checks.append((kind, value, limit))
        return checks

    def allows(self, cost, reference):
        """Whether `cost` is within every limit."""
        return all(value <= limit for _, value, limit in self._checks(cost, reference))

    def slack(self, cost, reference):
        """The smallest `limit / cost` over the limits: >= 1 when within."""
        return min(
            limit / max(value, 1e-12) for _, value, limit in self._checks(cost, reference)
        )

    def __str__(self):
        parts = []
        for kind in COST_UNITS:
            ratio = getattr(self, RATIO_FIELDS[kind])
            name = "latency" if kind == "latency_ms" else kind
            if getattr(self, kind) is not None:
                value = getattr(self, kind)
                shown = f"{value:g} ms" if kind == "latency_ms" else f"{value:,}"
                parts.append(f"{name} <= {shown}")
            elif ratio is not None:
                parts.append(f"{name} <= {ratio:g}x")
        return ", ".join(parts)


def _check_absolute(kind, value):
    if kind == "latency_ms":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or math.isnan(value)
            or not value > 0
        ):
            raise ValueError(
                f"`latency_ms` must be a positive number ({COST_UNITS[kind]}"
                f"). Received: latency_ms={value!r}"
            )
        return
    if isinstance(value, bool) or not (isinstance(value, int) and value > 0):
        raise ValueError(
            f"`{kind}` must be a positive int ({COST_UNITS[kind]}). "
            f"Received: {kind}={value!r}"
        )
