"""Every access tfcompress makes to Keras's private internals, in one place.

Keras 3 has no public API to walk a functional model node by node, to find
the operation that produced a symbolic tensor, or to list the sublayers of a
layer that is not a model. tfcompress needs all three, so they are read
here and nowhere else; `tests/graph/test_keras_internals.py` checks each one
on a small model, so a Keras release that changes one fails loudly there
instead of silently in a tool. Each function says which attribute it reads
and why there is no public equivalent.

Keras is pinned to the minor versions these tests ran on (see
`pyproject.toml`).
"""

import functools

import keras


def nodes_by_depth(graph):
    """`graph._nodes_by_depth`: `{depth: [Node]}` of a functional graph.

    It is what `Functional._run_through_graph` itself walks: running the
    depths from the deepest to 0 visits every node after the nodes that
    produce its inputs. `model.operations` is public but gives operations,
    not their calls (a shared layer has one operation and several nodes).
    """
    return graph._nodes_by_depth


def producer(tensor):
    """The operation whose call produced the symbolic `tensor`.

    `KerasTensor._keras_history` is `(operation, node_index, tensor_index)`;
    no public attribute links a tensor to its producer.
    """
    return tensor._keras_history.operation


def sublayers(layer, recursive=False, include_self=False):
    """The layers tracked by `layer`, in the order they were assigned.

    `Layer._flatten_layers` is private, but it is what `Model.layers` is a
    thin wrapper over, and the only way to list the sublayers of a `Layer`
    that is not a `Model` (a composite layer such as `InvertedResidual`).
    """
    return list(
        layer._flatten_layers(include_self=include_self, recursive=recursive)
    )


def receives_mask(layer):
    """Whether a mask reaches any call of `layer` in a functional graph.

    Keras passes a mask (from `Embedding(mask_zero=True)`, `Masking`) as
    the `mask` argument of each call it records; `Layer._inbound_nodes`
    holds those calls and `Node.arguments.kwargs` their arguments. There is
    no public way to ask a layer how it was called.
    """
    for node in getattr(layer, "_inbound_nodes", []):
        if node.arguments.kwargs.get("mask") is not None:
            return True
    return False


def sequential_graph(model):
    """The functional graph a built `Sequential` model runs, or `None`.

    `Sequential` builds a `Functional` twin in `_functional` once its input
    shape is known; its nodes are what the graph tools walk.
    """
    return getattr(model, "_functional", None)


def is_functional(model):
    """Whether `model` is a functional model (built from inputs/outputs).

    `Functional` is not exported by Keras; a subclassed model has no graph.
    """
    from keras.src.models.functional import Functional

    return isinstance(model, Functional) and not isinstance(
        model, keras.Sequential
    )


@functools.cache
def op_class(module, name):
    """The `keras.ops` operation class `name` of `keras.src.ops.<module>`.

    A `keras.ops` call on a symbolic tensor records an instance of such a
    class in a functional graph (`x + 1` records `numpy.Add`); Keras does
    not export the classes, so rules for them find them here. `None` when
    this Keras has no such class.
    """
    import importlib

    ops_module = importlib.import_module(f"keras.src.ops.{module}")
    return getattr(ops_module, name, None)


@functools.cache
def application_layer_class(module, name):
    """The layer class `name` of `keras.src.applications.<module>`.

    Some models of `keras.applications` hold layers of their own
    (`convnext.LayerScale`, `inception_resnet_v2.CustomScaleLayer`) that
    Keras does not export; rules for them find them here. `None` when this
    Keras has no such class.
    """
    import importlib

    try:
        applications_module = importlib.import_module(
            f"keras.src.applications.{module}"
        )
    except ImportError:
        return None
    return getattr(applications_module, name, None)


def intercept_call(operation, wrapper):
    """Routes every call of `operation` through `wrapper(original, ...)`.

    `Operation.__call__` looks `self.call` up (or `self.quantized_call` for
    a layer quantized by Keras) at every call, so an instance attribute
    shadows it without touching the class; it is written to the instance
    `__dict__` directly so that `Layer.__setattr__`'s tracking does not
    record it. Undo it with `restore_call(*handle)`.

    Returns:
        A handle `(operation, attribute, previous)` for `restore_call`.
    """
    if getattr(operation, "quantization_mode", None) is not None:
        attribute = "quantized_call"
    else:
        attribute = "call"
    previous = operation.__dict__.get(attribute, _MISSING)
    original = getattr(operation, attribute)

    @functools.wraps(original)
    def intercepted(*args, **kwargs):
        return wrapper(original, *args, **kwargs)

    operation.__dict__[attribute] = intercepted
    return operation, attribute, previous


def restore_call(operation, attribute, previous):
    """Undoes `intercept_call`."""
    if previous is _MISSING:
        operation.__dict__.pop(attribute, None)
    else:
        operation.__dict__[attribute] = previous


_MISSING = object()


def distiller_feature_extractors(distiller):
    """`(teacher extractor, student extractor)` of a Keras `Distiller`.

    `keras.distillation.Distiller.__init__` builds these models (over the
    layers its feature losses read, outputs keyed by layer name) in
    `_teacher_feature_extractor` and `_student_feature_extractor`, and
    gives no public access to them; reading them avoids building and
    tracking a second copy of each. Either is `None` when no loss reads
    intermediate layers.
    """
    return (
        distiller._teacher_feature_extractor,
        distiller._student_feature_extractor,
    )
