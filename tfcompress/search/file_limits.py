"""A `Budget`'s limits on a `.tflite` file, as the precision search reads them.

Precision changes neither MACs nor parameters, only what the file weighs
and how fast LiteRT runs it, so a precision search takes a `Budget` with
`tflite_bytes(_ratio)` and / or `latency_ms` / `latency_ratio` limits only.
Ratios are to the float32 file of the same model; latency ratios are
measured side by side with it, so that noise on a shared machine hits both
files alike.
"""

import dataclasses

from tfcompress.search.budget import LITERT_KINDS
from tfcompress.search.budget import RATIO_FIELDS
from tfcompress.search.budget import Budget


@dataclasses.dataclass(frozen=True)
class FileLimits:
    """The file limits of a `Budget`, checked against `{kind: value}` costs.

    Attributes:
        budget: The `Budget` (only `tflite_bytes` and `latency_ms` limits).
    """

    budget: Budget

    @classmethod
    def of(cls, budget):
        """`FileLimits` of `budget`; raises if it is not a file-only `Budget`."""
        if not isinstance(budget, Budget):
            raise ValueError(
                "`budget` must be a tfcompress.search.Budget with file limits, "
                "e.g. Budget(tflite_bytes_ratio=0.4) or Budget(latency_ratio=0.8)"
                f". Received: budget={budget!r}"
            )
        other = [
            kind
            for kind in ("macs", "params")
            if getattr(budget, kind) is not None
            or getattr(budget, RATIO_FIELDS[kind]) is not None
        ]
        if other:
            raise ValueError(
                "A precision search does not change MACs or parameters; bound "
                "the file instead: Budget(tflite_bytes_ratio=...) or "
                f"Budget(latency_ratio=...). Received: budget={budget!r}"
            )
        return cls(budget)

    @property
    def kinds(self):
        """The cost kinds bounded: `"tflite_bytes"`, `"latency_ms"`."""
        return tuple(
            kind
            for kind in LITERT_KINDS
            if getattr(self.budget, kind) is not None
            or getattr(self.budget, RATIO_FIELDS[kind]) is not None
        )

    def limits(self, reference):
        """`{kind: most allowed}` in absolute units.

        Args:
            reference: `{kind: the float file's cost}` for the kinds given.
        """
        limits = {}
        for kind in self.kinds:
            absolute = getattr(self.budget, kind)
            if absolute is None:
                absolute = getattr(self.budget, RATIO_FIELDS[kind]) * reference[kind]
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
        return str(self.budget)
