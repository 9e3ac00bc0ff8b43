"""How much each layer's accuracy suffers from channel pruning.

Layers differ widely in how many channels they can lose: the first layers
and the narrow bottlenecks usually break first, wide hidden layers rarely
do. `sensitivity_analysis` prunes one layer (or one group of tied layers)
at a time, at several sparsities, without fine-tuning, and measures the
top-1 accuracy and the MACs of the whole model: the table says where to
prune hard and where to leave alone (Li et al. 2017, "Pruning Filters for
Efficient ConvNets", section 3.2).
"""

import dataclasses
import numbers

import keras
import numpy as np

# A dataset of (x, y) batches is read with TensorFlow, the backend
# tfcompress runs on.
import tensorflow as tf

from tfcompress.analysis import profile
from tfcompress.argument_validation import positive_int
from tfcompress.argument_validation import verbosity
from tfcompress.pruning.channels import IMPORTANCE_CRITERIA
from tfcompress.pruning.channels import prunable_channel_groups
from tfcompress.pruning.channels import prune_channels
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


@dataclasses.dataclass(frozen=True)
class SensitivityRow(Row):
    """The results of pruning one layer (or one tied group) alone.

    Attributes:
        name: Name of the layer (as in `ChannelPruningRow.name`).
        tied_to: Other layers pruned with it as one group (e.g. the inputs
            of a residual add).
        channels: Its number of channels before pruning.
        channels_after: Channels kept, one per sparsity.
        accuracies: Top-1 accuracy of the whole model, one per sparsity.
        macs: MACs per example of the whole model, one per sparsity.
    """

    name: str
    tied_to: tuple
    channels: int
    channels_after: tuple
    accuracies: tuple
    macs: tuple


@dataclasses.dataclass(frozen=True, repr=False)
class SensitivityReport(Report):
    """Result of `sensitivity_analysis`: accuracy per layer and sparsity.

    `str(report)` (or `report.table()`) renders layers as rows and
    sparsities as columns; `report.plot(path)` draws accuracy against
    sparsity, one line per layer.

    Attributes:
        model_name: Name of the analysed model.
        importance: The importance criterion used to choose channels.
        sparsities: The sparsities tried, a tuple of floats.
        baseline_accuracy: Top-1 accuracy of the unpruned model.
        baseline_macs: MACs per example of the unpruned model.
        rows: List of `SensitivityRow`, in model order.
    """

    model_name: str
    importance: str
    sparsities: tuple
    baseline_accuracy: float
    baseline_macs: int
    rows: list

    def table(self):
        """Returns the results as a fixed-width text table."""
        headers = (
            "Layer",
            "Channels",
            *(f"{sparsity:.0%}" for sparsity in self.sparsities),
        )
        rows = []
        for row in self.rows:
            name = row.name
            if row.tied_to:
                name += f" (+ {', '.join(row.tied_to)})"
            cells = [
                f"{accuracy:.3f} ({macs / self.baseline_macs:.0%})"
                if self.baseline_macs
                else f"{accuracy:.3f}"
                for accuracy, macs in zip(row.accuracies, row.macs)
            ]
            rows.append((name, str(row.channels), *cells))
        lines = format_table(headers, rows)
        rule = "=" * len(lines[1])
        return "\n".join(
            [
                f'Sensitivity of "{self.model_name}" to channel pruning '
                f"(importance: {self.importance})",
                f"Baseline: accuracy {self.baseline_accuracy:.3f}, "
                f"MACs {self.baseline_macs:,} per example",
                rule,
                *lines,
                rule,
                "Columns: fraction of the layer's channels removed. Cells: "
                "top-1 accuracy (MACs of the whole model, % of baseline).",
            ]
        )

    def plot(self, path):
        """Writes a PNG of accuracy against sparsity, one line per layer.

        Args:
            path: Path of the PNG file to write.

        Returns:
            `path`.

        Raises:
            ImportError: If matplotlib is not installed.
        """
        try:
            # The `Figure` API draws with the Agg canvas and leaves pyplot's
            # global backend (a notebook's, say) alone.
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "SensitivityReport.plot() needs matplotlib: "
                "pip install tfcompress[plots]"
            ) from None
        figure = Figure(figsize=(7, 4.5))
        axes = figure.subplots()
        for row in self.rows:
            label = row.name
            if row.tied_to:
                label += " + " + " + ".join(row.tied_to)
            axes.plot(
                [0.0, *self.sparsities],
                [self.baseline_accuracy, *row.accuracies],
                marker="o",
                label=label,
            )
        axes.axhline(
            self.baseline_accuracy,
            color="gray",
            linestyle="--",
            linewidth=1,
            label="unpruned",
        )
        axes.set_xlabel("fraction of the layer's channels removed")
        axes.set_ylabel("top-1 accuracy")
        axes.set_title(f"{self.model_name}: sensitivity to channel pruning")
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png", dpi=100)
        return path

    def __repr__(self):
        return (
            f"<SensitivityReport model_name={self.model_name!r} "
            f"layers={len(self.rows)} sparsities={self.sparsities!r}>"
        )


