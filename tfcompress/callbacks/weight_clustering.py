"""Weight clustering during `model.fit`, without wrapping the model."""

import contextlib

import keras

from tfcompress.clustering.cluster_targets import check_arguments
from tfcompress.clustering.cluster_targets import make_clusters
from tfcompress.clustering.clustering_report import clustering_report


class WeightClustering(keras.callbacks.Callback):
    """Clusters the model's kernels and trains the shared values in `fit`.

    When `fit` begins, each selected kernel's entries are grouped into
    `number_of_clusters` clusters (a kernel that already holds that few
    distinct values, such as one from `tfcompress.clustering.
    cluster_weights` or an earlier `fit`, keeps its clusters as they are)
    and set to their centroids. A constraint (a
    `tfcompress.clustering.KernelClusters` per kernel) then sets every
    entry back to its cluster's mean after each optimizer update, so the
    centroids train on the mean update of their entries (straight-through
    gradients) while the assignments stay fixed, as in Deep Compression.
    When `fit` ends the constraints are released: the model is a plain
    model whose kernels hold the shared values. Nothing is wrapped or
    cloned, as with `MagnitudePruning`.

    Collaborative optimization: on a pruned model (`preserve_sparsity`,
    the default) the zeros are a cluster of their own, fixed at 0. On a
    model from `tfcompress.quantization.quantize_model`, next to
    `QuantizationAwareTraining`, it is cluster-preserving QAT (CQAT): the
    kernels keep `number_of_clusters` float values, which the per-channel
    int8 file stores as at most that many integers per output channel; on
    a pruned and clustered model it is PCQAT.

    Args:
        number_of_clusters: Distinct values per kernel (per output channel
            with `per_channel`), 2 to 256. Defaults to `16`.
        centroid_initialization: `"kmeans++"`, `"linear"` or `"density"`.
            Defaults to `"kmeans++"`.
        per_channel: Cluster each output channel on its own. Defaults to
            `False`.
        preserve_sparsity: Keep zeros as a fixed cluster (counted among
            `number_of_clusters`). Defaults to `True`.
        filters: Which kernels (see `MagnitudePruning`). Defaults to
            `None`: every prunable kernel.
        min_weights: Skip kernels with fewer entries. Defaults to `0`.

    Attributes:
        clustered: Paths of the clustered kernels (after `fit` begins).
        skipped: `(path, reason)` for the others.

    Example:

    ```python
    model.fit(x, y, epochs=2, callbacks=[
        tfcompress.callbacks.WeightClustering(number_of_clusters=16)])
    plain, report = tfcompress.clustering.strip(model)
    ```
    """

    def __init__(
        self,
        number_of_clusters=16,
        centroid_initialization="kmeans++",
        per_channel=False,
        preserve_sparsity=True,
        filters=None,
        min_weights=0,
    ):
        super().__init__()
        check_arguments(
            number_of_clusters, centroid_initialization, per_channel,
            preserve_sparsity, min_weights,
        )
        self.number_of_clusters = int(number_of_clusters)
        self.centroid_initialization = centroid_initialization
        self.per_channel = per_channel
        self.preserve_sparsity = preserve_sparsity
        self.filters = filters
        self.min_weights = int(min_weights)
        self.clustered = []
        self.skipped = []
        self._clusters = []
        self._selected_for = None
        self._plain_function = None
        self._clustered_function = None

    def on_train_begin(self, logs=None):
        if getattr(self.model, "optimizer", None) is None:
            raise ValueError(
                "WeightClustering trains the centroids through the model's "
                "optimizer: call `model.compile(optimizer=...)` before `fit`."
            )
        if self._selected_for is not self.model:
            strategy = getattr(self.model, "distribute_strategy", None)
            with strategy.scope() if strategy else contextlib.nullcontext():
                weights, self._clusters, self.skipped = make_clusters(
                    self.model,
                    self.filters,
                    self.min_weights,
                    number_of_clusters=self.number_of_clusters,
                    centroid_initialization=self.centroid_initialization,
                    per_channel=self.per_channel,
                    preserve_sparsity=self.preserve_sparsity,
                )
            self.clustered = [w.path for w in weights]
            self._plain_function = self._clustered_function = None
            self._selected_for = self.model
        for clusters in self._clusters:
            # Again at each `fit`: weights set since (a restored
            # checkpoint) are clustered anew, shared values kept as they are.
            clusters.initialize()
            clusters.attach()
        self._use_clustered_train_function()

    def _use_clustered_train_function(self):
        """A train function traced with the constraints (kept for the next
        `fit` while the model's own function is unchanged)."""
        plain = self.model.train_function
        if (
            self._clustered_function is None
            or plain is not self._plain_function
        ):
            self._plain_function = plain
            self.model.make_train_function(force=True)
            self._clustered_function = self.model.train_function
        self.model.train_function = self._clustered_function

    def on_train_end(self, logs=None):
        for clusters in self._clusters:
            clusters.release()
        self.model.train_function = self._plain_function

    def report(self):
        """The model's distinct values per kernel, a `ClusteringReport`."""
        return clustering_report(
            self.model, self.number_of_clusters, set(self.clustered)
        )
