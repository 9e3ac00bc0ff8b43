"""Which channels structured pruning keeps: the pruning plan.

`Plan` joins the channel sets that a `ChannelTrace` ties into groups (pruned as
one), chooses how many channels each selected group keeps from its
sparsity, `min_channels` and `round_to`, leaves alone the groups that a
layer rule forbids pruning, and then keeps the channels of highest
importance. The rebuild reads the kept channels from it.
"""

import collections
import math

import numpy as np


class Plan:
    """Groups of tied channel sets, their counts and their kept channels."""

    def __init__(self, trace, min_channels, round_to):
        self.trace = trace
        self.min_channels = min_channels
        self.round_to = round_to
        parent = list(range(len(trace.sets)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b, _ in trace.ties:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        self.root = [find(i) for i in range(len(trace.sets))]
        self.groups = {}
        for channel_set in trace.sets:
            self.groups.setdefault(self.root[channel_set.id], []).append(
                channel_set
            )
        # Blocks of a group that must keep equal counts (grouped filters).
        self.blocks = {
            root: math.lcm(
                *(s.unit.groups for s in members if s.unit is not None), 1
            )
            for root, members in self.groups.items()
        }
        self.tied_by = collections.defaultdict(list)
        for a, _, layer_name in trace.ties:
            names = self.tied_by[self.root[a]]
            if layer_name not in names:
                names.append(layer_name)
        # Left alone by a layer rule (see `ChannelTrace.constraints`).
        self.constrained = {}
        self.target = {}
        self.sparsity = {}
        offsets = np.cumsum([0] + [s.size for s in trace.sets])
        self.offsets = offsets[:-1]
        self.kept = np.ones(offsets[-1], dtype=bool)

    def frozen_reason(self, root):
        """Why a group is left alone, or `None`."""
        if root in self.constrained:
            return self.constrained[root]
        for channel_set in self.groups[root]:
            if channel_set.frozen is not None:
                return channel_set.frozen
        return None

    def choose_counts(self, sparsity_per_unit):
        """Sets how many channels each selected group keeps."""
        for unit, sparsity in sparsity_per_unit.items():
            root = self.root[unit.channel_set.id]
            self.sparsity[root] = max(self.sparsity.get(root, 0.0), sparsity)
        while True:
            self.target = {}
            for root, sparsity in self.sparsity.items():
                if self.frozen_reason(root) is None:
                    size = self.groups[root][0].size
                    self.target[root] = _kept_count(
                        size,
                        sparsity,
                        self.min_channels,
                        math.lcm(self.round_to, self.blocks[root]),
                    )
            self._keep_first()
            if not self._apply_constraints():
                return

    def _keep_first(self):
        """Provisional choice: only the counts matter to the constraints."""
        self.kept[:] = True
        for root, count in self.target.items():
            for channel_set in self.groups[root]:
                start = self.offsets[channel_set.id]
                self.kept[start + count : start + channel_set.size] = False

    def _apply_constraints(self):
        """Leaves alone one group for the first failed layer rule, if any.

        Returns:
            Whether a group was left alone (the counts must be redone).
        """
        for constraint in self.trace.constraints:
            failure = constraint(self)
            if failure is None:
                continue
            reason, candidates = failure
            for channel_set in candidates:
                root = self.root[channel_set.id]
                # Only a group that loses channels can change the counts.
                if self.target.get(root, channel_set.size) < channel_set.size:
                    self.constrained[root] = reason
                    del self.target[root]
                    return True
            # With none of them pruned, the layer is as it was: valid.
            raise RuntimeError(f"Internal error: unresolved rule: {reason}")
        return False

    def groups_to_prune(self):
        """`{root: [units]}` of the groups that lose channels."""
        return {
            root: [s.unit for s in self.groups[root] if s.unit is not None]
            for root, count in self.target.items()
            if count < self.groups[root][0].size
        }

    def choose_channels(self, scores):
        """Keeps the `target` channels of highest score in each group."""
        self.kept[:] = True
        for root, score in scores.items():
            blocks = self.blocks[root]
            count = self.target[root] // blocks
            # Stable: among equal scores, the lower index is kept; each
            # block (a grouped convolution's group) keeps `count`.
            per_block = np.reshape(score, (blocks, -1))
            keep = np.sort(np.argsort(-per_block, axis=1, kind="stable")[:, :count])
            mask = np.zeros(per_block.shape, dtype=bool)
            np.put_along_axis(mask, keep, True, axis=1)
            mask = mask.reshape(-1)
            for channel_set in self.groups[root]:
                start = self.offsets[channel_set.id]
                self.kept[start : start + channel_set.size] = mask

    def mask(self, channel_set):
        start = self.offsets[channel_set.id]
        return self.kept[start : start + channel_set.size]

    def count(self, unit):
        return int(self.mask(unit.channel_set).sum())

    def positions(self, channel_map):
        """Positions of `channel_map` whose channels are kept."""
        flat = self.offsets[channel_map.sets] + channel_map.indices
        return np.flatnonzero(self.kept[flat])

    def count_map(self, channel_map, default):
        if channel_map is None:
            return default
        return len(self.positions(channel_map))


def _kept_count(size, sparsity, min_channels, round_to):
    # The epsilon absorbs float error: 0.29 * 100 is 28.999999999999996.
    kept = max(min_channels, size - math.floor(sparsity * size + 1e-9))
    kept = math.ceil(kept / round_to) * round_to
    return min(kept, size)
