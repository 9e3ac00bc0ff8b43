"""Which channels of a Keras graph depend on which: the channel trace.

Removing a channel from a producer (a `Conv2D`, a `Dense`, ...) changes
every layer its output reaches. `ChannelTrace(model)` walks a functional
graph once
and gives every tensor a channel map (which channel of which channel set
each position of its last axis carries), ties the channel sets that an
element-wise merge makes share channels, records which axis of which weight
follows which map, and freezes the channel sets that reach a layer it cannot
see through (a barrier) or a model output. Deciding, scoring and rebuilding
(`channel_plan`, `channel_importance`, `channel_rebuild`) only read it.

What each layer does to channels is its channel rule, looked up in the
layer registry (`tfcompress.graph.register_layer(..., channels=...)`); the
rules for Keras's layers are built from `channel_rules`. A rule is
`fn(trace, node, layer, in_maps) -> out_maps`: it records what it needs
through the trace's public methods below (`new_unit`, `slice`, `resize`,
`tie`, `freeze`, `fresh`, `constraints`) and returns the channel map of
each output, or raises `UntraceableLayer` (before recording anything) to
make the layer a barrier.
"""

import dataclasses

import keras
import numpy as np

from tfcompress.graph import functional_graph
from tfcompress.graph import registry

# Activations that mix the channels they act on: the producer of such an
# output cannot lose a channel without changing the others.
CHANNEL_MIXING_ACTIVATIONS = ("softmax", "log_softmax")


class UntraceableLayer(Exception):
    """A layer the trace cannot see through; the message says why.

    A channel rule raises it, before recording anything, to leave the
    channels that reach the layer alone (a barrier).
    """


class ChannelMap:
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
        return ChannelMap(
            np.repeat(self.sets, count), np.repeat(self.indices, count)
        )

    def tile(self, count):
        """Position `s * C + c` carries what position `c` carried."""
        if count == 1:
            return self
        return ChannelMap(
            np.tile(self.sets, count), np.tile(self.indices, count)
        )

    @staticmethod
    def concatenate(maps):
        return ChannelMap(
            np.concatenate([m.sets for m in maps]),
            np.concatenate([m.indices for m in maps]),
        )


@dataclasses.dataclass(eq=False)
class ChannelSet:
    """Channels made by one producer (or the model input, or a barrier)."""

    id: int
    size: int
    unit: "ChannelUnit | None" = None
    frozen: str | None = None


@dataclasses.dataclass(eq=False)
class ChannelUnit:
    """A prunable channel set: its layer and the weights that rank it.

    `kernels` lists `(variable, output_axis)`: the filter weights whose
    norm (or Taylor score) ranks the channels; `bias` joins them for the
    Taylor score. `batch_norm` is the `BatchNormalization` right after it.
    `groups > 1` (a grouped convolution's filters) makes every one of
    that many equal blocks of channels keep the same number.
    """

    name: str
    layer: keras.layers.Layer
    channel_set: ChannelSet
    kernels: list
    bias: object = None
    batch_norm: object = None
    map: ChannelMap | None = None
    groups: int = 1


@dataclasses.dataclass(frozen=True)
class Barrier:
    name: str
    layer_type: str
    channels: int
    reason: str


class ChannelTrace:
    """Walks a model's graph and records what pruning needs.

    Attributes:
        sets: Every `ChannelSet`, indexed by id.
        units: The prunable `ChannelUnit`s, in graph order.
        ties: `(set_a, set_b, layer_name)` for channel sets that must keep
            the same channels.
        slices: `{id(layer): {id(variable): [(axis, channel_map)]}}`: the
            axis of each weight that follows a channel map.
        resizes: `{id(layer): [fn(plan) -> dict of config updates]}`.
        constraints: `fn(plan) -> None or (reason, [channel sets])`:
            layer rules that a choice of channel counts must satisfy; when
            one fails, the first set of the list that is not frozen yet is
            left alone.
        barriers: `Barrier` rows for layers with weights that are left
            alone.
    """

    def __init__(self, model):
        self.model = model
        graph = functional_graph.functional_graph(model, "prune_channels")
        self.sets = []
        self.units = []
        self.ties = []
        self.slices = {}
        self.resizes = {}
        self.constraints = []
        self.barriers = []
        self.maps = {}
        calls = functional_graph.call_counts(graph)
        for node in functional_graph.nodes(graph):
            self._visit(node, calls[id(node.operation)])
        for tensor in graph.outputs:
            operation = functional_graph.producer(tensor)
            self._freeze_output(self.maps.get(id(tensor)), operation)

    # Bookkeeping.

    def new_set(self, size, frozen=None):
        channel_set = ChannelSet(len(self.sets), size, frozen=frozen)
        self.sets.append(channel_set)
        return channel_set

    def new_unit(self, layer, name, size, kernels, bias=None, batch_norm=None):
        channel_set = self.new_set(size)
        unit = ChannelUnit(name, layer, channel_set, kernels, bias, batch_norm)
        channel_set.unit = unit
        unit.map = ChannelMap.identity(channel_set.id, size, unit)
        self.units.append(unit)
        activation = getattr(layer, "activation", None)
        if activation is not None and activation_name(activation) in (
            CHANNEL_MIXING_ACTIVATIONS
        ):
            self.freeze(
                unit.map,
                f"its {activation_name(activation)} activation mixes its "
                "channels",
            )
        return unit

    def fresh(self, tensor, reason):
        """A map for a tensor whose channels are never pruned."""
        shape = tensor.shape
        if not shape or shape[-1] is None:
            return None
        channel_set = self.new_set(shape[-1], reason)
        return ChannelMap.identity(channel_set.id, shape[-1])

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
            raise UntraceableLayer(problem)
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
                raise UntraceableLayer(
                    f"shared layer, called {calls} times in the model"
                )
            out_maps = self._handler(operation)(self, node, operation, in_maps)
        except UntraceableLayer as error:
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
                Barrier(
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
        if getattr(operation, "quantization_mode", None) is not None:
            raise UntraceableLayer("quantized layer")
        if getattr(operation, "lora_enabled", False):
            raise UntraceableLayer("LoRA-enabled layer")
        if functional_graph.is_graph_model(operation):
            raise UntraceableLayer("nested model: its channels are not traced")
        rule = registry.rule_for(operation, "channels")
        if rule is None:
            raise UntraceableLayer(
                f"{type(operation).__name__} is not known to keep channels "
                "apart, so pruning cannot see through it (a channel rule "
                "registered with tfcompress.graph.register_layer would "
                "tell it)"
            )
        return rule

    # Helpers for channel rules.

    @staticmethod
    def single(in_maps):
        """The one input map of a layer called on one tensor."""
        if len(in_maps) != 1:
            raise UntraceableLayer(f"called on {len(in_maps)} inputs")
        return in_maps[0]

    @staticmethod
    def check_channels_last(layer):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise UntraceableLayer("channels_first data format")


def activation_name(activation):
    """The serialized name of an activation function (e.g. `"relu"`)."""
    try:
        return keras.activations.serialize(activation)
    except (TypeError, ValueError):
        return getattr(activation, "__name__", "")


def repeat(channel_map, count):
    """`channel_map.repeat(count)`, or `None` for an unknown map."""
    return None if channel_map is None else channel_map.repeat(count)