def sensitivity_analysis(
    model,
    *,
    data,
    sparsities=(0.25, 0.5, 0.75),
    filters=None,
    importance="l1",
    batch_size=256,
    verbose="auto",
):
    """Prunes each layer alone at several sparsities and measures accuracy.

    For every layer that `prune_channels` can prune (a group of layers
    tied together, such as the inputs of a residual add, counts as one) and
    every sparsity, prunes that layer only, with no fine-tuning, and
    measures the top-1 accuracy on `data` and the MACs of the whole model.

    Args:
        model: A `Sequential` or functional classifier whose output is
            `(N, num_classes)` logits or probabilities.
        data: The labelled examples: a tuple `(x, y)` of arrays, `x` of
            shape `(N, *input_shape)` and `y` integer labels of shape `(N,)`
            (or `(N, 1)`) or one-hot labels of shape `(N, num_classes)`; or
            a `tf.data.Dataset` of `(x, y)` batches (read once per
            measurement, so it must give the same examples each time).
        sparsities: Fractions of channels to remove, floats in `[0, 1)`.
            Defaults to `(0.25, 0.5, 0.75)`.
        filters: Which layers to analyse, as in `prune_channels`: a regular
            expression searched in each layer's name and path, a list of
            them, a layer class or a callable `fn(layer) -> bool`.
            Defaults to `None` (all).
        importance: Importance criterion, as in `prune_channels`; with
            `"taylor"` the gradients are computed on `data`. Defaults to
            `"l1"`.
        batch_size: Examples per forward pass of `(x, y)` arrays, an
            integer >= 1 (a dataset keeps its own batches). Defaults to
            `256`.
        verbose: `0` is silent; `1`, `2` and `"auto"` print one line per
            layer as it is done, Keras's `verbose` convention (`True` /
            `False` mean `1` / `0`). Defaults to `"auto"`.

    Returns:
        A `SensitivityReport`.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    ```python
    report = sensitivity_analysis(model, data=(x_val, y_val))
    print(report)  # layers as rows, sparsities as columns
    report.plot("sensitivity.png")
    ```
    """
    verbose = verbosity(verbose)
    batches = _labelled_batches(data)
    if (
        isinstance(sparsities, (str, bytes))
        or not hasattr(sparsities, "__iter__")
        or not len(sparsities)
        or not all(
            isinstance(s, numbers.Real)
            and not isinstance(s, bool)
            and 0 <= s < 1
            for s in sparsities
        )
    ):
        raise ValueError(
            "`sparsities` must be a non-empty sequence of floats in [0, 1). "
            f"Received: sparsities={sparsities!r}"
        )
    sparsities = tuple(float(s) for s in sparsities)
    batch_size = positive_int("batch_size", batch_size)
    if importance not in IMPORTANCE_CRITERIA:
        raise ValueError(
            "`importance` must be one of "
            f"{', '.join(repr(c) for c in IMPORTANCE_CRITERIA)}. "
            f"Received: importance={importance!r}"
        )
    groups = prunable_channel_groups(model, filters=filters)
    taylor_data = data if importance == "taylor" else None

    baseline_accuracy = _accuracy(model, batches(batch_size))
    baseline_macs = profile(model).macs
    rows = []
    for index, group in enumerate(groups):
        channels_after, accuracies, macs = [], [], []
        channels = None
        for sparsity in sparsities:
            # Every name of the group: a single name of an InvertedResidual
            # would also prune the block's other channels.
            pruned, report = prune_channels(
                model,
                sparsity={name: sparsity for name in group},
                importance=importance,
                data=taylor_data,
                verbose=0,
            )
            pruned_row = report.row(group[0])
            channels = pruned_row.channels_before
            channels_after.append(pruned_row.channels_after)
            accuracies.append(_accuracy(pruned, batches(batch_size)))
            macs.append(report.macs_after)
        row = SensitivityRow(
            name=group[0],
            tied_to=tuple(group[1:]),
            channels=channels,
            channels_after=tuple(channels_after),
            accuracies=tuple(accuracies),
            macs=tuple(macs),
        )
        rows.append(row)
        if verbose:
            results = ", ".join(
                f"{sparsity:.0%}: {accuracy:.3f}"
                for sparsity, accuracy in zip(sparsities, accuracies)
            )
            print(
                f"[{index + 1}/{len(groups)}] {row.name} "
                f"({row.channels} channels): {results} "
                f"(baseline {baseline_accuracy:.3f})"
            )
    return SensitivityReport(
        model_name=model.name,
        importance=importance,
        sparsities=sparsities,
        baseline_accuracy=baseline_accuracy,
        baseline_macs=baseline_macs,
        rows=rows,
    )


