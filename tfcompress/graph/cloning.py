"""New models from old ones: copies of layers, clones with replacements.

Every tool that returns a model (channel pruning, decomposition,
quantization) returns a new one and leaves the input model untouched.
`clone_model` rebuilds a Sequential or functional model with each layer
replaced by what a function returns (by default a fresh copy), and
`compile_like` applies the one compile policy all tools share: the new
model is compiled like the input model when that one is compiled.
"""

import warnings

import keras

from tfcompress.graph import functional_graph


def copy_layer(
    layer, name=None, input_shape=None, config_updates=None, layer_class=None
):
    """A fresh layer with `layer`'s config and, if built here, its weights.

    Args:
        layer: The layer to copy.
        name: The copy's name. Defaults to `layer.name`.
        input_shape: If given, the copy is built for it and gets `layer`'s
            weights at once; otherwise the caller builds it (by calling
            it) and copies the weights.
        config_updates: Config entries to change, e.g. `{"filters": 8}`.
        layer_class: The class of the copy, e.g. a subclass of the
            layer's computing the same in other ops. Defaults to the
            layer's class.

    Returns:
        The new layer.
    """
    config = layer.get_config()
    if name is not None:
        config["name"] = name
    if config_updates:
        config.update(config_updates)
    copy = (layer_class or type(layer)).from_config(config)
    if input_shape is not None:
        copy.build(input_shape)
        copy.set_weights(layer.get_weights())
    return copy


def clone_model(model, clone_layer=None, copy_weights=True):
    """A new Sequential or functional model like `model`, layer by layer.

    Unlike `keras.models.clone_model`, the clone is never compiled (see
    `compile_like`), and the weights of the layers that `clone_layer`
    leaves to the default copy are copied over.

    Args:
        model: A built Sequential or functional model.
        clone_layer: `fn(layer) -> layer or None` for each direct layer of
            `model`: the layer to use in its place (with its own weights),
            or `None` for a fresh copy from its config. Defaults to `None`:
            copy every layer.
        copy_weights: Whether the fresh copies get the original layers'
            weights. Defaults to `True`.

    Returns:
        The new model (same kind and name as `model`, uncompiled).
    """
    functional_graph.functional_graph(model, "clone_model")
    replaced = set()

    def clone(layer):
        if clone_layer is not None:
            new_layer = clone_layer(layer)
            if new_layer is not None:
                replaced.add(layer.name)
                return new_layer
        return copy_layer(layer)

    if isinstance(model, keras.Sequential):
        source = model.inputs[0]
        inputs = keras.Input(
            batch_shape=source.shape,
            dtype=source.dtype,
            name=functional_graph.producer(source).name,
        )
        new_model = keras.Sequential(
            [inputs, *(clone(layer) for layer in model.layers)],
            name=model.name,
            trainable=model.trainable,
        )
    else:
        # An uncompiled view of the same graph: Keras's `clone_model` would
        # compile the clone itself, and fail on a loss it cannot rebuild.
        view = keras.Model(model.input, model.output, name=model.name)
        new_model = keras.models.clone_model(view, clone_function=clone)
        new_model.trainable = model.trainable
    if copy_weights:
        for layer in model.layers:
            if layer.weights and layer.name not in replaced:
                new_model.get_layer(layer.name).set_weights(layer.get_weights())
    return new_model


def compile_like(new_model, model):
    """Compiles `new_model` like `model` when `model` is compiled.

    The compile configuration (loss, metrics, optimizer settings) is
    reused with a fresh optimizer. When it cannot be rebuilt (e.g. a loss
    that is not registered for serialization), a warning says so and
    `new_model` stays uncompiled.

    Returns:
        `new_model`.
    """
    if not getattr(model, "compiled", False):
        return new_model
    try:
        new_model.compile_from_config(model.get_compile_config())
    except (TypeError, ValueError) as error:
        warnings.warn(
            f"The new model {new_model.name!r} could not be compiled like "
            f"the input model ({error}). Compile it before training it.",
            stacklevel=3,
        )
    return new_model
