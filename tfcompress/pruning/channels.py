"""Structured pruning: a new, physically smaller model with fewer channels.

`prune_channels(model, sparsity)` ranks the output channels (the filters of
a convolution, the units of a `Dense`) of every prunable layer, removes the
least important ones and returns a new Keras model whose layers are
narrower: unlike weight (unstructured) pruning, this saves MACs, memory and
latency on any hardware, with no sparse kernels.

Removing a channel touches more than its producer. The work happens in three
steps:

1. Trace. Every tensor of the graph gets a channel map: for each position of
   its last axis, which channel of which *channel set* it carries. A
   producer (`Conv2D`, `Dense`, ...) makes a new channel set; element-wise
   layers (activations, batch normalization, pooling, padding, a depthwise
   convolution) pass the map on; `Concatenate` joins maps; `Flatten` repeats
   the map at every spatial position; an element-wise merge (`Add`,
   `Multiply`, ...) ties the channel sets of its inputs into one group, which
   is pruned as one. A layer that the trace cannot see through (`Reshape`,
   an unknown layer) is a barrier: the channel sets that reach it are left
   alone, and so are those that reach a model output.
2. Decide. Each group keeps `max(min_channels, C - floor(sparsity * C))`
   channels, rounded up to a multiple of `round_to`: those of highest
   importance.
3. Rebuild. The model is cloned with the new layer sizes, and every weight
   of the new model is the slice of the old one at the kept channels: a
   producer's output axis, a consumer's input axis, batch normalization
   statistics.
"""

import numbers
import time

import keras

from tfcompress import argument_validation
from tfcompress.graph import cloning
from tfcompress.graph import flattening
from tfcompress.graph import functional_graph
from tfcompress.graph.filters import LayerFilter
from tfcompress.pruning.channel_importance import IMPORTANCE_CRITERIA
from tfcompress.pruning.channel_importance import importance_scores
from tfcompress.pruning.channel_plan import Plan
from tfcompress.pruning.channel_rebuild import rebuild
from tfcompress.pruning.channel_report import ChannelPruningReport
from tfcompress.pruning.channel_report import ChannelPruningRow
from tfcompress.pruning.channel_report import make_report
from tfcompress.pruning.channel_trace import ChannelTrace

__all__ = [
    "IMPORTANCE_CRITERIA",
    "ChannelPruningReport",
    "ChannelPruningRow",
    "prunable_channel_groups",
    "prune_channels",
]


