"""Which layers a tool applies to: the `filters` argument of every tool.

Every model-level tool (`prune_channels`, `decompose`, `quantize_model`,
`sensitivity_analysis`, `MagnitudePruning`, ...) chooses its layers with
`filters`, with the semantics of Keras's `Model.quantize(mode, filters=...)`
(`keras.quantizers.utils.should_quantize_layer`):

- `None`: every layer the tool can handle.
- A regular expression (a string), searched (`re.search`) in the layer's
  name.
- A list or tuple of them: a layer is selected when any of them matches.
- A callable `fn(layer) -> bool`.

tfcompress extends them, without changing what Keras's forms select:

- A regular expression is searched in the layer's path too, its names from
  the model down joined by `/` (see `tfcompress.graph.layer_tree`), so
  `"block1"` selects the layers inside a composite layer `block1` (their
  path is `"block1/expand"`, ...) and `"block1/expand"` one of them.
- A layer class selects its instances and the layers inside one
  (`keras.layers.Conv2D`, or `InvertedResidual` for every layer of every
  block). Keras would call a class as if it were a predicate.
- A list may mix regular expressions, classes and callables.

A string or class that selects no layer the tool can handle is almost
always a typo: `LayerFilter.check_matches` raises an error that names the
layers the tool can handle.
"""

import inspect
import re

import keras

from tfcompress.graph.layer_tree import LayerPath

_ACCEPTED = (
    "None, a regular expression (string), a layer class, a callable "
    "`fn(layer) -> bool`, or a list or tuple of them"
)


