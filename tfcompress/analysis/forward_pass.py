"""One recorded forward pass: example inputs, and the shapes of every call.

`profile` needs the real input and output shapes of every layer call
(strides, padding and dilation are then already reflected in them). This
module builds a batch of one example of zeros for a model
(`example_inputs`) and runs the model once on it with a recorder on every
layer and `keras.ops` node (`record_calls`), which it always removes.
"""

import contextlib
import dataclasses
import inspect
import numbers

import keras

from tfcompress.graph import keras_internals
from tfcompress.graph import layer_tree


@dataclasses.dataclass(frozen=True)
class Call:
    """The shapes of one eager call of a layer or op (batch first)."""

    input_shapes: list
    output_shapes: list


def example_inputs(model, input_shape):
    """A batch of one example of zeros for each input of `model`.

    Args:
        model: A model or layer.
        input_shape: `None` to use the shapes of `model.inputs`, else the
            shape of one example (or a list of them; see `profile`).

    Raises:
        ValueError: When the shape cannot be inferred or is malformed.
    """
    # Subclassed models raise AttributeError on `model.inputs`.
    model_inputs = list(getattr(model, "inputs", None) or [])
    if input_shape is None:
        if not model_inputs:
            raise ValueError(
                "Cannot infer the input shape of "
                f"'{model.name}' ({type(model).__name__}): it has no "
                "`model.inputs`, as is the case for subclassed models. "
                "Pass `input_shape`, the shape of one example without the "
                "batch dimension, e.g. `profile(model, "
                "input_shape=(32, 32, 3))`, or a list of shapes for several "
                "inputs. Received: input_shape=None"
            )
        shapes = [tuple(tensor.shape[1:]) for tensor in model_inputs]
        if any(dim is None for shape in shapes for dim in shape):
            raise ValueError(
                f"The inputs of '{model.name}' have unknown dimensions: "
                f"{[tuple(tensor.shape) for tensor in model_inputs]}. "
                "Pass `input_shape`, the shape of one example without the "
                "batch dimension, e.g. `profile(model, "
                "input_shape=(32, 32, 3))`. Received: input_shape=None"
            )
    else:
        shapes = normalize_input_shape(input_shape)
        if model_inputs and len(shapes) != len(model_inputs):
            raise ValueError(
                f"Argument `input_shape` must give one shape per input of "
                f"'{model.name}', which has {len(model_inputs)} inputs. "
                f"Received: input_shape={input_shape!r}"
            )
    if model_inputs:
        dtypes = [tensor.dtype for tensor in model_inputs]
    else:
        dtypes = ["float32"] * len(shapes)
    tensors = [
        keras.ops.zeros((1, *shape), dtype=dtype)
        for shape, dtype in zip(shapes, dtypes)
    ]
    if len(tensors) == 1:
        return tensors[0]
    if model_inputs and isinstance(model, keras.Model):
        try:
            # A functional model's `input` is the structure (list, dict)
            # it was built with, in the order of `model.inputs`.
            return keras.tree.pack_sequence_as(model.input, tensors)
        except (AttributeError, ValueError, TypeError):
            pass
    return tensors


def normalize_input_shape(input_shape):
    """`input_shape` as a list of tuples of positive ints."""

    def is_shape(value):
        return isinstance(value, (tuple, list)) and all(
            isinstance(dim, numbers.Integral)
            and not isinstance(dim, bool)
            and dim > 0
            for dim in value
        )

    if is_shape(input_shape):
        return [tuple(int(dim) for dim in input_shape)]
    if (
        isinstance(input_shape, (tuple, list))
        and input_shape
        and all(is_shape(shape) for shape in input_shape)
    ):
        return [tuple(int(dim) for dim in shape) for shape in input_shape]
    raise ValueError(
        "Argument `input_shape` must be the shape of one example without "
        "the batch dimension, a tuple of positive integers such as "
        "`(32, 32, 3)`, or a list of such tuples for a model with several "
        f"inputs. Received: input_shape={input_shape!r}"
    )


def all_layers(model):
    """`model` itself and every layer under it."""
    return layer_tree.all_layers(model, include_self=True)


def record_calls(model, inputs):
    """Runs `model(inputs, training=False)` once, recording every call.

    An unbuilt model is built first by an unrecorded pass (building may
    trace `call()` symbolically, and layers created in `build()` must be
    hooked too). The recorders are removed before returning, even when the
    forward pass fails.

    Returns:
        `{id(layer or op): [Call, ...]}`, in call order.
    """
    if not all(getattr(layer, "built", True) for layer in all_layers(model)):
        model(inputs, training=False)
    records = {}
    with contextlib.ExitStack() as hooks:
        for operation in _traceable_operations(model):
            hook = _install_recorder(operation, records)
            hooks.callback(keras_internals.restore_call, *hook)
        model(inputs, training=False)
    return records


def _traceable_operations(model):
    """Every layer of `model`, and the `keras.ops` nodes of its graphs."""
    operations = {}
    for layer in all_layers(model):
        operations[id(layer)] = layer
        if isinstance(layer, keras.Model):
            for operation in getattr(layer, "operations", None) or []:
                operations.setdefault(id(operation), operation)
    return list(operations.values())


def _install_recorder(operation, records):
    """Records the shapes of every eager call of `operation`.

    Returns:
        A handle for `keras_internals.restore_call`.
    """

    def record(original, *args, **kwargs):
        outputs = original(*args, **kwargs)
        if _is_eager(outputs):
            records.setdefault(id(operation), []).append(
                Call(
                    _shapes(_call_arguments(original, args, kwargs)),
                    _shapes(outputs),
                )
            )
        return outputs

    return keras_internals.intercept_call(operation, record)


def _call_arguments(call, args, kwargs):
    """The arguments of a call, in the order of `call`'s signature.

    Tensors passed by keyword count too, in their parameter's place:
    `mha(query=x, value=y)` records the shapes of `x` then `y`, as
    `mha(x, y)` does.
    """
    try:
        bound = inspect.signature(call).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return (*args, *kwargs.values())
    return tuple(bound.arguments.values())


def _is_eager(outputs):
    """Whether `outputs` are concrete values, not symbolic tracing."""
    if any(
        isinstance(x, keras.KerasTensor) for x in keras.tree.flatten(outputs)
    ):
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    return True


def _shapes(structure):
    """Shapes of the tensors (anything with a shape) in `structure`."""
    shapes = []
    for value in keras.tree.flatten(structure):
        shape = getattr(value, "shape", None)
        if shape is not None and hasattr(value, "dtype"):
            shapes.append(tuple(int(dim) for dim in shape))
    return shapes