def prune_channels(
    model,
    *,
    sparsity,
    filters=None,
    importance="l1",
    data=None,
    min_channels=1,
    round_to=1,
    verbose="auto",
):
    """Removes the least important channels of a model's layers.

    Returns a new model in which every prunable layer has fewer output
    channels (filters, units), and every layer that reads them fewer input
    channels; the weights of the kept channels are copied exactly, so the
    new model computes what the input model computes with the removed
    channels' contributions dropped. Fine-tune it for a few epochs to
    recover the accuracy. The input model is not modified.

    Prunable: the output channels of `Conv1D`, `Conv2D`, `Conv3D`,
    `SeparableConv1D`, `SeparableConv2D`, `Dense`, and of
    tfcompress's `DepthwiseSeparableConv2D`, `InvertedResidual` (its hidden
    channels, named `"<block>/expand"`, the main saving in a MobileNetV2,
    and its output channels, `"<block>/project"`), `CPConv2D` and
    `LowRankDense`. Channels flow through batch normalization, depthwise
    convolutions (any `depth_multiplier`), activations, dropout, pooling,
    padding, cropping, upsampling, `Concatenate` and `Flatten` (the
    following layer loses its rows at every spatial position). `Add`,
    `Subtract`, `Multiply`, `Maximum`, `Minimum` and `Average` make their
    inputs share channels: their producers are pruned as one group, ranked
    by their summed importance (a residual `InvertedResidual` ties its input
    and output the same way).

    Modern blocks: a `Reshape` that keeps the last axis (squeeze-and-
    excitation's `(C,) -> (1, 1, C)`) passes channels; a grouped
    convolution with one input channel per group (ConvNeXt's depthwise
    7x7) passes them too, `groups` following; another grouped
    convolution keeps as many filters in every group and leaves its input
    channels alone; `LayerScale` and a ViT's `PositionEmbedding` are
    sliced; `LayerNormalization` over the last axis is sliced, and is the
    one inexact rule (its mean and variance are then over the kept
    channels); `MultiHeadAttention` loses whole heads (`"<name>/heads"`)
    and output channels. Nested Sequential and functional models are
    inlined first: the pruned model is then flat, their layers named
    `"<nested model>_<layer>"`.

    Left alone, and said so in the report: the layers whose channels reach a
    model output (they are the model's outputs), reach the model input
    through a residual connection, or reach a layer the trace cannot see
    through (a `Reshape` that changes the last axis, `Permute`, softmax,
    shared layers, `ShuffleConv2D`, `ChannelShuffle`, `PartialConv2D`,
    unknown custom layers). So is a
    stride-1 `InvertedResidual` without a residual add whose output would
    keep as many channels as its input: the rebuilt block would add them.

    Args:
        model: A `Sequential` or functional `keras.Model`, built.
        sparsity: Fraction of the channels to remove, a float in `[0, 1)`
            applied to every prunable layer, or a `dict` mapping layer
            names to such floats (only those layers are pruned). An
            `InvertedResidual`'s name covers its hidden and output channels;
            `"<block>/expand"` and `"<block>/project"` name one of them.
            Layers pruned as one group use the largest sparsity given to
            any of them.
        filters: Which layers to prune, as Keras's `Model.quantize`
            chooses them: `None` (all), a regular expression searched in
            each layer's name and path (an `InvertedResidual`'s channels
            have the paths `"<block>/expand"` and `"<block>/project"`), a
            list of them, a layer class, or a callable `fn(layer) -> bool`
            (see `tfcompress.graph.LayerFilter`). Selecting one layer of a
            group prunes the whole group. A string that matches no layer
            with prunable channels is an error. Defaults to `None`.
        importance: How channels are ranked. One of:
            - `"l1"`: the L1 norm of the channel's filter weights (Li et al.
              2017). Defaults to this.
            - `"l2"`: their L2 norm.
            - `"bn_gamma"`: `|gamma|` of the `BatchNormalization` right
              after the layer (network slimming, Liu et al. 2017).
            - `"taylor"`: first-order Taylor expansion of the loss (Molchanov
              et al. 2019): `(sum of w * dL/dw over the channel's filter
              weights and bias)^2`, computed per batch of `data` and summed
              over batches. Uses the model's compiled loss (and any
              regularization losses), in inference mode.
        data: Examples for `importance="taylor"` (rejected otherwise):
            a tuple `(x, y)` of arrays, or a `tf.data.Dataset` (or any
            iterable) of `(x, y)` batches. Defaults to `None`.
        min_channels: Integer >= 1, the fewest channels a layer keeps.
            Defaults to `1`.
        round_to: Integer >= 1: the number of kept channels is rounded up
            to a multiple of it (hardware prefers multiples of 4 or 8),
            never above the original count. Defaults to `1`.
        verbose: `0` is silent; `1`, `2` and `"auto"` print a line when
            the channels are ranked and one when the model is rebuilt,
            Keras's `verbose` convention. Defaults to `"auto"`.

    Returns:
        A tuple `(pruned_model, report)`: a new `keras.Model` of the same
        kind and a `ChannelPruningReport`. If the input model is compiled,
        the new one is compiled from its compile configuration (a fresh
        optimizer); when that configuration cannot be deserialized (an
        unregistered custom loss), a warning says so and the new model is
        left uncompiled.

    Raises:
        ValueError: If the model is not a built `Sequential` or functional
            model, or an argument is invalid (the message says which and
            what is accepted), or the importance criterion cannot be
            computed for a layer being pruned.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)),
    ...     keras.layers.Conv2D(16, 3, name="conv"),
    ...     keras.layers.BatchNormalization(name="bn"),
    ...     keras.layers.GlobalAveragePooling2D(),
    ...     keras.layers.Dense(10, name="logits"),
    ... ])
    >>> pruned, report = prune_channels(model, sparsity=0.5, verbose=0)
    >>> pruned.get_layer("conv").filters
    8
    >>> tuple(pruned.get_layer("logits").kernel.shape)
    (8, 10)
    >>> report.row("logits").status  # its units are the model's outputs
    'left alone'
    >>> report.macs_after < report.macs_before
    True

    Print `report` for a table of channels before and after, per layer;
    then fine-tune `pruned` for a few epochs.
    """
    _check_model(model)
    if importance not in IMPORTANCE_CRITERIA:
        raise ValueError(
            "`importance` must be one of "
            f"{', '.join(repr(c) for c in IMPORTANCE_CRITERIA)}. "
            f"Received: importance={importance!r}"
        )
    min_channels = argument_validation.positive_int(
        "min_channels", min_channels
    )
    round_to = argument_validation.positive_int("round_to", round_to)
    verbose = argument_validation.verbosity(verbose)
    start = time.perf_counter()
    if importance == "taylor":
        _check_taylor_arguments(model, data)
    elif data is not None:
        raise ValueError(
            "`data` is only used by importance='taylor'. Received: "
            f"importance={importance!r} and data of type "
            f"{type(data).__name__}"
        )
    if not isinstance(sparsity, dict):
        _check_sparsity("sparsity", sparsity)

    source = _inlined(model)
    trace = ChannelTrace(source)
    is_selected = _selector(filters, trace)
    sparsity_of = _sparsity_per_unit(sparsity, trace)
    plan = Plan(trace, min_channels, round_to)
    plan.choose_counts(
        {
            unit: sparsity_of(unit)
            for unit in trace.units
            if is_selected(unit) and sparsity_of(unit) is not None
        }
    )
    scores = importance_scores(
        importance, source, plan.groups_to_prune(), data
    )
    plan.choose_channels(scores)
    if verbose:
        print(
            f"{len(scores)} channel groups ranked by {importance} "
            f"({time.perf_counter() - start:.1f} s)"
        )

    pruned = rebuild(source, trace, plan)
    if source is not model:
        cloning.compile_like(pruned, model)
    report = make_report(source, pruned, trace, plan, importance)
    if verbose:
        print(
            f"rebuilt {pruned.name}: MACs {report.macs_before:,} -> "
            f"{report.macs_after:,} ({time.perf_counter() - start:.1f} s)"
        )
    return pruned, report


