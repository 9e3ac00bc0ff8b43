"""Error vs rank vs MACs, per layer, to choose ranks: `rank_selection`."""

import dataclasses
import math
import time

from tfcompress.analysis import profile
from tfcompress.argument_validation import verbosity
from tfcompress.decomposition import fidelity
from tfcompress.decomposition.blas_threads import single_blas_thread
from tfcompress.decomposition.decompose import iteration_options
from tfcompress.decomposition.decompose import probe_inputs
from tfcompress.decomposition.layer_choice import choose_layers
from tfcompress.decomposition.layer_choice import measure
from tfcompress.decomposition.report import format_rank
from tfcompress.decomposition.report import ruled
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table


def rank_selection(
    model,
    *,
    method="svd",
    ranks=None,
    filters=None,
    data=None,
    n_iter_max=100,
    init="svd",
    random_state=0,
    verbose="auto",
):
    """Decomposes each chosen layer at several ranks and measures each.

    For every chosen layer and rank, runs the decomposition `decompose`
    would run and records the relative kernel error, the relative output
    error on probe inputs and the MACs of the replacement layer. Read the
    table (or the plot) to pick, per layer, the cheapest rank whose error
    you accept, then pass the ranks to `decompose` as a dict; `ranks_for`
    does that pick for a given error. The model is not modified.

    Args:
        model: A built functional or Sequential `keras.Model`.
        method: `"svd"`, `"cp"` or `"tucker2"`, or a dict
            `{layer_name: method}` (which also chooses the layers).
            Defaults to `"svd"`.
        ranks: The ranks to try: a list applied to every layer (ranks above
            a layer's full rank are left out for that layer) or a dict
            `{layer_name: list}` (which also chooses the layers). Defaults
            to `None`: powers of two up to the full rank (for `"cp"`, up to
            the first rank that saves no MACs; for `"tucker2"`, equal ranks
            capped at each mode's full rank).
        filters: Which layers, as for `decompose`: a regular expression
            searched in each layer's name, a list of them, a layer class or
            a callable `fn(layer) -> bool`. Defaults to `None`: every layer
            the method handles.
        data: Optional model inputs on which to measure output errors (the
            first 256 examples are used). Defaults to `None`: random normal
            inputs.
        n_iter_max: Maximum iterations of CP and Tucker-2. Defaults to `100`.
        init: `"svd"` or `"random"`, for CP and Tucker-2. Defaults to
            `"svd"`.
        random_state: Seed of CP and Tucker-2. Defaults to `0`.
        verbose: `0` is silent; `1`, `2` and `"auto"` print one line per
            layer as it is done, Keras's `verbose` convention (`True` /
            `False` mean `1` / `0`). Defaults to `"auto"`.

    Returns:
        A `RankSelectionReport`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((32,)),
    ...     keras.layers.Dense(16, name="hidden"),
    ... ])
    >>> report = rank_selection(model, ranks=[2, 16], verbose=0)
    >>> report.layers
    ['hidden']
    >>> [(row.rank, row.macs) for row in report.rows]
    [(2, 96), (16, 768)]
    >>> report.rows[-1].kernel_error < 1e-6  # full rank: exact
    True
    """
    verbose = verbosity(verbose)
    candidates, _ = choose_layers(
        model, method, ranks if isinstance(ranks, dict) else None, filters
    )
    if ranks is not None and not isinstance(ranks, (dict, list, tuple)):
        raise ValueError(
            "`ranks` must be a list of ranks or a dict "
            f"{{layer_name: list}}. Received: ranks={ranks!r}"
        )
    measure(candidates, profile(model))
    probes = probe_inputs(model, candidates, data)
    options = iteration_options(n_iter_max, init, random_state)
    rows = []
    for candidate, probe in zip(candidates, probes):
        start = time.perf_counter()
        layer, layer_method = candidate.layer, candidate.method
        if ranks is None:
            grid = layer_method.default_grid(layer)
            stop_at_break_even = layer_method.stop_grid_at_break_even
        else:
            grid = ranks[layer.name] if isinstance(ranks, dict) else ranks
            stop_at_break_even = False
        for index, value in enumerate(grid):
            argument = (
                f"ranks[{layer.name!r}][{index}]"
                if isinstance(ranks, dict)
                else f"ranks[{index}]"
            )
            with single_blas_thread():
                rank = layer_method.resolve_rank(layer, value, argument)
                if layer_method.exceeds_full_rank(layer, rank):
                    continue
                new_layer, kernel_error = layer_method.decompose(
                    layer, rank, options
                )
            macs = candidate.macs_after(rank)
            rows.append(
                RankSelectionRow(
                    name=layer.name,
                    method=layer_method.name,
                    rank=rank,
                    kernel_error=kernel_error,
                    output_error=fidelity.output_error(
                        layer, new_layer, probe
                    ),
                    macs=macs,
                    macs_before=candidate.macs_before,
                    params=new_layer.count_params(),
                    params_before=layer.count_params(),
                )
            )
            if stop_at_break_even and macs >= candidate.macs_before:
                break
        if verbose:
            tried = sum(row.name == layer.name for row in rows)
            print(
                f"{layer.name}: {layer_method.name} at {tried} ranks "
                f"({time.perf_counter() - start:.1f} s)"
            )
    return RankSelectionReport(
        model_name=model.name,
        rows=rows,
        probe="random normal" if data is None else "data",
    )


