"""The arguments of weight clustering, and the kernels it applies to."""

import numbers

from tfcompress import argument_validation
from tfcompress.clustering.centroids import check_initialization
from tfcompress.clustering.kernel_clusters import KernelClusters
from tfcompress.pruning.targets import select_weights

MAX_CLUSTERS = 256  # An int8 kernel holds at most 256 distinct values.


def check_arguments(
    number_of_clusters, centroid_initialization, per_channel,
    preserve_sparsity, min_weights,
):
    """Raises a `ValueError` naming the first bad argument."""
    if (
        isinstance(number_of_clusters, bool)
        or not isinstance(number_of_clusters, numbers.Integral)
        or not 2 <= number_of_clusters <= MAX_CLUSTERS
    ):
        raise ValueError(
            f"`number_of_clusters` must be an integer from 2 to "
            f"{MAX_CLUSTERS}. Received: number_of_clusters="
            f"{number_of_clusters!r}"
        )
    check_initialization(centroid_initialization)
    for name, value in (
        ("per_channel", per_channel),
        ("preserve_sparsity", preserve_sparsity),
    ):
        if not isinstance(value, bool):
            raise ValueError(
                f"`{name}` must be True or False. Received: {name}={value!r}"
            )
    argument_validation.integer_at_least("min_weights", min_weights, 0)


def channel_axes(weight):
    """Trailing axes that make a kernel's output channel: two for a
    depthwise kernel `(h, w, channels, multiplier)`, else one."""
    if weight.input_channel_axis is None and len(weight.variable.shape) >= 3:
        return 2
    return 1


def make_clusters(model, filters, min_weights, **arguments):
    """`(weights, clusters, skipped)` for the selected kernels of `model`:
    `PrunableWeight`s, a `KernelClusters` each (not initialized) and
    `(path, reason)` pairs for the others."""
    weights, skipped = select_weights(model, filters, min_weights)
    clusters = [
        KernelClusters(
            weight.variable, channel_axes=channel_axes(weight), **arguments
        )
        for weight in weights
    ]
    return weights, clusters, skipped
