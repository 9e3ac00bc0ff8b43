"""The smaller model that structured pruning returns: the rebuild.

The model is cloned with the layer sizes of a `Plan`, and every weight of
the new model is the slice of the old one at the kept channels, along the
axes that the `Trace` recorded.
"""

import warnings

import keras
import numpy as np


def rebuild(model, trace, plan):
    def clone(layer):
        config = layer.get_config()
        for update in trace.resizes.get(id(layer), ()):
            config.update(update(plan))
        return layer.__class__.from_config(config)

    if isinstance(model, keras.Sequential):
        source = model.inputs[0]
        inputs = keras.Input(
            batch_shape=source.shape,
            dtype=source.dtype,
            name=source._keras_history.operation.name,
        )
        pruned = keras.Sequential(
            [inputs, *(clone(layer) for layer in model.layers)],
            name=model.name,
            trainable=model.trainable,
        )
    else:
        # Cloning an uncompiled view of the same graph: `clone_model` would
        # compile the clone itself, and fail on a loss it cannot deserialize.
        view = keras.Model(model.input, model.output, name=model.name)
        pruned = keras.models.clone_model(view, clone_function=clone)
        pruned.trainable = model.trainable
    if model.compiled:
        try:
            pruned.compile_from_config(model.get_compile_config())
        except (TypeError, ValueError) as error:
            warnings.warn(
                "The pruned model could not be compiled like the input model "
                f"({error}). Compile it before training it.",
                stacklevel=3,
            )
    new_layers = {layer.name: layer for layer in pruned.layers}
    for layer in model.layers:
        if not layer.weights:
            continue  # Input layers, in particular, are renamed by cloning.
        new_layer = new_layers[layer.name]
        slices = trace.slices.get(id(layer), {})
        if len(layer.weights) != len(new_layer.weights):
            raise RuntimeError(
                f"Internal error: layer '{layer.name}' has "
                f"{len(layer.weights)} weights before pruning and "
                f"{len(new_layer.weights)} after."
            )
        for variable, new_variable in zip(layer.weights, new_layer.weights):
            value = keras.ops.convert_to_numpy(variable)
            for axis, channel_map in slices.get(id(variable), ()):
                value = np.take(value, plan.positions(channel_map), axis=axis)
            if value.shape != tuple(new_variable.shape):
                raise RuntimeError(
                    f"Internal error: weight '{variable.path}' sliced to "
                    f"{value.shape}, but the pruned layer expects "
                    f"{tuple(new_variable.shape)}."
                )
            new_variable.assign(value)
    return pruned