class LayerFilter:
    """A checked `filters` argument, ready to ask whether a layer matches.

    Args:
        filters: `None`, a regular expression, a layer class, a callable
            `fn(layer) -> bool`, a list or tuple of them (see the module
            docstring), or a `LayerFilter` (returned as is by `get`).
        argument: The argument's name, for error messages. Defaults to
            `"filters"`.

    Raises:
        ValueError: For another type, an invalid regular expression or an
            empty list.

    Example:

    >>> block = keras.Sequential([keras.layers.Dense(4, name="expand")],
    ...                          name="block1")
    >>> selected = LayerFilter("block1")
    >>> selected(block.layers[0], path="block1/expand")
    True
    >>> selected(block.layers[0])  # its name alone: "expand"
    False
    >>> LayerFilter(["expand", "project"])(block.layers[0])
    True
    >>> LayerFilter(keras.layers.Conv2D)(block.layers[0])
    False
    """

    def __init__(self, filters, argument="filters"):
        self.filters = filters
        self.argument = argument
        if filters is None:
            items = []
        elif isinstance(filters, (list, tuple)):
            if not filters:
                raise ValueError(
                    f"`{argument}` is an empty {type(filters).__name__}: "
                    "it would select no layer. Pass None to select every "
                    f"layer. Received: {argument}={filters!r}"
                )
            items = list(filters)
        else:
            items = [filters]
        self._items = [self._item(item) for item in items]

    @classmethod
    def get(cls, filters, argument="filters"):
        """`filters` as a `LayerFilter` (itself when it already is one)."""
        if isinstance(filters, LayerFilter):
            return filters
        return cls(filters, argument)

    def _item(self, item):
        if isinstance(item, str):
            try:
                return ("regex", item, re.compile(item))
            except re.error as error:
                raise ValueError(
                    f"`{self.argument}` holds an invalid regular expression "
                    f"{item!r} ({error}). Escape special characters with "
                    f"`re.escape(name)` to match a name as is. Received: "
                    f"{self.argument}={self.filters!r}"
                ) from None
        if inspect.isclass(item):
            return ("class", item, None)
        if callable(item):
            return ("callable", item, None)
        raise ValueError(
            f"`{self.argument}` must be {_ACCEPTED}. Received: "
            f"{self.argument}={self.filters!r}"
            + (
                f" (holding {item!r} of type {type(item).__name__})"
                if item is not self.filters
                else f" (of type {type(item).__name__})"
            )
        )

    @property
    def selects_all(self):
        """Whether the filter is `None`: every layer is selected."""
        return self.filters is None

    def __call__(self, layer, path=None, ancestors=()):
        """Whether `layer` is selected.

        Args:
            layer: The layer (the tools pass the layer of the input model).
            path: Its path in the model, e.g. `"block1/expand"`. Defaults to
                its name.
            ancestors: The layers containing it, outermost first (for layer
                classes). Defaults to none.

        Returns:
            A bool.
        """
        if self.selects_all:
            return True
        return any(
            self._specificity(item, layer, path, ancestors) is not None
            for item in self._items
        )

    def specificity(self, layer, path=None, ancestors=()):
        """How closely the filter names `layer`; `None` when it does not.

        Used to choose among several filters that select one layer (the
        per-layer schedules of `MagnitudePruning`): higher is more
        specific. A match on the layer itself beats one on a layer
        containing it (`"expand"` over `"block1"`); at the same depth a
        regular expression beats a class and a class a callable; then a
        longer match (`"block1/expand"` over `"expand"`) or a more derived
        class wins.

        Returns:
            A tuple to compare, or `None`.
        """
        if self.selects_all:
            return (-1, -1, 0)
        found = [
            self._specificity(item, layer, path, ancestors)
            for item in self._items
        ]
        found = [value for value in found if value is not None]
        return max(found) if found else None

    def _specificity(self, item, layer, path, ancestors):
        kind, value, pattern = item
        depth = len(ancestors)
        if kind == "regex":
            name = getattr(layer, "name", "")
            path = name if path is None else path
            match = pattern.search(path)
            if match is not None:
                # The depth of the path component where the match ends.
                level = path[: match.end()].rstrip("/").count("/")
                level = min(level, depth)
                return (level, 2, match.end() - match.start())
            match = pattern.search(name)
            if match is not None:
                return (depth, 2, match.end() - match.start())
            return None
        if kind == "class":
            chain = (*ancestors, layer)
            levels = [i for i, x in enumerate(chain) if isinstance(x, value)]
            if not levels:
                return None
            return (max(levels), 1, len(value.__mro__))
        return (depth, 0, 0) if value(layer) else None

    def unmatched(self, entries):
        """The strings and classes of the filter that select no entry.

        Args:
            entries: `LayerPath`s (or `(path, layer, ancestors)` tuples):
                the layers a tool can handle.

        Returns:
            A list of the regular expressions and classes among the
            filters that select none of `entries` (callables are not
            judged: selecting nothing may be what they mean).
        """
        entries = [_entry(entry) for entry in entries]
        missing = []
        for item in self._items:
            kind, value, _ = item
            if kind == "callable":
                continue
            if not any(
                self._specificity(item, e.layer, e.path, e.ancestors)
                is not None
                for e in entries
            ):
                missing.append(value)
        return missing

    def check_matches(self, entries, tool):
        """Raises when a string or class of the filter selects no entry.

        Args:
            entries: The layers `tool` can handle, as `LayerPath`s (or
                `(path, layer, ancestors)` tuples).
            tool: What handles them, for the message, e.g.
                `"decompose (method 'svd')"`.

        Raises:
            ValueError: Naming the filters that matched nothing and the
                layers `tool` can handle.
        """
        entries = [_entry(entry) for entry in entries]
        missing = self.unmatched(entries)
        if not missing:
            return
        names = ", ".join(repr(entry.path) for entry in entries) or "none"
        shown = ", ".join(
            value.__name__ if inspect.isclass(value) else repr(value)
            for value in missing
        )
        raise ValueError(
            f"`{self.argument}` matched no layer that {tool} can handle: "
            f"{shown}. Such layers: {names}. A string is a regular "
            "expression searched in each layer's name and path. Received: "
            f"{self.argument}={self.filters!r}"
        )

    def __repr__(self):
        return f"LayerFilter({self.filters!r})"


def _entry(entry):
    if isinstance(entry, LayerPath):
        return entry
    path, layer, ancestors = entry
    return LayerPath(path, layer, tuple(ancestors))


def direct_layers(model):
    """`LayerPath`s of the direct layers of `model` (no input layers)."""
    return [
        LayerPath(layer.name, layer, ())
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