def prunable_channel_groups(model, *, filters=None):
    """Lists the channel groups that `prune_channels` can prune.

    Each group is a tuple of row names (see `ChannelPruningRow.name`) whose
    channels are pruned as one, e.g. `("separable", "block1/project")` when
    `block1` adds its input to its output. Groups that are left alone (a
    model output, a barrier) are not listed.

    Args:
        model: A `Sequential` or functional `keras.Model`, built.
        filters: Which layers to consider, as in `prune_channels`.
            Defaults to `None` (all).

    Returns:
        A list of tuples of names, in model order.

    Example:

    >>> from tfcompress.models import small_mobilenet_v2
    >>> model = small_mobilenet_v2((8, 8, 1), num_classes=10)
    >>> prunable_channel_groups(model)[:3]
    [('stem',), ('separable', 'block1/project'), ('block1/expand',)]
    >>> prunable_channel_groups(model, filters="expand")
    [('block1/expand',), ('block2/expand',), ('block3/expand',)]
    """
    _check_model(model)
    trace = ChannelTrace(_inlined(model))
    is_selected = _selector(filters, trace)
    plan = Plan(trace, min_channels=1, round_to=1)
    groups = []
    for root, members in plan.groups.items():
        units = [s.unit for s in members if s.unit is not None]
        if plan.frozen_reason(root) is None and any(map(is_selected, units)):
            groups.append(tuple(unit.name for unit in units))
    return groups


# Argument checks.


def _check_model(model):
    # A Sequential or functional model is a graph of nodes; a subclassed
    # model is Python code that pruning cannot read.
    functional_graph.functional_graph(model, "prune_channels")


def _inlined(model):
    """`model`, or a flat copy of it when it holds nested models.

    A nested Sequential or functional model (ConvNeXt's stem and
    downsampling layers) is a graph of its own: inlined into one graph,
    its layers are traced like the others. Their copies are named by path
    (`"<nested model>_<layer>"`).
    """
    graph = functional_graph.functional_graph(model, "prune_channels")
    nested = any(
        functional_graph.is_graph_model(node.operation)
        for node in functional_graph.call_nodes(graph)
    )
    if not nested:
        return model
    flat, _ = flattening.flatten_model(model)
    return keras.Model(flat.inputs, flat.outputs, name=model.name)


def _check_sparsity(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 <= value < 1
    ):
        raise ValueError(
            f"`{name}` must be a float in [0, 1), the fraction of channels "
            f"to remove, or a dict {{layer_name: float}}. Received: "
            f"{name}={value!r}"
        )
    return float(value)


def _check_taylor_arguments(model, data):
    if data is None:
        raise ValueError(
            "importance='taylor' ranks channels by the gradient of the loss "
            "and needs examples: pass data=(x, y) or a dataset of (x, y) "
            "batches. Received: data=None"
        )
    if not getattr(model, "compiled", False) or model.loss is None:
        raise ValueError(
            "importance='taylor' needs the model's loss: compile the model "
            "first, e.g. model.compile(loss="
            '"sparse_categorical_crossentropy"). Received: a model that is '
            "not compiled with a loss"
        )


def _selector(filters, trace):
    """Returns `is_selected(unit)` for the `filters` argument."""
    layer_filter = LayerFilter.get(filters)
    # A unit is named by its path ("block1/expand") and its layer (the
    # block): a filter may name either.
    entries = [(unit.name, unit.layer, ()) for unit in trace.units]
    layer_filter.check_matches(entries, "prune_channels")
    return lambda unit: layer_filter(unit.layer, unit.name)


def _sparsity_per_unit(sparsity, trace):
    """Returns `sparsity_of(unit)`: a float, or `None` (not to prune)."""
    if not isinstance(sparsity, dict):
        return lambda unit: sparsity
    if not all(isinstance(name, str) for name in sparsity):
        raise ValueError(
            "The keys of a `sparsity` dict must be layer names (strings). "
            f"Received: sparsity={sparsity!r}"
        )
    trace.check_names("sparsity", sparsity)
    values = {
        name: _check_sparsity(f"sparsity[{name!r}]", value)
        for name, value in sparsity.items()
    }

    def sparsity_of(unit):
        # A unit's own name ("block1/expand") wins over its layer's name.
        if unit.name in values:
            return values[unit.name]
        return values.get(unit.layer.name)

    return sparsity_of
