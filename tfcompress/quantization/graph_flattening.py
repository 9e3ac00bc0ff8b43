"""A functional model's graph, flattened down to primitive layers and ops.

Quantization-aware training puts fake-quant ops between the primitive
computations TFLite fuses (conv, batch norm, activation, add), and those
sit inside nested models and composite tfcompress layers
(`InvertedResidual` holds six). `flatten_model` rebuilds a Sequential or
functional model as one flat functional graph of fresh copies of its
primitive layers, with the same weights and the same outputs; the
quantization rewrite then works on that graph alone.

Keras's graph internals (`_nodes_by_depth`, `node.arguments`) are private,
but they are what `Functional.call` itself runs through; there is no public
graph walk with per-node access.
"""

import keras

_COMPOSITE_PACKAGE = "tfcompress.layers"


def graph_of(model):
    """Returns the functional graph of a Sequential or functional model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                f"The Sequential model {model.name!r} has no known input "
                "shape. Start it with `keras.Input(shape)` or build it "
                "before quantizing."
            )
        return graph
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model
    raise ValueError(
        "Expected a Sequential or functional Keras model: the rewrite follows "
        "the model's graph, which a subclassed model does not expose. "
        f"Received: {type(model).__name__} {getattr(model, 'name', '')!r}. "
        "Rebuild it with the functional API (its layers can stay the same)."
    )


def run_graph(graph, inputs, node_fn):
    """Runs `graph` on `inputs`, computing each node with `node_fn`.

    `node_fn(node, args, kwargs)` returns the node's outputs; the walk is
    `Functional._run_through_graph`'s, with the node (not only its
    operation) handed over.
    """
    tensors = {}
    for reference, value in zip(graph.inputs, keras.tree.flatten(inputs)):
        tensors[id(reference)] = value
    depths = sorted(graph._nodes_by_depth, reverse=True)
    for depth in depths:
        for node in graph._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(x) not in tensors for x in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            outputs = node_fn(node, args, kwargs)
            for reference, value in zip(
                node.outputs, keras.tree.flatten(outputs)
            ):
                tensors[id(reference)] = value
    return [tensors[id(x)] for x in graph.outputs]


def is_composite(layer):
    """Whether `layer` is a tfcompress layer built from sublayers."""
    return (
        type(layer).__module__.startswith(_COMPOSITE_PACKAGE)
        and bool(layer._layers)
        and not isinstance(layer, keras.Model)
    )


def copy_layer(layer, name, input_shape=None):
    """A fresh layer with `layer`'s config (renamed) and, once built, weights.

    With `input_shape` the copy is built and given the weights at once;
    otherwise the caller builds it by calling it and then copies weights.
    """
    config = layer.get_config()
    config["name"] = name
    copy = type(layer).from_config(config)
    if input_shape is not None:
        copy.build(input_shape)
        copy.set_weights(layer.get_weights())
    return copy


def flatten_model(model):
    """Returns a flat functional copy of `model` and its layer paths.

    Nested Sequential and functional models and composite tfcompress layers
    are inlined; every other layer is copied (shared layers stay shared);
    `keras.ops` nodes are re-applied. The copy has the same weights, so it
    computes the same outputs, and the input model is not touched.

    Returns:
        `(flat_model, paths)`: `paths` maps each layer of `flat_model` to
        the path of the original layer it copies, e.g. `"block1/expand"`.
    """
    graph = graph_of(model)
    inputs = [
        keras.Input(
            batch_shape=x.shape, dtype=x.dtype, name=_input_name(x, i)
        )
        for i, x in enumerate(graph.inputs)
    ]
    copies = {}
    paths = {}
    outputs = _inline(graph, inputs, "", copies, paths)
    flat = keras.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=f"{model.name}_flat",
    )
    return flat, paths


def _input_name(tensor, index):
    name = getattr(tensor, "name", None)
    return name if name else f"input_{index}"


def _inline(graph, inputs, prefix, copies, paths):
    def node_fn(node, args, kwargs):
        operation = node.operation
        if isinstance(operation, keras.Model):
            inner = graph_of(operation)
            return _inline(
                inner,
                args,
                f"{prefix}{operation.name}/",
                copies,
                paths,
            )
        if isinstance(operation, keras.layers.Layer):
            path = f"{prefix}{operation.name}"
            if is_composite(operation):
                return _inline_composite(
                    operation, path, args, kwargs, copies, paths
                )
            copy = _layer_copy(operation, path, copies, paths)
            outputs = copy(*args, **kwargs)  # Builds the copy.
            _set_weights_once(operation, copy, copies)
            return outputs
        # A `keras.ops` call recorded in the graph: apply the same op.
        return operation(*args, **kwargs)

    return run_graph(graph, inputs, node_fn)


def _layer_copy(layer, path, copies, paths):
    key = id(layer)
    if key not in copies:
        copy = copy_layer(layer, path.replace("/", "_"))
        copies[key] = copy
        paths[id(copy)] = path
    return copies[key]


def _set_weights_once(layer, copy, copies):
    marker = (id(layer), "weights_set")
    if marker in copies:
        return
    copy.set_weights(layer.get_weights())
    copies[marker] = copy


def _inline_composite(layer, path, args, kwargs, copies, paths):
    """Inlines a composite tfcompress layer: its sublayers' calls on `args`.

    The composite is copied and built with the original's weights, then its
    own `call` runs on the symbolic inputs, which records its sublayers and
    ops as nodes of the graph being built. Its sublayers are then renamed
    with the composite's path, so names stay unique in the flat model.
    """
    key = id(layer)
    if key not in copies:
        shape = keras.tree.map_structure(lambda x: x.shape, args[0])
        copy = copy_layer(layer, layer.name, input_shape=shape)
        for sublayer in copy._flatten_layers(include_self=False):
            sub_path = f"{path}/{sublayer.name}"
            # A functional model needs unique names: two blocks both hold
            # an "expand". The copy is ours, so renaming it is harmless.
            sublayer.name = sub_path.replace("/", "_")
            paths[id(sublayer)] = sub_path
        copies[key] = copy
    return copies[key].call(*args, **kwargs)
