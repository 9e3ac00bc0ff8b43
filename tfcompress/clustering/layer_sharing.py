"""Parameter sharing across layers: several layers become one.

Weight clustering shares values inside a kernel; this shares whole layers:
each group of layers with the same configuration (the repeated blocks of a
stage, say) is replaced by one layer called at every place the group's
layers were (as ShapeShifter-style and ALBERT-style sharing do; here the
bank is one layer per group). The model keeps its graph and its MACs;
its parameters, and its `.tflite` file, hold each group's weights once:
the converter writes one buffer that every op of the group reads, with
builtin ops only (no custom op, no gather from a bank). Fine-tune after
sharing: the shared weights start as the group's mean (or first layer's)
and get the gradients of every place they are used.
"""

import dataclasses

import keras
import numpy as np

from tfcompress.graph import cloning
from tfcompress.graph import functional_graph

INITIALIZATIONS = ("mean", "first")


@dataclasses.dataclass(frozen=True)
class SharedGroup:
    """One group of layers replaced by one shared layer.

    Attributes:
        name: The shared layer's name (the first layer's).
        layers: The names of the layers it replaces, in graph order.
        params_per_layer: Parameters of each layer of the group.
    """

    name: str
    layers: tuple
    params_per_layer: int

    @property
    def params_saved(self):
        return (len(self.layers) - 1) * self.params_per_layer


@dataclasses.dataclass(frozen=True)
class LayerSharingReport:
    """What `share_layers` shared.

    Attributes:
        groups: The `SharedGroup`s.
        params_before: The input model's parameter count.
        params_after: The shared model's parameter count.
        initialization: `"mean"` or `"first"`.
    """

    groups: tuple
    params_before: int
    params_after: int
    initialization: str

    @property
    def params_ratio(self):
        """Parameters after / before."""
        return self.params_after / max(1, self.params_before)

    def __str__(self):
        lines = [
            f"Layer sharing: {len(self.groups)} group(s), parameters "
            f"{self.params_before:,} -> {self.params_after:,} "
            f"({self.params_ratio:.3f}x), shared weights initialized as the "
            + ("group's mean" if self.initialization == "mean"
               else "first layer's")
        ]
        for group in self.groups:
            lines.append(
                f"  {group.name}: {', '.join(group.layers)} "
                f"({group.params_per_layer:,} parameters each, "
                f"{group.params_saved:,} saved)"
            )
        return "\n".join(lines)


def shareable_groups(model, min_params=1):
    """The groups of layers of `model` that `share_layers` can merge.

    Layers are shareable when they have the same class, the same
    configuration apart from their name, weights of the same shapes, the
    same input shape, and each is called once. Layers without weights
    (nothing to save) and layers already shared are left out.

    Args:
        model: A built Sequential or functional model.
        min_params: Leave out layers with fewer parameters. Defaults to
            `1`.

    Returns:
        A list of lists of layer names (each of 2+ layers, graph order).
    """
    graph = functional_graph.functional_graph(model, "shareable_groups")
    calls = functional_graph.call_counts(graph)
    by_signature = {}
    for node in _nodes_by_layer(graph).values():
        layer = node.operation
        if (
            not isinstance(layer, keras.layers.Layer)
            or calls[id(layer)] != 1
            or layer.count_params() < max(1, min_params)
        ):
            continue
        signature = (
            type(layer),
            repr(sorted(_config_without_name(layer).items())),
            tuple(tuple(w.shape) for w in layer.weights),
            _input_shapes(node),
        )
        by_signature.setdefault(signature, []).append(layer.name)
    return [names for names in by_signature.values() if len(names) > 1]


