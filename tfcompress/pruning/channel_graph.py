"""Which channels of a Keras graph depend on which: the channel trace.

Removing a channel from a producer (a `Conv2D`, a `Dense`, ...) changes
every layer its output reaches. `Trace(model)` walks a functional graph once
and gives every tensor a channel map (which channel of which channel set
each position of its last axis carries), ties the channel sets that an
element-wise merge makes share channels, records which axis of which weight
follows which map, and freezes the channel sets that reach a layer it cannot
see through (a barrier) or a model output. Deciding, scoring and rebuilding
(`channel_plan`, `channel_importance`, `channel_rebuild`) only read it.
"""

import collections
import dataclasses
import math
import numbers

import keras
import numpy as np

from tfcompress.layers import ChannelShuffle
from tfcompress.layers import CPConv2D
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual
from tfcompress.layers import LowRankDense
from tfcompress.layers import PartialConv2D
from tfcompress.layers import ShuffleConv2D

# Activations that mix the channels they act on: the producer of such an
# output cannot lose a channel without changing the others.
_CHANNEL_MIXING_ACTIVATIONS = ("softmax", "log_softmax")


class _Unsupported(Exception):
    """A layer the trace cannot see through; the message says why."""


class _ChannelMap:
    """Which channel of which channel set each position of an axis carries.

    Position `p` of the last axis of a tensor carries channel `indices[p]`
    of channel set `sets[p]`. After pruning, a position survives when its
    channel is kept, and the survivors keep their order: this is what lets
    `Concatenate`, `Flatten` and depthwise multipliers map to plain index
    arithmetic.
    """

    def __init__(self, sets, indices, unit=None):
        self.sets = np.asarray(sets, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        # The unit whose output this map is, before any other layer.
        self.unit = unit

    @classmethod
    def identity(cls, set_id, size, unit=None):
        return cls(np.full(size, set_id), np.arange(size), unit)

    def __len__(self):
        return len(self.indices)

    def repeat(self, count):
        """Position `c * count + k` carries what position `c` carried."""
        if count == 1:
            return self
        return _ChannelMap(
            np.repeat(self.sets, count), np.repeat(self.indices, count)
        )

    def tile(self, count):
        """Position `s * C + c` carries what position `c` carried."""
        if count == 1:
            return self
        return _ChannelMap(
            np.tile(self.sets, count), np.tile(self.indices, count)
        )

    @staticmethod
    def concatenate(maps):
        return _ChannelMap(
            np.concatenate([m.sets for m in maps]),
            np.concatenate([m.indices for m in maps]),
        )


@dataclasses.dataclass(eq=False)
class _ChannelSet:
    """Channels made by one producer (or the model input, or a barrier)."""

    id: int
    size: int
    unit: "_Unit | None" = None
    frozen: str | None = None


@dataclasses.dataclass(eq=False)
class _Unit:
    """A prunable channel set: its layer and the weights that rank it.

    `kernels` lists `(variable, output_axis)`: the filter weights whose
    norm (or Taylor score) ranks the channels; `bias` joins them for the
    Taylor score. `batch_norm` is the `BatchNormalization` right after it.
    """

    name: str
    layer: keras.layers.Layer
    channel_set: _ChannelSet
    kernels: list
    bias: object = None
    batch_norm: object = None
    map: _ChannelMap | None = None


@dataclasses.dataclass(frozen=True)
class _Barrier:
    name: str
    layer_type: str
    channels: int
    reason: str


class Trace:
    """Walks a model's graph and records what pruning needs.

    Attributes:
        sets: Every `_ChannelSet`, indexed by id.
        units: The prunable `_Unit`s, in graph order.
        ties: `(set_a, set_b, layer_name)` for channel sets that must keep
            the same channels.
        slices: `{id(layer): {id(variable): [(axis, channel_map)]}}`: the
            axis of each weight that follows a channel map.
        resizes: `{id(layer): [fn(plan) -> dict of config updates]}`.
        constraints: `fn(plan) -> None or (reason, [channel sets])`:
            layer rules that a choice of channel counts must satisfy; when
            one fails, the first set of the list that is not frozen yet is
            left alone.
        barriers: `_Barrier` rows for layers with weights that are left
            alone.
    """

    def __init__(self, model):
        self.model = model
        graph = model
        if isinstance(model, keras.Sequential):
            graph = model._functional
        self.sets = []
        self.units = []
        self.ties = []
        self.slices = {}
        self.resizes = {}
        self.constraints = []
        self.barriers = []
        self.maps = {}
        # `_nodes_by_depth` is private, but it is the graph that Keras's own
        # `Functional` runs: every node after the nodes it reads from when
        # walked from the deepest level.
        nodes_by_depth = graph._nodes_by_depth
        calls = collections.Counter(
            id(node.operation)
            for nodes in nodes_by_depth.values()
            for node in nodes
        )
        for depth in sorted(nodes_by_depth, reverse=True):
            for node in nodes_by_depth[depth]:
                self._visit(node, calls[id(node.operation)])
        for tensor in graph.outputs:
            operation = tensor._keras_history.operation
            self._freeze_output(self.maps.get(id(tensor)), operation)

    # Bookkeeping.

    def new_set(self, size, frozen=None):
        channel_set = _ChannelSet(len(self.sets), size, frozen=frozen)
        self.sets.append(channel_set)
        return channel_set

    def new_unit(self, layer, name, size, kernels, bias=None, batch_norm=None):
        channel_set = self.new_set(size)
        unit = _Unit(name, layer, channel_set, kernels, bias, batch_norm)
        channel_set.unit = unit
        unit.map = _ChannelMap.identity(channel_set.id, size, unit)
        self.units.append(unit)
        activation = getattr(layer, "activation", None)
        if activation is not None and _activation_name(activation) in (
            _CHANNEL_MIXING_ACTIVATIONS
        ):
            self.freeze(
                unit.map,
                f"its {_activation_name(activation)} activation mixes its "
                "channels",
            )
        return unit

    def fresh(self, tensor, reason):
        """A map for a tensor whose channels are never pruned."""
        shape = tensor.shape
        if not shape or shape[-1] is None:
            return None
        channel_set = self.new_set(shape[-1], reason)
        return _ChannelMap.identity(channel_set.id, shape[-1])

    def freeze(self, channel_map, reason):
        if channel_map is None:
            return
        for set_id in np.unique(channel_map.sets):
            if self.sets[set_id].frozen is None:
                self.sets[set_id].frozen = reason

    def slice(self, layer, variable, axis, channel_map):
        """Records that `variable`'s `axis` follows `channel_map`."""
        if variable is None or channel_map is None:
            return
        per_layer = self.slices.setdefault(id(layer), {})
        per_layer.setdefault(id(variable), []).append((axis, channel_map))

    def slice_batch_norm(self, owner, batch_norm, channel_map):
        for variable in (
            batch_norm.gamma,
            batch_norm.beta,
            batch_norm.moving_mean,
            batch_norm.moving_variance,
        ):
            self.slice(owner, variable, 0, channel_map)

    def resize(self, layer, update):
        self.resizes.setdefault(id(layer), []).append(update)

    def tie(self, maps, layer):
        """Makes the channel sets at each position share kept channels."""
        problem = self.tie_problem(maps)
        if problem:
            raise _Unsupported(problem)
        reference = maps[0]
        for other in maps[1:]:
            pairs = set(zip(reference.sets.tolist(), other.sets.tolist()))
            for a, b in sorted(pairs):
                if a != b:
                    self.ties.append((a, b, layer.name))

    def tie_problem(self, maps):
        if any(m is None for m in maps):
            return "an input has an unknown number of channels"
        reference = maps[0]
        for other in maps[1:]:
            # Position p ties channel i of one set to channel i of another:
            # then keeping the same indices in both keeps positions aligned.
            if len(other) != len(reference) or not np.array_equal(
                other.indices, reference.indices
            ):
                return "its inputs' channels are not aligned one to one"
            for a, b in set(zip(reference.sets.tolist(), other.sets.tolist())):
                if self.sets[a].size != self.sets[b].size:
                    return "its inputs' channels are not aligned one to one"
        return None

    def check_names(self, argument, names):
        known = set()
        for unit in self.units:
            known.update((unit.name, unit.layer.name))
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(
                f"`{argument}` names layers without prunable channels: "
                f"{', '.join(repr(n) for n in unknown)}. Layers with "
                f"prunable channels: {', '.join(sorted(known)) or 'none'}. "
                f"Received: {argument}={names!r}"
            )

    def _freeze_output(self, channel_map, operation):
        if channel_map is None:
            return
        for set_id in np.unique(channel_map.sets):
            channel_set = self.sets[set_id]
            if channel_set.frozen is not None:
                continue
            if channel_set.unit is not None and (
                channel_set.unit.layer is operation
            ):
                channel_set.frozen = (
                    "model output: its channels are the model's outputs"
                )
            else:
                channel_set.frozen = (
                    f"reaches the model output through '{operation.name}'"
                )

    # The graph walk.

    def _visit(self, node, calls):
        operation = node.operation
        if node.is_input or isinstance(operation, keras.layers.InputLayer):
            for tensor in node.outputs:
                self.maps[id(tensor)] = self.fresh(tensor, "model input")
            return
        in_maps = [self.maps.get(id(t)) for t in node.input_tensors]
        try:
            if calls > 1:
                raise _Unsupported(
                    f"shared layer, called {calls} times in the model"
                )
            out_maps = self._handler(operation)(node, operation, in_maps)
        except _Unsupported as error:
            out_maps = self._barrier(node, in_maps, str(error))
        for tensor, channel_map in zip(node.outputs, out_maps):
            self.maps[id(tensor)] = channel_map

    def _barrier(self, node, in_maps, reason):
        operation = node.operation
        kind = type(operation).__name__
        for channel_map in in_maps:
            self.freeze(
                channel_map, f"feeds {kind} '{operation.name}': {reason}"
            )
        known = any(b.name == operation.name for b in self.barriers)
        if getattr(operation, "weights", None) and not known:
            shape = node.outputs[0].shape if node.outputs else ()
            self.barriers.append(
                _Barrier(
                    operation.name,
                    kind,
                    int(shape[-1]) if shape and shape[-1] else 0,
                    reason,
                )
            )
        return [
            self.fresh(tensor, f"output of {kind} '{operation.name}'")
            for tensor in node.outputs
        ]

    def _handler(self, operation):
        if not isinstance(operation, keras.layers.Layer):
            return self._operation
        if getattr(operation, "quantization_mode", None) is not None:
            raise _Unsupported("quantized layer")
        if getattr(operation, "lora_enabled", False):
            raise _Unsupported("LoRA-enabled layer")
        if isinstance(operation, keras.Model):
            raise _Unsupported("nested model: its channels are not traced")
        for types, handler in (
            (InvertedResidual, self._inverted_residual),
            (DepthwiseSeparableConv2D, self._depthwise_separable),
            (CPConv2D, self._cp_conv),
            (LowRankDense, self._low_rank_dense),
            (ShuffleConv2D, self._shuffle_conv),
            (ChannelShuffle, self._channel_shuffle),
            (PartialConv2D, self._partial_conv),
            (_CONVOLUTIONS, self._conv),
            (keras.layers.Dense, self._dense),
            (_SEPARABLE_CONVOLUTIONS, self._separable_conv),
            (_DEPTHWISE_CONVOLUTIONS, self._depthwise_conv),
            (keras.layers.BatchNormalization, self._batch_norm),
            (keras.layers.Flatten, self._flatten),
            (_MERGES, self._merge),
            (keras.layers.Concatenate, self._concatenate),
            (keras.layers.Activation, self._activation),
            (_ELEMENTWISE, self._elementwise),
            (_SPATIAL, self._spatial),
        ):
            if isinstance(operation, types):
                return handler
        raise _Unsupported(
            f"{type(operation).__name__} is not known to keep channels "
            "apart, so pruning cannot see through it"
        )

    # Handlers: each returns the channel maps of the node's outputs, or
    # raises `_Unsupported` before recording anything.

    @staticmethod
    def _single(in_maps):
        if len(in_maps) != 1:
            raise _Unsupported(f"called on {len(in_maps)} inputs")
        return in_maps[0]

    @staticmethod
    def _check_channels_last(layer):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise _Unsupported("channels_first data format")

    def _conv(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        self._check_channels_last(layer)
        if layer.groups != 1:
            raise _Unsupported(
                f"grouped convolution (groups={layer.groups}): its channels "
                "are tied by group"
            )
        unit = self.new_unit(
            layer, layer.name, layer.filters, [(layer.kernel, -1)], layer.bias
        )
        self.slice(layer, layer.kernel, -2, in_map)
        self.slice(layer, layer.kernel, -1, unit.map)
        self.slice(layer, layer.bias, 0, unit.map)
        self.resize(layer, lambda plan: {"filters": plan.count(unit)})
        return [unit.map]

    def _dense(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        unit = self.new_unit(
            layer, layer.name, layer.units, [(layer.kernel, 1)], layer.bias
        )
        self.slice(layer, layer.kernel, 0, in_map)
        self.slice(layer, layer.kernel, 1, unit.map)
        self.slice(layer, layer.bias, 0, unit.map)
        self.resize(layer, lambda plan: {"units": plan.count(unit)})
        return [unit.map]

    def _separable_conv(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        self._check_channels_last(layer)
        # Position c * depth_multiplier + k of the depthwise output comes
        # from input channel c.
        depthwise_map = _repeat(in_map, layer.depth_multiplier)
        unit = self.new_unit(
            layer,
            layer.name,
            layer.filters,
            [(layer.pointwise_kernel, -1)],
            layer.bias,
        )
        self.slice(layer, layer.depthwise_kernel, -2, in_map)
        self.slice(layer, layer.pointwise_kernel, -2, depthwise_map)
        self.slice(layer, layer.pointwise_kernel, -1, unit.map)
        self.slice(layer, layer.bias, 0, unit.map)
        self.resize(layer, lambda plan: {"filters": plan.count(unit)})
        return [unit.map]

    def _depthwise_conv(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        self._check_channels_last(layer)
        out_map = _repeat(in_map, layer.depth_multiplier)
        self.slice(layer, layer.kernel, -2, in_map)
        self.slice(layer, layer.bias, 0, out_map)
        return [out_map]

    def _batch_norm(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        rank = len(node.input_tensors[0].shape)
        if layer.axis not in (-1, rank - 1):
            raise _Unsupported(f"normalizes axis {layer.axis}, not channels")
        self.slice_batch_norm(layer, layer, in_map)
        producer = node.input_tensors[0]._keras_history.operation
        unit = in_map.unit if in_map is not None else None
        if unit is not None and unit.layer is producer and layer.scale:
            unit.batch_norm = unit.batch_norm or layer
        return [in_map]

    def _flatten(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        self._check_channels_last(layer)
        shape = node.input_tensors[0].shape
        if in_map is None or any(dim is None for dim in shape[1:]):
            raise _Unsupported("input with unknown dimensions")
        # Channels-last flattening: position s * C + c holds channel c.
        return [in_map.tile(math.prod(shape[1:-1]))]

    def _merge(self, node, layer, in_maps):
        self.tie(in_maps, layer)
        return [in_maps[0]]

    def _concatenate(self, node, layer, in_maps):
        rank = len(node.outputs[0].shape)
        if layer.axis % rank != rank - 1:
            # Joined along another axis: every input fills the same channels.
            self.tie(in_maps, layer)
            return [in_maps[0]]
        if any(m is None for m in in_maps):
            raise _Unsupported("an input has an unknown number of channels")
        return [_ChannelMap.concatenate(in_maps)]

    def _activation(self, node, layer, in_maps):
        name = _activation_name(layer.activation)
        if name in _CHANNEL_MIXING_ACTIVATIONS:
            raise _Unsupported(f"{name} mixes channels")
        return self._elementwise(node, layer, in_maps)

    def _elementwise(self, node, layer, in_maps):
        return [self._single(in_maps)]

    def _spatial(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        self._check_channels_last(layer)
        return [in_map]

    def _operation(self, node, operation, in_maps):
        """A `keras.ops` call in a functional graph (e.g. `x + y`)."""
        kind = type(operation).__name__
        arguments = keras.tree.flatten(
            (node.arguments.args, node.arguments.kwargs)
        )
        constants_only = all(
            isinstance(a, (keras.KerasTensor, numbers.Number))
            for a in arguments
        )
        if kind in _ELEMENTWISE_OPS and constants_only and in_maps:
            if len(in_maps) > 1:
                self.tie(in_maps, operation)
            return [in_maps[0]]
        raise _Unsupported(f"operation {kind} is not traced")

    # tfcompress layers.

    def _inverted_residual(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        channels = node.input_tensors[0].shape[-1]
        if layer.uses_residual and (
            in_map is None
            or not np.array_equal(in_map.indices, np.arange(channels))
            or any(self.sets[s].size != channels for s in set(in_map.sets))
        ):
            raise _Unsupported(
                "its residual add meets input channels not aligned one to one"
            )
        hidden = None
        hidden_map = in_map
        if layer.expand is not None:
            hidden = self.new_unit(
                layer,
                f"{layer.name}/expand",
                layer.expand.filters,
                [(layer.expand.kernel, -1)],
                batch_norm=layer.expand_bn,
            )
            hidden_map = hidden.map
            self.slice(layer, layer.expand.kernel, -2, in_map)
            self.slice(layer, layer.expand.kernel, -1, hidden_map)
            self.slice_batch_norm(layer, layer.expand_bn, hidden_map)
        self.slice(layer, layer.depthwise.kernel, -2, hidden_map)
        self.slice_batch_norm(layer, layer.depthwise_bn, hidden_map)
        self.slice(layer, layer.project.kernel, -2, hidden_map)
        out = self.new_unit(
            layer,
            f"{layer.name}/project",
            layer.filters,
            [(layer.project.kernel, -1)],
            batch_norm=layer.project_bn,
        )
        self.slice(layer, layer.project.kernel, -1, out.map)
        self.slice_batch_norm(layer, layer.project_bn, out.map)
        if layer.uses_residual:
            self.tie([in_map, out.map], layer)
        in_sets = []
        if in_map is not None:
            in_sets = [self.sets[s] for s in np.unique(in_map.sets)]

        def resize(plan):
            config = {"filters": plan.count(out)}
            if hidden is not None:
                kept_in = plan.count_map(in_map, channels)
                kept_hidden = plan.count(hidden)
                original = (hidden.channel_set.size, channels)
                if (kept_hidden, kept_in) != original:
                    # The block makes round(C * expansion) hidden channels.
                    expansion = kept_hidden / kept_in
                    if expansion == 1:
                        # An expansion of 1 drops the expansion convolution;
                        # the next float above 1 keeps it, with C channels.
                        expansion = math.nextafter(1.0, 2.0)
                    if int(round(kept_in * expansion)) != kept_hidden:
                        raise RuntimeError(
                            f"Internal error: expansion {expansion!r} does "
                            f"not give {kept_hidden} hidden channels from "
                            f"{kept_in} in '{layer.name}'."
                        )
                    config["expansion"] = expansion
            return config

        self.resize(layer, resize)
        if layer.strides == (1, 1) and not layer.uses_residual:

            def keeps_residual_off(plan):
                if plan.count(out) == plan.count_map(in_map, channels):
                    return (
                        "keeping as many output as input channels would "
                        f"turn on the residual add of '{layer.name}'",
                        [out.channel_set, *in_sets],
                    )
                return None

            self.constraints.append(keeps_residual_off)
        return [out.map]

    def _depthwise_separable(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        depthwise_map = _repeat(in_map, layer.depth_multiplier)
        unit = self.new_unit(
            layer,
            layer.name,
            layer.filters,
            [(layer.pointwise.kernel, -1)],
            batch_norm=layer.pointwise_bn,
        )
        self.slice(layer, layer.depthwise.kernel, -2, in_map)
        self.slice_batch_norm(layer, layer.depthwise_bn, depthwise_map)
        self.slice(layer, layer.pointwise.kernel, -2, depthwise_map)
        self.slice(layer, layer.pointwise.kernel, -1, unit.map)
        self.slice_batch_norm(layer, layer.pointwise_bn, unit.map)
        self.resize(layer, lambda plan: {"filters": plan.count(unit)})
        return [unit.map]

    def _cp_conv(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        projection = layer.output_projection
        unit = self.new_unit(
            layer,
            layer.name,
            layer.filters,
            [(projection.kernel, -1)],
            projection.bias,
        )
        self.slice(layer, layer.input_projection.kernel, -2, in_map)
        self.slice(layer, projection.kernel, -1, unit.map)
        self.slice(layer, projection.bias, 0, unit.map)
        self.resize(layer, lambda plan: {"filters": plan.count(unit)})
        return [unit.map]

    def _low_rank_dense(self, node, layer, in_maps):
        in_map = self._single(in_maps)
        unit = self.new_unit(
            layer, layer.name, layer.units, [(layer.v.kernel, 1)], layer.v.bias
        )
        self.slice(layer, layer.u.kernel, 0, in_map)
        self.slice(layer, layer.v.kernel, 1, unit.map)
        self.slice(layer, layer.v.bias, 0, unit.map)
        self.resize(layer, lambda plan: {"units": plan.count(unit)})
        return [unit.map]

    def _shuffle_conv(self, node, layer, in_maps):
        raise _Unsupported(
            "grouped convolution and channel shuffle: its channels are "
            "tied by group and reordered"
        )

    def _channel_shuffle(self, node, layer, in_maps):
        raise _Unsupported("it reorders channels by group")

    def _partial_conv(self, node, layer, in_maps):
        raise _Unsupported(
            "it convolves only its first C // n_div channels, so which "
            "channels it convolves depends on their number"
        )


_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_SEPARABLE_CONVOLUTIONS = (
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_DEPTHWISE_CONVOLUTIONS = (
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Average,
)
# Layers that act on each element (or each channel) on its own.
_ELEMENTWISE = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,  # Includes SpatialDropout1D/2D/3D.
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
)
# Layers that move or pool along the spatial axes, never across channels.
_SPATIAL = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
)
# `keras.ops` classes that act element by element (with broadcasting).
_ELEMENTWISE_OPS = frozenset(
    (
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "TrueDivide",
        "Maximum",
        "Minimum",
        "Negative",
        "Abs",
        "Square",
        "Sqrt",
        "Exp",
        "Relu",
        "Relu6",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Gelu",
        "Silu",
        "HardSilu",
        "HardSigmoid",
        "Sigmoid",
        "Tanh",
        "Softplus",
        "Softsign",
    )
)


def _repeat(channel_map, count):
    return None if channel_map is None else channel_map.repeat(count)


def _activation_name(activation):
    try:
        return keras.activations.serialize(activation)
    except (TypeError, ValueError):
        return getattr(activation, "__name__", "")
