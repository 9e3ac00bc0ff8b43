"""How sparse each prunable kernel of a model is."""

import dataclasses

import keras
import numpy as np

from tfcompress.pruning.targets import all_prunable_weights
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class KernelSparsity(Row):
    """Zeros in one kernel.

    Args:
        name: Path of the kernel: its layer's path, followed by
            `/<attribute>` for a kernel not called `kernel` (see
            `MagnitudePruning`).
        layer_class: Class name of the layer owning it.
        size: Number of entries.
        zeros: Number of entries exactly zero.
    """

    name: str
    layer_class: str
    size: int
    zeros: int

    summary = ("path", "sparsity")

    @property
    def path(self):
        """The kernel's path: the same as `name`."""
        return self.name

    @property
    def sparsity(self):
        """Fraction of the entries that are zero."""
        return self.zeros / self.size


@dataclasses.dataclass(frozen=True)
class SparsityReport(Report):
    """Per-kernel sparsity of a model; `str(report)` is a table.

    `report.row(path)` (or `report[path]`) is one kernel's row;
    `to_dict()` adds the totals (`size`, `zeros`, `sparsity`) and, as
    `kernels`, the rows again (the name they had before reports shared
    one shape).

    Args:
        rows: One `KernelSparsity` per prunable kernel, in layer order.
    """

    rows: tuple

    summary = ("kernels", "size", "zeros", "sparsity")

    @property
    def kernels(self):
        """The rows: the same as `rows`."""
        return self.rows

    @property
    def size(self):
        """Entries of all prunable kernels."""
        return sum(k.size for k in self.rows)

    @property
    def zeros(self):
        """Zeros of all prunable kernels."""
        return sum(k.zeros for k in self.rows)

    @property
    def sparsity(self):
        """Fraction of zeros over all prunable kernels."""
        return self.zeros / self.size if self.size else 0.0

    def __getitem__(self, path):
        return self.row(path)

    def table(self):
        """Returns the rows and their total as a fixed-width text table."""
        rows = [
            (
                k.name,
                k.layer_class,
                f"{k.size:,}",
                f"{k.zeros:,}",
                f"{k.sparsity:.1%}",
            )
            for k in self.rows
        ]
        rows.append(
            (
                "total",
                "",
                f"{self.size:,}",
                f"{self.zeros:,}",
                f"{self.sparsity:.1%}",
            )
        )
        return "\n".join(
            format_table(
                ("kernel", "layer", "weights", "zeros", "sparsity"),
                rows,
                right_aligned=(False, False, True, True, True),
                rules=(len(rows) - 1,),
            )
        )


def sparsity_report(model):
    """Counts the zeros in every prunable kernel of `model`.

    Args:
        model: A built Keras model.

    Returns:
        A `SparsityReport`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> _ = model.layers[0].kernel.assign(np.zeros((4, 2)))
    >>> report = sparsity_report(model)
    >>> report.sparsity
    1.0
    >>> report.row(model.layers[0].name).zeros
    8
    """
    kernels = []
    for weight in all_prunable_weights(model):
        values = keras.ops.convert_to_numpy(weight.variable)
        kernels.append(
            KernelSparsity(
                weight.path,
                type(weight.layer).__name__,
                int(values.size),
                int(values.size - np.count_nonzero(values)),
            )
        )
    return SparsityReport(tuple(kernels))
