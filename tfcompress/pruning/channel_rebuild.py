"""The smaller model that structured pruning returns: the rebuild.

The model is cloned with the layer sizes of a `Plan`, and every weight of
the new model is the slice of the old one at the kept channels, along the
axes that the `ChannelTrace` recorded.
"""

import keras
import numpy as np

from tfcompress.graph import cloning


def rebuild(model, trace, plan):
    def clone(layer):
        updates = {}
        for update in trace.resizes.get(id(layer), ()):
            updates.update(update(plan))
        return cloning.copy_layer(layer, config_updates=updates)

    pruned = cloning.clone_model(model, clone, copy_weights=False)
    cloning.compile_like(pruned, model)
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
