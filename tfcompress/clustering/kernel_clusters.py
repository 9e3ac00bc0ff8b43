"""Weight sharing on a kernel variable, applied as the kernel's constraint.

`KernelClusters` is to clustering what `tfcompress.pruning.KernelMask` is
to pruning: state beside the kernel (which cluster each entry belongs to),
applied by a constraint that Keras optimizers run after every update, so
nothing wraps the layer. The kernel itself holds the shared values; after
each optimizer update the constraint sets every entry to the mean of its
cluster. Each centroid so moves by the mean of its entries' updates: the
straight-through gradient of the shared value (Deep Compression, Han et
al. 2016, sums the entries' gradients; the mean is the same direction at
a learning rate that does not grow with the cluster). Assignments are fixed
once made, as in Deep Compression.
"""

import keras
import numpy as np

from tfcompress.clustering.centroids import initial_centroids
from tfcompress.clustering.centroids import nearest_centroid


class _ClusterConstraint(keras.constraints.Constraint):
    """Sets each entry to its cluster's mean, after the inner constraint.

    Never serialized: the layer's config keeps its own `kernel_constraint`.
    """

    def __init__(self, clusters, inner=None):
        self.clusters = clusters
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        c = self.clusters
        flat = keras.ops.reshape(w, (-1,))
        segments = keras.ops.reshape(c.segments, (-1,))
        sums = keras.ops.segment_sum(
            flat, segments, num_segments=c.num_segments
        )
        # `scale` is 1 / the cluster's size, and 0 for the clusters of
        # zeros (sparsity preserved: they stay 0) and empty ones.
        means = sums * keras.ops.cast(c.scale, w.dtype)
        return keras.ops.reshape(keras.ops.take(means, segments), w.shape)


class KernelClusters:
    """Shared values (clusters) for one kernel variable.

    `initialize()` clusters the kernel's current values (or, for a kernel
    that already has at most `number_of_clusters` distinct values per
    group, takes them as they are) and writes the centroids into it;
    `attach()` installs the constraint that keeps it clustered through
    training, `release()` removes it (the shared values stay).

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
        self.scale = None
        self.num_segments = 0

    def _groups(self, values):
        """The kernel as `(groups, entries)`: one row per channel or one."""
        if not self.per_channel:
            return values.reshape(1, -1), None
        channels = int(np.prod(values.shape[-self.channel_axes:]))
        moved = values.reshape(-1, channels).T
        return moved, channels

    def initialize(self, seed=0):
        """Clusters the kernel's values and writes the centroids into it.

        Returns:
            The number of distinct values now in the kernel.
        """
        values = keras.ops.convert_to_numpy(self.kernel).astype(np.float64)
        groups, channels = self._groups(values)
        slots = self.number_of_clusters + 1  # The last: the zeros.
        segments = np.empty(groups.shape, dtype=np.int32)
        means = np.zeros((groups.shape[0], slots))
        for g, row in enumerate(groups):
            zeros = (row == 0) if self.preserve_sparsity else np.zeros(
                row.shape, bool
            )
            count = self.number_of_clusters - int(zeros.any())
            centroids = initial_centroids(
                row[~zeros], count, self.centroid_initialization, seed
            )
            index = np.full(row.shape, self.number_of_clusters)
            if (~zeros).any():
                index[~zeros] = nearest_centroid(row[~zeros], centroids)
            segments[g] = g * slots + index
            means[g, : len(centroids)] = centroids
        flat_means = means.ravel()
        counts = np.bincount(segments.ravel(), minlength=flat_means.size)
        scale = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        scale = scale.reshape(-1, slots)
        scale[:, self.number_of_clusters] = 0.0  # Zeros stay zero.
        clustered = flat_means[segments]
        if channels is not None:
            segments = segments.T
            clustered = clustered.T
        self.num_segments = int(flat_means.size)
        shape = values.shape
        if self.segments is None:
            self.segments = keras.Variable(
                segments.reshape(shape), trainable=False, dtype="int32",
                name="cluster_segments",
            )
            self.scale = keras.Variable(
                scale.ravel().astype("float32"), trainable=False,
                name="cluster_scale",
            )
        else:
            self.segments.assign(segments.reshape(shape))
            self.scale.assign(scale.ravel().astype("float32"))
        self.kernel.assign(clustered.reshape(shape).astype("float32"))
        return len(np.unique(clustered))

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
        """The shared values now, `(groups, clusters)` (NaN: empty)."""
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
