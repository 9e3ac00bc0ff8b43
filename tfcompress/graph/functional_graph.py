"""The graph of a Sequential or functional model, node by node.

A node is one call of an operation (a layer, or a `keras.ops` call such as
`x + y`) on symbolic tensors: `node.operation`, `node.input_tensors`,
`node.outputs` and `node.arguments` (the call's arguments, with tensors
to fill in) are what the tools read. `nodes(graph)` lists them in an order
where every node comes after the nodes that produce its inputs;
`run_graph` re-runs the graph on new inputs, calling a function of the
tools' choosing at each node (to rebuild a model with some layers
replaced, or with layers inserted between others).
"""

import collections

import keras

from tfcompress.graph import keras_internals

producer = keras_internals.producer


def is_graph_model(model):
    """Whether `model` is a Sequential or functional model (has a graph)."""
    return isinstance(model, keras.Sequential) or keras_internals.is_functional(
        model
    )


def functional_graph(model, tool="This tool", hint=""):
    """The functional graph of a built Sequential or functional model.

    Args:
        model: The model.
        tool: The name of the function asking, for the error message.
        hint: What to do instead with a subclassed model, for the error
            message.

    Returns:
        The model itself when functional; the functional model a built
        `Sequential` runs.

    Raises:
        ValueError: For an unbuilt Sequential model, a subclassed model
            (whose `call()` hides its graph) or anything else.
    """
    if isinstance(model, keras.Sequential):
        graph = keras_internals.sequential_graph(model)
        if graph is None:
            raise ValueError(
                f"{tool} needs a built model: give the Sequential model "
                f"{model.name!r} a `keras.Input(shape)` or call "
                "`model.build(input_shape)` first. Received: a Sequential "
                "model that is not built"
            )
        return graph
    if keras_internals.is_functional(model):
        return model
    kind = type(model).__name__
    raise ValueError(
        f"{tool} needs a Sequential or functional model: it follows the "
        "model's graph of layers, which a subclassed model's `call()` "
        "hides. Rebuild the model with `keras.Model(inputs, outputs)` or "
        "`keras.Sequential` (its layers can stay the same)."
        + (f" {hint}" if hint else "")
        + f" Received: model of type {kind}"
        + (f" {model.name!r}" if hasattr(model, "name") else "")
    )


def nodes(graph):
    """The nodes of `graph` that call an operation, producers first."""
    by_depth = keras_internals.nodes_by_depth(graph)
    ordered = []
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            ordered.append(node)
    return ordered


def input_nodes(graph):
    """The nodes of `graph` that stand for its inputs."""
    return [
        node
        for node in nodes(graph)
        if node.is_input or isinstance(node.operation, keras.layers.InputLayer)
    ]


def call_nodes(graph):
    """The nodes of `graph` that call a layer or op (inputs left out)."""
    return [
        node
        for node in nodes(graph)
        if node.operation
        and not node.is_input
        and not isinstance(node.operation, keras.layers.InputLayer)
    ]


def call_counts(graph):
    """`{id(operation): number of nodes calling it}` (2+ means shared)."""
    return collections.Counter(id(node.operation) for node in nodes(graph))


def consumers(graph):
    """`{id(tensor): [nodes that read it]}` for every tensor of `graph`."""
    found = {}
    for node in call_nodes(graph):
        for tensor in node.input_tensors:
            found.setdefault(id(tensor), []).append(node)
    return found


def run_graph(graph, inputs, node_fn):
    """Runs `graph` on `inputs`, computing each node with `node_fn`.

    The walk is `Functional`'s own, with the node (not only its operation)
    handed to `node_fn(node, args, kwargs)`, which returns the node's
    outputs: call `node.operation(*args, **kwargs)` to keep the node as it
    is, or call something else in its place.

    Args:
        graph: A functional graph (see `functional_graph`).
        inputs: Tensors for `graph.inputs`, in order (symbolic tensors to
            build a new model, or values).
        node_fn: `fn(node, args, kwargs) -> outputs`.

    Returns:
        The list of tensors computed for `graph.outputs`.
    """
    tensors = {}
    for reference, value in zip(graph.inputs, keras.tree.flatten(inputs)):
        tensors[id(reference)] = value
    for node in call_nodes(graph):
        if any(id(x) not in tensors for x in node.input_tensors):
            continue
        args, kwargs = node.arguments.fill_in(tensors)
        outputs = node_fn(node, args, kwargs)
        for reference, value in zip(node.outputs, keras.tree.flatten(outputs)):
            tensors[id(reference)] = value
    return [tensors[id(x)] for x in graph.outputs]


def fresh_inputs(graph):
    """New `keras.Input`s with the shapes, dtypes and names of `graph`'s."""
    inputs = []
    for index, tensor in enumerate(graph.inputs):
        name = getattr(tensor, "name", None) or f"input_{index}"
        inputs.append(
            keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=name)
        )
    return inputs


def model_from(inputs, outputs, name):
    """A functional model, with single inputs / outputs unwrapped."""
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=name,
    )
