"""Which Keras layers each op of a `.tflite` file comes from.

The converter names a file's tensors after the TensorFlow ops they came
from, and those after the name scopes of the Keras layers that made them:
`"sequential_1/dense_1_2/MatMul"` belongs to the second `Dense` layer of a
`Sequential` model, whose Keras name is `"dense_1"`. A fused op keeps the
names of all it fused, joined by `";"` (`"sequential_1/re_lu_1/Relu;
sequential_1/conv2d_1/convolution"`).

The scope of a layer is not its name: TensorFlow makes scope names unique
within a graph by appending `_1`, `_2`, ..., and Keras opens a layer's scope
twice per call (once to build, once to call), so the scope of the call is
the second one handed out. `layer_scopes` replays that naming with
TensorFlow's own `Graph.name_scope`, layer by layer in call order, which
turns the ambiguous suffixes back into layers.
"""

import keras
import tensorflow as tf


def layer_scopes(model):
    """Returns `{layer name: name scope}` of the layers of `model`.

    Scopes end with `"/"` (`"sequential_1/dense_1_2/"`). Nested models are
    walked too; their layers' scopes lie inside theirs. A layer called
    several times keeps the scope of its first call.

    Args:
        model: A built Keras model.

    Returns:
        A dict in call order.
    """
    return _scopes(model)[1]


def _scopes(model):
    """Returns `(scope of the model, {layer name: scope})`."""
    graph = tf.Graph()
    scopes = {}

    def visit(layer):
        with graph.name_scope(layer.name):  # Keras builds in this scope,
            pass
        with graph.name_scope(layer.name) as scope:  # and calls in this one.
            scopes.setdefault(layer.name, scope)
            if isinstance(layer, keras.Model):
                for sublayer in layer.layers:
                    if not isinstance(sublayer, keras.layers.InputLayer):
                        visit(sublayer)

    visit(model)
    model_scope = scopes.pop(model.name)
    return model_scope, scopes


def model_layer_names(model):
    """The names of the layers of `model` that can own ops, nested ones too."""
    return list(layer_scopes(model))


def op_layers(model, inspection):
    """Returns the Keras layers behind each op of an inspected file.

    An op belongs to a layer when the name of one of its outputs or of one
    of its constant inputs (its weights) lies in the layer's scope. An op
    that writes a model output is often renamed after the output
    (`"StatefulPartitionedCall_1:0"`); when no other name claims it, it is
    given to the model's last layer.

    Args:
        model: The Keras model the file was converted from.
        inspection: A `TFLiteInspection` of the file.

    Returns:
        A list with one tuple of layer names per op of `inspection.ops`,
        innermost layers first; an empty tuple for an op no layer claims
        (such as `QUANTIZE`).

    Raises:
        RuntimeError: If no tensor of the file lies in the model's scope:
            the file was not converted from `model` by Keras's exporter, or
            Keras names scopes differently from the version this was
            written for.
    """
    model_scope, scopes = _scopes(model)
    output_names = {t.name for t in inspection.outputs}
    last_layer = _last_layer_name(model)
    parts_by_op = []
    for op in inspection.ops:
        names = [t.name for t in op.outputs]
        names += [t.name for t in op.inputs if t.is_constant]
        parts_by_op.append(
            [part for name in names for part in name.split(";")]
        )
    if scopes and not any(
        part.startswith(model_scope) for parts in parts_by_op for part in parts
    ):
        raise RuntimeError(
            "Cannot tell which Keras layers the ops of the file come from: "
            f"no tensor name starts with the model's name scope "
            f"{model_scope!r}. Was the file converted from this model by "
            f"`to_tflite`? Received: model={model.name!r}, file "
            f"{inspection.path!r}"
        )
    result = []
    for op, parts in zip(inspection.ops, parts_by_op):
        layers = [
            layer
            for layer, scope in scopes.items()
            if any(part.startswith(scope) for part in parts)
        ]
        if (
            not layers
            and last_layer is not None
            and op.subgraph == 0
            and any(t.name in output_names for t in op.outputs)
            and op.name not in ("QUANTIZE", "DEQUANTIZE")
        ):
            layers = [last_layer]
        # Innermost (longest scope) first: a layer before the nested model
        # that holds it.
        layers.sort(key=lambda layer: -len(scopes[layer]))
        result.append(tuple(layers))
    return result


def _last_layer_name(model):
    """The layer that computes a single-output model's output, or `None`."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    return layers[-1].name if layers else None