@dataclasses.dataclass(frozen=True)
class RankSelectionRow(Row):
    """One layer at one rank.

    Args:
        name: Name of the layer (also `layer`, its name before rows
            shared one shape).
        method: `"svd"`, `"cp"` or `"tucker2"`.
        rank: An integer, or `(r_in, r_out)` for Tucker-2.
        kernel_error: Relative Frobenius error of the reconstructed kernel.
        output_error: Relative error of the layer's output on the probes.
        macs: MACs per example of the replacement layer.
        macs_before: MACs per example of the original layer.
        params: Weights of the replacement layer.
        params_before: Weights of the original layer.
    """

    name: str
    method: str
    rank: int | tuple
    kernel_error: float
    output_error: float
    macs: int
    macs_before: int
    params: int
    params_before: int

    summary = ("layer", "macs_ratio")

    @property
    def layer(self):
        """The layer's name: the same as `name`."""
        return self.name

    @property
    def macs_ratio(self):
        """`macs / macs_before`: below 1 when the rank saves MACs."""
        return self.macs / self.macs_before if self.macs_before else math.inf


@dataclasses.dataclass(frozen=True, repr=False)
class RankSelectionReport(Report):
    """Result of `rank_selection`: one row per layer and rank.

    `str(report)` (or `report.table()`) renders the rows; `to_dict()` is
    JSON-ready; `report.rows_of(name)` are one layer's rows, by rank (and
    `report.row(name)` the first of them, its smallest rank tried).

    Args:
        model_name: Name of the model.
        rows: List of `RankSelectionRow`, grouped by layer, ranks in the
            order tried.
        probe: `"data"` or `"random normal"`: the inputs of the output
            errors.
    """

    model_name: str
    rows: list
    probe: str

    @property
    def layers(self):
        """Names of the layers, in model order."""
        return list(dict.fromkeys(row.name for row in self.rows))

    def rows_of(self, name):
        """The rows of layer `name`, in the order its ranks were tried.

        Raises:
            KeyError: If no row is of that layer; the message lists them.
        """
        rows = [row for row in self.rows if row.name == name]
        if not rows:
            self.row(name)  # Raises, naming the layers.
        return rows

    def ranks_for(self, max_output_error):
        """Per layer, the cheapest rank tried within `max_output_error`.

        Layers where no rank tried both meets the error and saves MACs are
        left out. The result can be passed to `decompose` as `rank=`.

        Args:
            max_output_error: Float, the largest relative output error to
                accept.

        Returns:
            A dict `{layer_name: rank}`.
        """
        chosen = {}
        for name in self.layers:
            fitting = [
                row
                for row in self.rows_of(name)
                if row.output_error <= max_output_error
                and row.macs < row.macs_before
            ]
            if fitting:
                chosen[name] = min(fitting, key=lambda row: row.macs).rank
        return chosen

    def table(self):
        """The rows as a fixed-width text table."""
        headers = (
            "Layer",
            "Method",
            "Rank",
            "Kernel err",
            "Output err",
            "MACs",
            "MACs ratio",
            "Params",
        )
        lines = format_table(
            headers,
            [
                (
                    row.name,
                    row.method,
                    format_rank(row.rank),
                    f"{row.kernel_error:.4f}",
                    f"{row.output_error:.4f}",
                    f"{row.macs:,}",
                    f"{row.macs_ratio:.3f}",
                    f"{row.params:,}",
                )
                for row in self.rows
            ],
            right_aligned=(False,) * 3 + (True,) * 5,
        )
        out = [f'Rank selection for "{self.model_name}"']
        out.extend(ruled(lines))
        out.append(f"Output errors measured on {self.probe} probe inputs.")
        return "\n".join(out)

    def __repr__(self):
        return (
            f"<RankSelectionReport model_name={self.model_name!r} "
            f"layers={self.layers!r} rows={len(self.rows)}>"
        )

    def plot(self, path):
        """Plots output and kernel error against MACs, one panel per layer.

        Each point is labelled with its rank. Needs matplotlib
        (`pip install tfcompress[plots]`); draws with the Agg canvas
        directly, so pyplot and its global backend are left untouched.

        Args:
            path: File to write, e.g. `"ranks.png"`; the format follows
                the extension.

        Returns:
            `path`.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError(
                "RankSelectionReport.plot needs matplotlib. Install it with "
                "`pip install tfcompress[plots]`."
            ) from error
        names = self.layers
        columns = min(3, max(len(names), 1))
        rows = max(math.ceil(len(names) / columns), 1)
        figure = Figure(figsize=(4.5 * columns, 3.5 * rows))
        FigureCanvasAgg(figure)
        for index, name in enumerate(names):
            axes = figure.add_subplot(rows, columns, index + 1)
            layer_rows = self.rows_of(name)
            ratios = [row.macs_ratio for row in layer_rows]
            axes.plot(
                ratios,
                [row.output_error for row in layer_rows],
                "o-",
                label="output error",
            )
            axes.plot(
                ratios,
                [row.kernel_error for row in layer_rows],
                "s--",
                alpha=0.6,
                label="kernel error",
            )
            for row in layer_rows:
                axes.annotate(
                    format_rank(row.rank),
                    (row.macs_ratio, row.output_error),
                    textcoords="offset points",
                    xytext=(3, 3),
                    fontsize=7,
                )
            axes.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
            axes.set_title(f"{name} ({layer_rows[0].method})")
            axes.set_xlabel("MACs / original MACs")
            axes.set_ylabel("relative error")
            axes.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(path)
        return path
