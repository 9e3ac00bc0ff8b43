"""How many distinct values each kernel of a model holds."""

import dataclasses

import keras
import numpy as np

from tfcompress.pruning.targets import all_prunable_weights
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class KernelClustering(Row):
    """The shared values of one kernel.

    Args:
        name: Path of the kernel (as `MagnitudePruning` names it).
        layer_class: Class name of the layer owning it.
        size: Number of entries.
        unique_values: Distinct values in the kernel.
        max_unique_per_channel: Most distinct values in one output
            channel (the last axis).
        zeros: Entries exactly zero.
        clustered: Whether the tool clustered it (`False`: not selected,
            or skipped).
    """

    name: str
    layer_class: str
    size: int
    unique_values: int
    max_unique_per_channel: int
    zeros: int
    clustered: bool = True

    summary = ("sparsity",)

    @property
    def sparsity(self):
        """Fraction of the entries that are zero."""
        return self.zeros / self.size


@dataclasses.dataclass(frozen=True)
class ClusteringReport(Report):
    """Per-kernel distinct values; `str(report)` is a table.

    Args:
        rows: One `KernelClustering` per kernel, in layer order.
        number_of_clusters: The clusters asked for (`None` for a plain
            measurement).
        skipped: `(path, reason)` for kernels left as they were.
    """

    rows: tuple
    number_of_clusters: int | None = None
    skipped: tuple = ()

    summary = ("clustered",)

    @property
    def clustered(self):
        """Paths of the clustered kernels."""
        return tuple(row.name for row in self.rows if row.clustered)

    def table(self):
        """Returns the kernels as a fixed-width text table."""
        lines = [
            "Clustering"
            + (
                ""
                if self.number_of_clusters is None
                else f": {self.number_of_clusters} clusters per kernel"
            )
        ]
        lines += format_table(
            ("Kernel", "Layer", "Size", "Distinct", "Per channel", "Zeros"),
            [
                (
                    row.name + ("" if row.clustered else " (not clustered)"),
                    row.layer_class,
                    f"{row.size:,}",
                    f"{row.unique_values:,}",
                    f"{row.max_unique_per_channel:,}",
                    f"{row.sparsity:.1%}",
                )
                for row in self.rows
            ],
            right_aligned=(False, False, True, True, True, True),
        )
        return "\n".join(lines)


def kernel_clustering(path, layer, values, clustered=True):
    """The `KernelClustering` row of one kernel's values."""
    values = np.asarray(values)
    channels = values.reshape(-1, values.shape[-1]) if values.ndim else values
    per_channel = max(
        (len(np.unique(channels[:, c])) for c in range(channels.shape[1])),
        default=0,
    )
    return KernelClustering(
        name=path,
        layer_class=type(layer).__name__,
        size=int(values.size),
        unique_values=int(len(np.unique(values))),
        max_unique_per_channel=int(per_channel),
        zeros=int(values.size - np.count_nonzero(values)),
        clustered=clustered,
    )


def clustering_report(model, number_of_clusters=None, clustered=None):
    """Distinct values of every prunable kernel of `model`.

    Args:
        model: A built Keras model.
        number_of_clusters: Recorded in the report. Defaults to `None`.
        clustered: Paths to mark as clustered; `None` marks all.

    Returns:
        A `ClusteringReport`.
    """
    rows = []
    for weight in all_prunable_weights(model):
        values = keras.ops.convert_to_numpy(weight.variable)
        rows.append(
            kernel_clustering(
                weight.path,
                weight.layer,
                values,
                clustered is None or weight.path in clustered,
            )
        )
    return ClusteringReport(tuple(rows), number_of_clusters)
