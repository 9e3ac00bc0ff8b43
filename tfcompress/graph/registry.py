"""The layer registry: what every tool knows about a layer class.

Each tool reads one aspect of a layer class from here, so that support for
a new layer class (a Keras layer, a tfcompress layer, a user's own) is
written once, in one place, and every tool knows it:

- `prunable_kernels` (`MagnitudePruning`, `strip`, `sparsity_report`):
  which weights magnitude / N:M pruning may zero, and along which axis
  N:M groups run.
- `macs` (`profile`): `fn(layer, input_shapes, output_shape)` counting one
  call's multiply-accumulates, returning an int, `None` (unknown) or a
  `tfcompress.analysis.LayerCost`. A layer with a MACs rule is a leaf of
  the profile; a layer without one is counted through its sublayers.
- `channels` (`prune_channels`): `fn(trace, node, layer, in_maps)`, how
  the layer's output channels depend on its input channels and weights
  (see `tfcompress.pruning.channel_rules` for the ready-made ones).
- `quantize` (`quantize_model`): a `tfcompress.quantization.QuantizeRule`,
  how quantization-aware training rewrites the layer.
- `decompositions` (`decompose`, `rank_selection`): `{method name:
  method}`, the low-rank factorizations that apply to the layer.

Lookups follow the class hierarchy (most specific class first), so a
subclass of `Conv2D` is known as a `Conv2D` unless it is registered itself.
The rules for Keras's own layers are in `tfcompress.keras_layers`; each
tfcompress layer registers itself in its own module.

Example: a layer of your own, known to every tool (see the README for the
full example):

```python
tfcompress.graph.register_layer(
    MyDense,
    prunable_kernels=["kernel"],
    macs=lambda layer, inputs, output: math.prod(output) * inputs[0][-1],
    channels=tfcompress.pruning.channel_rules.producer(
        kernel="kernel", bias="bias", size_argument="units"
    ),
    quantize=tfcompress.quantization.QuantizeRule.rounded_kernels(
        {"kernel": -1}
    ),
)
```
"""

import dataclasses
import inspect

ASPECTS = ("prunable_kernels", "macs", "channels", "quantize", "decompositions")


@dataclasses.dataclass(frozen=True)
class PrunableKernel:
    """A weight that magnitude pruning may zero.

    Args:
        attribute: Name of the layer attribute holding the variable, e.g.
            `"kernel"` or `"pointwise_kernel"`.
        input_axis: Axis of the input channels, along which N:M groups
            are formed (as TFLite and tfmot form them), or `None` for a
            weight without a reduction over input channels (a depthwise
            kernel, an embedding table), which N:M sparsity skips.
    """

    attribute: str
    input_axis: int | None = -2


_RULES = {}
_CACHE = {}


def register_layer(
    layer_class,
    *,
    prunable_kernels=None,
    macs=None,
    channels=None,
    quantize=None,
    decompositions=None,
    override=False,
):
    """Tells every tfcompress tool how to handle `layer_class`.

    Give only the aspects that apply; the others stay as registered (or
    unknown, and each tool says so in its report). Registering an aspect
    a class already has raises unless `override=True`.

    Args:
        layer_class: A `keras.layers.Layer` (or `keras.Operation`)
            subclass, or a tuple of them.
        prunable_kernels: Sequence of `PrunableKernel`, or of attribute
            names (N:M groups then run along axis -2, the input-channel
            axis of a `(..., in, out)` kernel). `()` says there are none.
        macs: `fn(layer, input_shapes, output_shape)` returning one call's
            multiply-accumulates (int), `None` when unknown, or a
            `tfcompress.analysis.LayerCost` with a note.
        channels: `fn(trace, node, layer, in_maps) -> out_maps`, the
            channel rule of structured pruning (see
            `tfcompress.pruning.channel_rules`).
        quantize: A `tfcompress.quantization.QuantizeRule`.
        decompositions: `{method_name: method}` (see
            `tfcompress.decomposition`).
        override: Whether to replace aspects already registered for this
            exact class. Defaults to `False`.

    Returns:
        `layer_class`.

    Raises:
        ValueError: If `layer_class` is not a class, an aspect is already
            registered for it (without `override`), or a rule has the
            wrong type.
    """
    classes = layer_class if isinstance(layer_class, tuple) else (layer_class,)
    given = {
        "prunable_kernels": _prunable_kernels(prunable_kernels),
        "macs": _callable_or_none("macs", macs),
        "channels": _callable_or_none("channels", channels),
        "quantize": quantize,
        "decompositions": _decompositions(decompositions),
    }
    given = {aspect: rule for aspect, rule in given.items() if rule is not None}
    for cls in classes:
        if not inspect.isclass(cls):
            raise ValueError(
                "`layer_class` must be a layer class or a tuple of them. "
                f"Received: {cls!r}"
            )
        rules = _RULES.setdefault(cls, {})
        clashes = [aspect for aspect in given if aspect in rules]
        if clashes and not override:
            raise ValueError(
                f"{cls.__name__} already has registered "
                f"{', '.join(clashes)} rules. Pass override=True to "
                "replace them."
            )
        rules.update(given)
    _CACHE.clear()
    return layer_class


