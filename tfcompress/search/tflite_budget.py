"""What a `.tflite` file may cost: `TFLiteBudget` (bytes, LiteRT latency).

Precision changes neither MACs nor parameters, only what the file weighs
and how fast LiteRT runs it, so a precision search is bounded in those
units. A ratio is taken to the float32 file of the same model; latency
ratios are measured side by side with it (`compare_latency`), so that
noise on a shared machine hits both files alike.
"""

import dataclasses
import math

# The costs a file budget can bound, with the unit each is stated in.
FILE_COST_UNITS = {"tflite_bytes": "bytes", "latency_ms": "milliseconds"}
# Each absolute limit's ratio twin (a fraction of the float file's).
_RATIO_NAMES = {"tflite_bytes": "tflite_bytes_ratio", "latency_ms": "latency_ratio"}


@dataclasses.dataclass(frozen=True)
class TFLiteBudget:
    """Upper limits on a `.tflite` file's size and LiteRT latency.

    Give each limit absolutely or as a fraction of the float32 file's;
    every limit given must hold.

    Args:
        tflite_bytes: Most bytes of the file (as written, not gzipped).
        tflite_bytes_ratio: Most bytes as a fraction of the float file's,
            in `(0, 1]`.
        latency_ms: Most median LiteRT latency of one example, in
            milliseconds, on this CPU (`num_threads` of the search).
        latency_ratio: Most latency as a fraction of the float file's,
            measured side by side with it, in `(0, 1]`.

    Example:

    ```python
    budget = TFLiteBudget(tflite_bytes_ratio=0.4)
    ```
    """

    tflite_bytes: int | None = None
    tflite_bytes_ratio: float | None = None
    latency_ms: float | None = None
    latency_ratio: float | None = None

    def __post_init__(self):
        given = False
        for kind, ratio_name in _RATIO_NAMES.items():
            absolute = getattr(self, kind)
            ratio = getattr(self, ratio_name)
            if absolute is not None and ratio is not None:
                raise ValueError(
                    f"Give `{kind}` or `{ratio_name}`, not both. Received: "
                    f"{kind}={absolute!r}, {ratio_name}={ratio!r}"
                )
            if absolute is not None:
                if isinstance(absolute, bool) or not (
                    isinstance(absolute, (int, float))
                    and math.isfinite(absolute)
                    and absolute > 0
                ):
                    raise ValueError(
                        f"`{kind}` must be a positive number of "
                        f"{FILE_COST_UNITS[kind]}. Received: {kind}={absolute!r}"
                    )
                given = True
            if ratio is not None:
                if isinstance(ratio, bool) or not (
                    isinstance(ratio, (int, float)) and 0 < ratio <= 1
                ):
                    raise ValueError(
                        f"`{ratio_name}` must be a fraction in (0, 1] of the "
                        f"float file's {FILE_COST_UNITS[kind]}. Received: "
                        f"{ratio_name}={ratio!r}"
                    )
                given = True
        if not given:
            raise ValueError(
                "A TFLiteBudget needs at least one limit: `tflite_bytes` or "
                "`tflite_bytes_ratio`, `latency_ms` or `latency_ratio`."
            )

    @property
    def kinds(self):
        """The cost kinds bounded: `"tflite_bytes"`, `"latency_ms"`."""
        return tuple(
            kind
            for kind, ratio_name in _RATIO_NAMES.items()
            if getattr(self, kind) is not None or getattr(self, ratio_name) is not None
        )

    def limits(self, reference):
        """`{kind: most allowed}` in absolute units.

        Args:
            reference: `{kind: the float file's cost}` for the kinds given.
        """
        limits = {}
        for kind in self.kinds:
            absolute = getattr(self, kind)
            if absolute is None:
                absolute = getattr(self, _RATIO_NAMES[kind]) * reference[kind]
            limits[kind] = absolute
        return limits

    def violations(self, cost, reference):
        """`[cost / limit - 1 for each limit]`: all <= 0 when within."""
        return [
            cost[kind] / limit - 1.0
            for kind, limit in self.limits(reference).items()
        ]

    def allows(self, cost, reference):
        """Whether `cost` (`{kind: value}`) is within every limit."""
        return all(v <= 1e-12 for v in self.violations(cost, reference))

    def __str__(self):
        parts = []
        for kind, ratio_name in _RATIO_NAMES.items():
            if getattr(self, kind) is not None:
                parts.append(f"{kind} <= {getattr(self, kind):,}")
            elif getattr(self, ratio_name) is not None:
                parts.append(f"{kind} <= {getattr(self, ratio_name):g}x float")
        return ", ".join(parts)
