"""How sparse each prunable kernel of a model is."""

import dataclasses

import keras
import numpy as np

from tfcompress.pruning.targets import all_prunable_weights


@dataclasses.dataclass(frozen=True)
class KernelSparsity:
    """Zeros in one kernel.

    Args:
        path: Layer path of the kernel (see `MagnitudePruning`).
        layer_class: Class name of the layer owning it.
        size: Number of entries.
        zeros: Number of entries exactly zero.
    """

    path: str
    layer_class: str
    size: int
    zeros: int

    @property
    def sparsity(self):
        return self.zeros / self.size


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Per-kernel sparsity of a model; `str(report)` is a table.

    Args:
        kernels: One `KernelSparsity` per prunable kernel, in layer order.
    """

    kernels: tuple

    @property
    def size(self):
        return sum(k.size for k in self.kernels)

    @property
    def zeros(self):
        return sum(k.zeros for k in self.kernels)

    @property
    def sparsity(self):
        """Fraction of zeros over all prunable kernels."""
        return self.zeros / self.size if self.size else 0.0

    def __getitem__(self, path):
        for kernel in self.kernels:
            if kernel.path == path:
                return kernel
        raise KeyError(
            f"No prunable kernel {path!r}; kernels: "
            + ", ".join(k.path for k in self.kernels)
        )

    def to_dict(self):
        return {
            "kernels": [
                {**dataclasses.asdict(k), "sparsity": k.sparsity}
                for k in self.kernels
            ],
            "size": self.size,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
        }

    def __str__(self):
        header = ("kernel", "layer", "weights", "zeros", "sparsity")
        rows = [
            (
                k.path,
                k.layer_class,
                f"{k.size:,}",
                f"{k.zeros:,}",
                f"{k.sparsity:.1%}",
            )
            for k in self.kernels
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
        widths = [
            max(len(r[i]) for r in [header, *rows]) for i in range(5)
        ]

        def line(cells):
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, rows[:-1]), rule,
                          line(rows[-1])])


def sparsity_report(model):
    """Counts the zeros in every prunable kernel of `model`.

    Args:
        model: A built Keras model.

    Returns:
        A `SparsityReport`.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> _ = model.layers[0].kernel.assign(np.zeros((4, 2)))
    >>> sparsity_report(model).sparsity
    1.0
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
