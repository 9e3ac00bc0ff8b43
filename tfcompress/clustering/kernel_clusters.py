"""Weight sharing on a kernel variable, applied as the kernel's constraint.

`KernelClusters` is to clustering what `tfcompress.pruning.KernelMask` is
to pruning: state beside the kernel (which cluster each entry belongs to),
applied by a constraint that Keras optimizers run after every update, so
nothing wraps the layer. The kernel itself holds the shared values; a float
copy of the weights beside it takes each update (straight through the
sharing, as tfmot trains its "original weights"), and after each update
its entries are assigned to their nearest centroid and the centroids set
to their clusters' means.
"""

import keras
import numpy as np

from tfcompress.clustering.centroids import initial_centroids
from tfcompress.clustering.centroids import nearest_centroid


# Where an unused centroid slot sits, far from any weight.
_UNUSED = 1e30


class _ClusterConstraint(keras.constraints.Constraint):
    """Re-clusters the kernel after each update, after the inner constraint.

    Never serialized: the layer's config keeps its own `kernel_constraint`.
    """

    def __init__(self, clusters, inner=None):
        self.clusters = clusters
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return self.clusters.step(w)


class KernelClusters:
    """Shared values (clusters) for one kernel variable.

    `initialize()` clusters the kernel's current values and writes the
    centroids into it; `attach()` installs the constraint that keeps it
    clustered through training, `release()` removes it (the shared values
    stay).

    Training, as tfmot's clustering trains (nothing wrapped here): the
    forward pass computes with the shared values (the kernel holds them),
    so each entry's gradient is the straight-through gradient of its
    shared value. After each optimizer update the constraint adds each
    entry's update to a float copy of the weights (tfmot's "original
    weights", trained straight through, here with the kernel's own
    optimizer state), assigns each of them to its nearest centroid (entries
    move between clusters as they drift), and sets every centroid to the
    mean of its weights (a k-means step): the kernel then holds the new
    centroids. Zeros kept (`preserve_sparsity`) stay in a cluster of their
    own at 0.

    Args:
        kernel: The `keras.Variable` to cluster.
        number_of_clusters: Distinct values per kernel (per output channel
            with `per_channel`), >= 2.
        centroid_initialization: `"kmeans++"`, `"linear"` or `"density"`
            (see `tfcompress.clustering.initial_centroids`).
        per_channel: Cluster each output channel (the last axis; the last
            two for a depthwise kernel, `channel_axes=2`) on its own.
        preserve_sparsity: Keep the kernel's zeros as a cluster of their
            own, fixed at 0 (it counts among `number_of_clusters`).
        channel_axes: How many trailing axes make the output channel.

    Example:

    >>> layer = keras.layers.Dense(4, use_bias=False)
    >>> layer.build((None, 8))
    >>> clusters = KernelClusters(layer.kernel, 3, "linear")
    >>> clusters.initialize()  # Distinct values now in the kernel.
    3
    >>> clusters.attach()
    >>> sgd = keras.optimizers.SGD(0.1)
    >>> sgd.apply([keras.ops.ones((8, 4))], [layer.kernel])
    >>> len(np.unique(keras.ops.convert_to_numpy(layer.kernel))) <= 3
    True
    >>> clusters.release()
    """

    def __init__(
        self,
        kernel,
        number_of_clusters,
        centroid_initialization="kmeans++",
        per_channel=False,
        preserve_sparsity=True,
        channel_axes=1,
    ):
        if not isinstance(kernel, keras.Variable):
            raise ValueError(
                "`kernel` must be a keras.Variable, such as `layer.kernel`. "
                f"Received: kernel of type {type(kernel).__name__}"
            )
        self.kernel = kernel
        self.number_of_clusters = int(number_of_clusters)
        self.centroid_initialization = centroid_initialization
        self.per_channel = per_channel
        self.preserve_sparsity = preserve_sparsity
        self.channel_axes = channel_axes
        self.segments = None
        self.centroid_values = None
        self.weights = None
        self.fixed_zero = None
        self.num_groups = 0

    @property
    def num_segments(self):
        """Clusters in all: `number_of_clusters + 1` per group (the last
        one holds the zeros kept at 0)."""
        return self.num_groups * (self.number_of_clusters + 1)

    def _groups(self, values):
        """The kernel as `(groups, entries)` and the number of channels
        (`None` for one group)."""
        if not self.per_channel:
            return values.reshape(1, -1), None
        channels = int(np.prod(values.shape[-self.channel_axes:]))
        return values.reshape(-1, channels).T, channels

    def _ungroup(self, grouped, channels, shape):
        if channels is not None:
            grouped = grouped.T
        return grouped.reshape(shape)

    def initialize(self, seed=0):
        """Clusters the kernel's values and writes the centroids into it.

        A kernel that already holds at most `number_of_clusters` distinct
        values per group keeps them as its centroids.

        Returns:
            The number of distinct values now in the kernel.
        """
        values = keras.ops.convert_to_numpy(self.kernel).astype(np.float64)
        shape = values.shape
        groups, channels = self._groups(values)
        slots = self.number_of_clusters + 1
        segments = np.empty(groups.shape, dtype=np.int32)
        group_ids = np.empty(groups.shape, dtype=np.int32)
        fixed_zero = np.zeros(groups.shape, dtype=bool)
        centroids = np.zeros((groups.shape[0], slots))
        for g, row in enumerate(groups):
            if self.preserve_sparsity:
                fixed_zero[g] = row == 0
            kept = ~fixed_zero[g]
            count = self.number_of_clusters - int(fixed_zero[g].any())
            found = initial_centroids(
                row[kept], count, self.centroid_initialization, seed
            )
            index = np.full(row.shape, self.number_of_clusters)
            if kept.any():
                index[kept] = nearest_centroid(row[kept], found)
            # Unused slots (fewer distinct values, or a slot given to the
            # zeros) sit far away: never the nearest, never in the kernel.
            centroids[g, : self.number_of_clusters] = _UNUSED
            centroids[g, : len(found)] = found
            segments[g] = g * slots + index
            group_ids[g] = g
        flat_centroids = centroids.ravel()
        clustered = flat_centroids[segments]
        self.num_groups = groups.shape[0]
        # A constant of the traced step: it only depends on the shape.
        self._group_ids = self._ungroup(group_ids, channels, shape).ravel()
        new = {
            "fixed_zero": self._ungroup(fixed_zero, channels, shape).ravel()
            .astype("float32"),
            "segments": self._ungroup(segments, channels, shape).ravel(),
            "centroid_values": flat_centroids.astype("float32"),
            "weights": values.ravel().astype("float32"),
        }
        for name, array in new.items():
            variable = getattr(self, name)
            if variable is None or tuple(variable.shape) != array.shape:
                setattr(self, name, keras.Variable(
                    array, trainable=False, dtype=array.dtype,
                    name=f"cluster_{name}",
                ))
            else:
                variable.assign(array)
        self.kernel.assign(self._ungroup(clustered, channels, shape).astype(
            "float32"))
        return len(np.unique(clustered))

    def step(self, w):
        """The constraint's work on the updated kernel `w` (see the class
        docstring); returns the re-clustered kernel."""
        k = self.number_of_clusters
        slots = k + 1
        flat = keras.ops.reshape(w, (-1,))
        previous = keras.ops.take(self.centroid_values, self.segments)
        weights = self.weights + (flat - previous)
        table = keras.ops.reshape(self.centroid_values, (-1, slots))[:, :k]
        if self.num_groups == 1:
            candidates = table  # (1, k): broadcast over the entries.
        else:
            candidates = keras.ops.take(table, self._group_ids, axis=0)
        nearest = keras.ops.argmin(
            keras.ops.abs(weights[:, None] - candidates), axis=1
        )
        base = keras.ops.convert_to_tensor(self._group_ids * slots)
        segments = keras.ops.where(
            self.fixed_zero > 0.5, base + k, base + keras.ops.cast(nearest, "int32")
        )
        sums = keras.ops.segment_sum(
            weights, segments, num_segments=self.num_segments
        )
        counts = keras.ops.segment_sum(
            keras.ops.ones_like(weights), segments,
            num_segments=self.num_segments,
        )
        centroids = keras.ops.where(
            counts > 0, sums / keras.ops.maximum(counts, 1.0),
            self.centroid_values,
        )
        # The zeros' clusters stay at 0.
        is_zero_slot = (keras.ops.arange(self.num_segments) % slots) == k
        centroids = keras.ops.where(is_zero_slot, 0.0, centroids)
        self.weights.assign(weights)
        self.segments.assign(segments)
        self.centroid_values.assign(centroids)
        return keras.ops.reshape(keras.ops.take(centroids, segments), w.shape)

    @property
    def attached(self):
        """Whether these clusters are the kernel's constraint now."""
        constraint = self.kernel.constraint
        return (
            isinstance(constraint, _ClusterConstraint)
            and constraint.clusters is self
        )

    def attach(self):
        """Makes the clustering the kernel's constraint, around its own."""
        if self.segments is None:
            raise ValueError(
                "Call `initialize()` before `attach()`: the clusters are "
                "made from the kernel's values."
            )
        release_clusters(self.kernel)
        self.kernel.constraint = _ClusterConstraint(
            self, self.kernel.constraint
        )

    def release(self):
        """Gives the kernel back its own constraint; the values stay shared."""
        release_clusters(self.kernel)

    def centroids(self):
        """The shared values now, `(groups, clusters)` (NaN: unused)."""
        values = keras.ops.convert_to_numpy(self.kernel).ravel()
        segments = keras.ops.convert_to_numpy(self.segments).ravel()
        sums = np.bincount(segments, values, minlength=self.num_segments)
        counts = np.bincount(segments, minlength=self.num_segments)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        return means.reshape(-1, self.number_of_clusters + 1)[
            :, : self.number_of_clusters
        ]


def release_clusters(variable):
    """Removes the clustering constraint on top of `variable`'s
    constraints, if there is one; returns whether one was removed."""
    constraint = variable.constraint
    if isinstance(constraint, _ClusterConstraint):
        variable.constraint = constraint.inner
        return True
    return False


def is_clustered(variable):
    """Whether a clustering constraint is `variable`'s constraint now."""
    return isinstance(variable.constraint, _ClusterConstraint)
