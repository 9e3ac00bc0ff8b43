"""`cluster_weights`: a copy of a model whose kernels share a few values;
`strip`: a plain copy of a clustered model."""

import keras

from tfcompress.clustering.cluster_targets import check_arguments
from tfcompress.clustering.cluster_targets import make_clusters
from tfcompress.clustering.clustering_report import ClusteringReport
from tfcompress.clustering.clustering_report import clustering_report
from tfcompress.clustering.kernel_clusters import release_clusters
from tfcompress.graph import cloning
from tfcompress.pruning.targets import all_prunable_weights


def cluster_weights(
    model,
    *,
    number_of_clusters=16,
    centroid_initialization="kmeans++",
    per_channel=False,
    preserve_sparsity=True,
    filters=None,
    min_weights=0,
    inplace=False,
):
    """Returns a copy of `model` whose kernels each hold a few shared values.

    Weight clustering (weight sharing; Han et al. 2016, tfmot's
    `cluster_weights`): each selected kernel's entries are grouped into
    `number_of_clusters` clusters and each entry replaced by its cluster's
    centroid. The model stays a plain Keras model (nothing wrapped), its
    kernels full-size: the gain is in storage, once the few distinct
    values are entropy-coded (`TFLiteExport.value_compression`) or zipped,
    not in compute. Fine-tune it with
    `tfcompress.callbacks.WeightClustering` (same arguments), which keeps
    the clusters and trains the centroids.

    Args:
        model: A built Keras model (any model `keras.models.clone_model`
            copies, or any model with `inplace=True`).
        number_of_clusters: Distinct values per kernel (per output channel
            with `per_channel`), 2 to 256. Defaults to `16`.
        centroid_initialization: `"kmeans++"` (scikit-learn's k-means,
            seeded with k-means++), `"linear"` or `"density"` (tfmot's
            density-based). Defaults to `"kmeans++"`.
        per_channel: Cluster each output channel on its own (as many
            values per channel; a better fit with per-channel int8).
            Defaults to `False`.
        preserve_sparsity: Keep the zeros of a pruned kernel as a cluster
            of their own, fixed at 0 (counted among `number_of_clusters`);
            a kernel without zeros is unaffected. Defaults to `True`.
        filters: Which kernels, as `MagnitudePruning`'s `filters`: `None`
            (every Dense, convolution, EinsumDense, recurrent kernel and
            Embedding table), a regular expression, a layer class, a
            callable `fn(layer) -> bool`, or a list of them.
        min_weights: Skip kernels with fewer entries. Defaults to `0`.
        inplace: Cluster `model` itself instead of a copy. Defaults to
            `False`.

    Returns:
        `(clustered_model, report)`: the model (compiled like `model`,
        fresh optimizer, when `model` is compiled) and a
        `ClusteringReport` (distinct values per kernel).

    Raises:
        ValueError: For bad arguments, a `filters` that selects no
            kernel, or a model that cannot be copied (use `inplace=True`).

    Example:

    ```python
    clustered, report = tfcompress.clustering.cluster_weights(
        model, number_of_clusters=16)
    print(report)
    clustered.fit(x, y, epochs=2, callbacks=[
        tfcompress.callbacks.WeightClustering(number_of_clusters=16)])
    ```
    """
    check_arguments(
        number_of_clusters, centroid_initialization, per_channel,
        preserve_sparsity, min_weights,
    )
    target = model if inplace else _copy(model)
    weights, clusters, skipped = make_clusters(
        target,
        filters,
        min_weights,
        number_of_clusters=number_of_clusters,
        centroid_initialization=centroid_initialization,
        per_channel=per_channel,
        preserve_sparsity=preserve_sparsity,
    )
    for kernel_clusters in clusters:
        kernel_clusters.initialize()
    report = clustering_report(
        target, number_of_clusters, {w.path for w in weights}
    )
    return target, ClusteringReport(
        report.rows, number_of_clusters, tuple(skipped)
    )


def strip(model, *, inplace=False):
    """Returns a clustered model as a plain model, and its distinct values.

    `WeightClustering` wraps nothing and releases its constraints when
    `fit` ends, so the shared values are already in the kernels; `strip`
    makes a copy without any clustering constraint (also after an
    interrupted `fit`) and reports the distinct values per kernel.

    Args:
        model: A built model.
        inplace: Release the constraints on `model` itself. Defaults to
            `False`.

    Returns:
        `(plain_model, report)`: the model and a `ClusteringReport`.

    Example:

    ```python
    plain, report = tfcompress.clustering.strip(model)
    tfcompress.to_tflite(plain, "clustered.tflite")
    ```
    """
    plain = model if inplace else _copy(model)
    for weight in all_prunable_weights(plain):
        release_clusters(weight.variable)
    return plain, clustering_report(plain)


def _copy(model):
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built; build or call it first."
        )
    try:
        copy = keras.models.clone_model(model)
    except Exception as error:  # Keras raises several types here.
        raise ValueError(
            f"Could not copy {type(model).__name__} with "
            f"`keras.models.clone_model` ({error}). Pass inplace=True to "
            "work on the model itself."
        ) from error
    copy.set_weights(model.get_weights())
    cloning.compile_like(copy, model)
    return copy