def _labelled_batches(data):
    """Checks `data`; returns `batches(batch_size)`, `(x, labels)` pairs."""
    if isinstance(data, tuple) and len(data) == 2:
        x = np.asarray(data[0])
        labels = _labels(x, data[1])

        def array_batches(batch_size):
            for start in range(0, len(x), batch_size):
                end = start + batch_size
                yield x[start:end], labels[start:end]

        return array_batches
    if isinstance(data, tf.data.Dataset):

        def dataset_batches(batch_size):
            for batch in data:
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise ValueError(
                        "`data` must be a dataset of (x, y) batches. "
                        f"Received: a batch of type {type(batch).__name__}"
                    )
                x = np.asarray(batch[0])
                yield x, _labels(x, batch[1])

        return dataset_batches
    raise ValueError(
        "`data` must be a tuple (x, y) of arrays or a tf.data.Dataset of "
        "(x, y) batches. Received: data of type "
        f"{type(data).__name__}"
        + (f" with {len(data)} items" if isinstance(data, tuple) else "")
    )


def _labels(x, y):
    """Integer labels from `y`, checked against `x`."""
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or not len(x):
        raise ValueError(
            "`x` and `y` of `data` must hold the same, non-zero number of "
            f"examples. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        return np.argmax(y, axis=-1)
    if y.ndim == 1:
        return y.astype(np.int64)
    raise ValueError(
        "`y` must be integer labels of shape (N,) or one-hot labels of "
        f"shape (N, num_classes). Received: y.shape={y.shape}"
    )


def _accuracy(model, batches):
    """Top-1 accuracy, with eager calls: no `predict` function to trace."""
    correct = total = 0
    for x, labels in batches:
        outputs = keras.ops.convert_to_numpy(model(x, training=False))
        if outputs.ndim != 2 or outputs.shape[1] < 2:
            raise ValueError(
                "sensitivity_analysis measures top-1 accuracy and needs a "
                "model output of shape (N, num_classes) with num_classes "
                f">= 2. Received: output shape {outputs.shape}"
            )
        predicted = np.argmax(outputs, axis=-1)
        correct += int(np.sum(predicted == labels))
        total += len(labels)
    if not total:
        raise ValueError(
            "`data` yielded no example: pass a non-empty dataset."
        )
    return correct / total
