"""A functional model's graph, flattened down to primitive layers and ops.

Quantization-aware training puts fake-quant ops between the primitive
computations TFLite fuses (conv, batch norm, activation, add), and those
sit inside nested models and composite layers (`InvertedResidual` holds
six). `flatten_model` rebuilds a Sequential or functional model as one flat
functional graph of fresh copies of its layers, nested models and the
layers chosen by `inline` replaced by their insides, with the same weights
and the same outputs; a rewrite then works on that one graph.
"""

import keras

from tfcompress.graph import cloning
from tfcompress.graph import functional_graph
from tfcompress.graph import layer_tree


def flatten_model(model, inline=lambda layer: False):
    """Returns a flat functional copy of `model` and its layer paths.

    Nested Sequential and functional models, and the layers for which
    `inline(layer)` is true, are inlined; every other layer is copied
    (shared layers stay shared); `keras.ops` nodes are re-applied. The copy
    has the same weights, so it computes the same outputs, and the input
    model is not touched.

    Args:
        model: A built Sequential or functional model.
        inline: `fn(layer) -> bool or class`: whether to replace a layer
            by the sublayers and ops its `call()` runs; a class (a subclass
            of the layer's, built from its config and given its weights)
            says whose `call()` to run instead. Defaults to none.

    Returns:
        `(flat_model, paths)`: `paths` maps `id(layer)` of each layer of
        `flat_model` to the path of the original layer it copies, e.g.
        `"block1/expand"`.
    """
    graph = functional_graph.functional_graph(model, "flatten_model")
    inputs = functional_graph.fresh_inputs(graph)
    flattening = _Flattening(inline)
    outputs = flattening.inline_graph(graph, inputs, "")
    flat = functional_graph.model_from(inputs, outputs, f"{model.name}_flat")
    return flat, flattening.paths


class _Flattening:
    def __init__(self, inline):
        self.inline = inline
        self.copies = {}
        self.weights_set = set()
        self.paths = {}

    def inline_graph(self, graph, inputs, prefix):
        def node_fn(node, args, kwargs):
            operation = node.operation
            if functional_graph.is_graph_model(operation):
                inner = functional_graph.functional_graph(operation)
                return self.inline_graph(
                    inner, args, f"{prefix}{operation.name}/"
                )
            if not isinstance(operation, keras.layers.Layer):
                # A `keras.ops` call recorded in the graph: apply the same op.
                return operation(*args, **kwargs)
            path = f"{prefix}{operation.name}"
            inline = self.inline(operation)
            if inline:
                layer_class = None if inline is True else inline
                outputs = self.inline_layer(
                    operation, path, args, kwargs, layer_class
                )
                return _with_static_shapes(outputs, node.outputs)
            copy = self.layer_copy(operation, path)
            outputs = copy(*args, **kwargs)  # Builds the copy.
            if id(operation) not in self.weights_set:
                copy.set_weights(operation.get_weights())
                self.weights_set.add(id(operation))
            return outputs

        return functional_graph.run_graph(graph, inputs, node_fn)

    def layer_copy(self, layer, path):
        if id(layer) not in self.copies:
            copy = cloning.copy_layer(layer, path.replace("/", "_"))
            self.copies[id(layer)] = copy
            self.paths[id(copy)] = path
        return self.copies[id(layer)]

    def inline_layer(self, layer, path, args, kwargs, layer_class=None):
        """Inlines a composite layer: its sublayers' calls on `args`.

        The layer is copied (as `layer_class` if given) and built with the
        original's weights, then its own `call` runs on the symbolic
        inputs, which records its sublayers and ops as nodes of the graph
        being built. Its sublayers are then renamed with the layer's path,
        so names stay unique in the flat model.
        """
        if id(layer) not in self.copies:
            copy = cloning.copy_layer(layer, layer_class=layer_class)
            build_config = layer.get_build_config()
            if build_config:
                # Built as the original was (a layer of several inputs, such
                # as attention, records each input's shape).
                copy.build_from_config(build_config)
            else:
                copy.build(
                    keras.tree.map_structure(lambda x: x.shape, args[0])
                )
            copy.set_weights(layer.get_weights())
            for sublayer in layer_tree.all_layers(copy):
                sub_path = f"{path}/{sublayer.name}"
                # A functional model needs unique names: two blocks both
                # hold an "expand". The copy is ours, so renaming is harmless.
                sublayer.name = sub_path.replace("/", "_")
                self.paths[id(sublayer)] = sub_path
            self.copies[id(layer)] = copy
        return self.copies[id(layer)].call(*args, **kwargs)


def _with_static_shapes(outputs, references):
    """`outputs`, reshaped where their shapes lost what `references` knew.

    Running a layer's `call()` op by op on symbolic tensors can lose
    static dimensions that the layer's own output spec knew (attention
    with a mask computes some shapes at run time); the next layers need
    them to build. A reshape to the known shape restores them (TFLite
    runs it as a RESHAPE, which keeps an int8 tensor's scale).
    """
    flat = keras.tree.flatten(outputs)
    if len(flat) != len(references):
        return outputs
    restored = []
    for tensor, reference in zip(flat, references):
        known = tuple(reference.shape)
        if tuple(tensor.shape) != known and len(tensor.shape) == len(known):
            if all(dim is not None for dim in known[1:]):
                tensor = keras.ops.reshape(tensor, (-1, *known[1:]))
        restored.append(tensor)
    return keras.tree.pack_sequence_as(outputs, restored)
