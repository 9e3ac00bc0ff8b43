"""Weight clustering (weight sharing) for Keras 3.

- `cluster_weights`: a copy of a model whose kernels each hold
  `number_of_clusters` shared values (k-means++, linear or density-based
  centroids, per kernel or per channel, a pruned kernel's zeros kept),
  with a `ClusteringReport`.
- Fine-tuning during `fit`: `tfcompress.callbacks.WeightClustering` keeps
  the clusters and trains the centroids (straight-through), nothing
  wrapped; on a `quantize_model` copy it is cluster-preserving QAT, and
  with a pruned model's zeros held, PCQAT.
- `share_layers`: parameter sharing across layers; each group of layers
  with one configuration becomes one layer, stored once in the `.tflite`
  file (`shareable_groups` lists the groups).
- `strip`: a plain copy and its report. `KernelClusters`: the state on one
  kernel, for a custom training loop. `initial_centroids`: the numpy side.
"""

from tfcompress.clustering.centroids import CENTROID_INITIALIZATIONS
from tfcompress.clustering.centroids import initial_centroids
from tfcompress.clustering.cluster_weights import cluster_weights
from tfcompress.clustering.cluster_weights import strip
from tfcompress.clustering.clustering_report import ClusteringReport
from tfcompress.clustering.clustering_report import KernelClustering
from tfcompress.clustering.clustering_report import clustering_report
from tfcompress.clustering.kernel_clusters import KernelClusters
from tfcompress.clustering.kernel_clusters import is_clustered
from tfcompress.clustering.kernel_clusters import release_clusters
from tfcompress.clustering.layer_sharing import LayerSharingReport
from tfcompress.clustering.layer_sharing import SharedGroup
from tfcompress.clustering.layer_sharing import share_layers
from tfcompress.clustering.layer_sharing import shareable_groups

__all__ = [
    "CENTROID_INITIALIZATIONS",
    "ClusteringReport",
    "KernelClustering",
    "KernelClusters",
    "LayerSharingReport",
    "SharedGroup",
    "cluster_weights",
    "clustering_report",
    "initial_centroids",
    "is_clustered",
    "release_clusters",
    "share_layers",
    "shareable_groups",
    "strip",
]