def share_layers(model, groups=None, *, initialization="mean"):
    """Returns a copy of `model` in which each group of layers is one layer.

    Args:
        model: A built Sequential or functional model (left untouched).
        groups: A list of groups, each a list of 2+ layer names whose
            layers have the same class, configuration (name aside), weight
            shapes and input shape. Defaults to `shareable_groups(model)`:
            every such group.
        initialization: The shared layer's weights: `"mean"` (element-wise
            mean of the group's weights, every layer's knowledge kept in
            part) or `"first"` (the first layer's). Defaults to `"mean"`.

    Returns:
        `(shared_model, report)`: a functional model (compiled like
        `model`, fresh optimizer, when `model` is compiled) whose shared
        layers each hold one set of weights, and a `LayerSharingReport`.

    Raises:
        ValueError: For an unknown layer, a group of fewer than 2 layers,
            a layer in two groups, layers that differ (the error names the
            first difference), a layer already called more than once, or
            no shareable group at all.

    Example:

    ```python
    shared, report = tfcompress.clustering.share_layers(model)
    print(report)
    shared.fit(x, y, epochs=1)  # Recover what the averaging lost.
    tfcompress.to_tflite(shared, "shared.tflite", quantization="int8", data=x)
    ```
    """
    if initialization not in INITIALIZATIONS:
        raise ValueError(
            f"`initialization` must be one of {list(INITIALIZATIONS)}. "
            f"Received: {initialization!r}"
        )
    graph = functional_graph.functional_graph(
        model, "share_layers", hint="Rebuild it as a functional model."
    )
    if groups is None:
        groups = shareable_groups(model)
        if not groups:
            raise ValueError(
                f"Model {model.name!r} has no shareable group: no two layers "
                "with weights have the same class, configuration (name "
                "aside) and input shape. Pass `groups` to say which layers "
                "to share."
            )
    nodes = _nodes_by_layer(graph)
    groups = _checked_groups(graph, nodes, groups)
    shared_of = {}
    shared_groups = []
    for names in groups:
        layers = [nodes[name].operation for name in names]
        shapes = _input_shapes(nodes[names[0]])
        shared = cloning.copy_layer(layers[0], name=names[0])
        shared.build(shapes[0] if len(shapes) == 1 else list(shapes))
        shared.set_weights(_initial_weights(layers, initialization))
        for name in names:
            shared_of[name] = shared
        shared_groups.append(
            SharedGroup(names[0], tuple(names), layers[0].count_params())
        )
    new_model = cloning.clone_model(
        graph, clone_layer=lambda layer: shared_of.get(layer.name)
    )
    new_model = cloning.compile_like(new_model, model)
    return new_model, LayerSharingReport(
        groups=tuple(shared_groups),
        params_before=model.count_params(),
        params_after=new_model.count_params(),
        initialization=initialization,
    )


def _nodes_by_layer(graph):
    """`{layer name: its first call node}`, in graph order."""
    nodes = {}
    for node in functional_graph.call_nodes(graph):
        nodes.setdefault(node.operation.name, node)
    return nodes


def _config_without_name(layer):
    config = dict(layer.get_config())
    config.pop("name", None)
    return config


def _input_shapes(node):
    return tuple(tuple(t.shape) for t in node.input_tensors)


def _checked_groups(graph, nodes, groups):
    if isinstance(groups, str) or not all(
        isinstance(g, (list, tuple)) for g in groups
    ):
        raise ValueError(
            "`groups` must be a list of lists of layer names, e.g. "
            f"[['block2', 'block3']]. Received: {groups!r}"
        )
    calls = functional_graph.call_counts(graph)
    order = {name: i for i, name in enumerate(nodes)}
    seen = set()
    checked = []
    for group in groups:
        names = list(group)
        if len(names) < 2:
            raise ValueError(
                f"A group needs 2 or more layers to share. Received: {names}"
            )
        for name in names:
            if name not in nodes:
                raise ValueError(
                    f"No layer named {name!r} in model {graph.name!r}. Its "
                    f"layers with weights: "
                    f"{[n for n, v in nodes.items() if v.operation.weights]}"
                )
            if name in seen:
                raise ValueError(
                    f"Layer {name!r} is in two groups; a layer can be shared "
                    "in one group only."
                )
            if calls[id(nodes[name].operation)] != 1:
                raise ValueError(
                    f"Layer {name!r} is already called more than once (shared)"
                    "; share its calls' group by naming it alone."
                )
            seen.add(name)
        names.sort(key=order.get)
        first = nodes[names[0]]
        for name in names[1:]:
            difference = _difference(first, nodes[name])
            if difference:
                raise ValueError(
                    f"Layers {names[0]!r} and {name!r} cannot share weights: "
                    f"{difference}. Group only layers of the same class, "
                    "configuration and input shape (`shareable_groups` "
                    "lists them)."
                )
        checked.append(names)
    return checked


def _difference(a, b):
    """What makes the layers of nodes `a` and `b` unshareable, or `""`."""
    la, lb = a.operation, b.operation
    if type(la) is not type(lb):
        return f"classes {type(la).__name__} vs {type(lb).__name__}"
    ca, cb = _config_without_name(la), _config_without_name(lb)
    for key in sorted(set(ca) | set(cb)):
        if ca.get(key) != cb.get(key):
            return f"config {key!r}: {ca.get(key)!r} vs {cb.get(key)!r}"
    sa, sb = list(_input_shapes(a)), list(_input_shapes(b))
    if sa != sb:
        return f"input shapes {sa} vs {sb}"
    if not la.weights:
        return "the layers have no weights (nothing to share)"
    return ""


def _initial_weights(layers, initialization):
    if initialization == "first":
        return layers[0].get_weights()
    stacked = zip(*(layer.get_weights() for layer in layers))
    return [np.mean(np.stack(values), axis=0).astype(values[0].dtype)
            for values in stacked]