def unregister_layer(layer_class):
    """Forgets every rule registered for `layer_class` itself.

    Rules registered for its base classes stay; e.g. a test that
    registers a layer of its own removes it afterwards with this.

    Args:
        layer_class: A class given to `register_layer`.

    Raises:
        ValueError: If nothing is registered for `layer_class`.
    """
    if layer_class not in _RULES:
        raise ValueError(
            f"Nothing is registered for {layer_class!r}. Registered: "
            f"{sorted(cls.__name__ for cls in _RULES)}"
        )
    del _RULES[layer_class]
    _CACHE.clear()


def lookup(layer, aspect):
    """The rule of `aspect` for a layer (or class), and whose rule it is.

    Args:
        layer: A layer, an operation, or a class.
        aspect: One of `ASPECTS`.

    Returns:
        `(rule, registered_class)`: the rule registered for the most
        specific class in the layer's class hierarchy, and that class; or
        `(None, None)` when no class of the hierarchy has one.
    """
    if aspect not in ASPECTS:
        raise ValueError(
            f"`aspect` must be one of {ASPECTS}. Received: aspect={aspect!r}"
        )
    cls = layer if inspect.isclass(layer) else type(layer)
    key = (cls, aspect)
    if key not in _CACHE:
        found = (None, None)
        for base in cls.__mro__:
            rule = _RULES.get(base, {}).get(aspect)
            if rule is not None:
                found = (rule, base)
                break
        _CACHE[key] = found
    return _CACHE[key]


def rule_for(layer, aspect):
    """The rule of `aspect` for `layer`, or `None` (see `lookup`)."""
    return lookup(layer, aspect)[0]


def registered_classes(aspect):
    """`{class: rule}` of every class with a rule for `aspect`."""
    return {
        cls: rules[aspect] for cls, rules in _RULES.items() if aspect in rules
    }


def _callable_or_none(name, rule):
    if rule is not None and not callable(rule):
        raise ValueError(
            f"`{name}` must be a function (see register_layer). "
            f"Received: {name}={rule!r}"
        )
    return rule


def _prunable_kernels(kernels):
    if kernels is None:
        return None
    if isinstance(kernels, (str, PrunableKernel)):
        kernels = [kernels]
    result = []
    for kernel in kernels:
        if isinstance(kernel, str):
            kernel = PrunableKernel(kernel)
        if not isinstance(kernel, PrunableKernel):
            raise ValueError(
                "`prunable_kernels` must be attribute names or "
                f"PrunableKernel objects. Received: {kernel!r}"
            )
        result.append(kernel)
    return tuple(result)


def _decompositions(decompositions):
    if decompositions is None:
        return None
    if not isinstance(decompositions, dict) or not all(
        isinstance(name, str) for name in decompositions
    ):
        raise ValueError(
            "`decompositions` must be a dict {method_name: method}. "
            f"Received: {decompositions!r}"
        )
    return dict(decompositions)
