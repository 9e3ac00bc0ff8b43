"""The rank of each chosen layer: as given, or to meet a MACs target."""

import bisect
import numbers

from tfcompress.decomposition.report import SkippedLayer
from tfcompress.decomposition.report import format_rank


def ranks_from_argument(candidates, rank):
    """Candidates with their rank set, and those skipped."""
    kept, skipped = [], []
    for candidate in candidates:
        name = candidate.layer.name
        method = candidate.method
        if isinstance(rank, dict):
            value, argument = rank[name], f"rank[{name!r}]"
        else:
            value, argument = rank, "rank"
        concrete = method.resolve_rank(candidate.layer, value, argument)
        full = method.full_rank(candidate.layer)
        if method.exceeds_full_rank(candidate.layer, concrete):
            message = (
                f"`{argument}` of layer {name!r} must be at most its full "
                f"rank {format_rank(full)} for {method.name!r}. Received: "
                f"{argument}={value!r}"
            )
            if candidate.explicit:
                raise ValueError(message)
            skipped.append(
                SkippedLayer(
                    name,
                    f"rank {format_rank(concrete)} exceeds the full rank "
                    f"{format_rank(full)}",
                )
            )
            continue
        macs = candidate.macs_after(concrete)
        if macs >= candidate.macs_before:
            skipped.append(
                SkippedLayer(
                    name,
                    f"{method.name} rank {format_rank(concrete)} needs "
                    f"{macs:,} MACs, not fewer than the original's "
                    f"{candidate.macs_before:,}",
                )
            )
            continue
        candidate.rank = concrete
        kept.append(candidate)
    return kept, skipped


def check_target(target):
    if (
        not isinstance(target, numbers.Real)
        or isinstance(target, bool)
        or not 0 < target < 1
    ):
        raise ValueError(
            "`target_macs_ratio` must be a float in (0, 1), the fraction of "
            "the model's MACs to keep. Received: "
            f"target_macs_ratio={target!r}"
        )


def ranks_for_target(candidates, total_macs, target):
    """Ranks that bring the model's MACs to at most `target * total_macs`.

    Every candidate keeps the same fraction f of its MACs (its largest rank
    within `f * macs_before`, at least its smallest rank); f is the
    largest fraction that meets the target, found by bisection, since the
    total grows with f.
    """
    options, skipped = [], []
    for candidate in candidates:
        ranks = [
            rank
            for rank in candidate.method.candidate_ranks(candidate.layer)
            if candidate.macs_after(rank) < candidate.macs_before
        ]
        if not ranks:
            skipped.append(
                SkippedLayer(
                    candidate.layer.name,
                    f"no {candidate.method.name} rank needs fewer MACs than "
                    f"the original's {candidate.macs_before:,}",
                )
            )
            continue
        options.append((candidate, ranks, [candidate.macs_after(r) for r in ranks]))
    kept_macs = total_macs - sum(c.macs_before for c, _, _ in options)

    def choose(fraction):
        chosen = []
        for candidate, ranks, macs in options:
            index = bisect.bisect_right(macs, fraction * candidate.macs_before)
            chosen.append(max(index - 1, 0))
        total = kept_macs + sum(
            macs[i] for (_, _, macs), i in zip(options, chosen)
        )
        return chosen, total

    budget = target * total_macs
    chosen, total = choose(0.0)
    if total > budget:
        raise ValueError(
            f"`target_macs_ratio` {target} is not reachable: with every "
            "chosen layer at its smallest rank the model keeps "
            f"{total / total_macs:.3f} of its MACs. Choose more layers or a "
            f"larger ratio. Received: target_macs_ratio={target!r}"
        )
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if choose(middle)[1] <= budget:
            low = middle
        else:
            high = middle
    chosen, _ = choose(low)
    kept = []
    for (candidate, ranks, _), index in zip(options, chosen):
        candidate.rank = ranks[index]
        kept.append(candidate)
    return kept, skipped
