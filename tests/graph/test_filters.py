"""`tfcompress.graph.LayerFilter`: Keras's `filters` semantics, and paths."""

import keras
import pytest
from keras.src.quantizers.utils import should_quantize_layer

import tfcompress
from tfcompress.graph import LayerFilter
from tfcompress.graph import walk_layers
from tfcompress.layers import InvertedResidual


def _mobilenet():
    return tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)


def _selected(filters, model):
    layer_filter = LayerFilter(filters)
    return [
        entry.path
        for entry in walk_layers(model)
        if layer_filter(entry.layer, entry.path, entry.ancestors)
    ]


def test_exported_from_the_graph_package():
    assert tfcompress.graph.LayerFilter is LayerFilter
    assert tfcompress.graph.filters.LayerFilter is LayerFilter


@pytest.mark.parametrize(
    "filters",
    [
        None,
        "stem",
        "^block[12]",
        "pool|logits",
        ["stem", "logits"],
        ("separable", "nope"),
        lambda layer: isinstance(layer, keras.layers.Conv2D),
    ],
    ids=["none", "regex", "anchored", "alternation", "list", "tuple", "callable"],
)
def test_names_alone_select_what_keras_selects(filters):
    # Without a path (a model's direct layers), the same layers as Keras's
    # own `Model.quantize(filters=...)` selection.
    layers = _mobilenet().layers
    ours = [layer.name for layer in layers if LayerFilter(filters)(layer)]
    keras_choice = [
        layer.name for layer in layers if should_quantize_layer(layer, filters)
    ]
    assert ours == keras_choice
    assert ours or filters == ("separable", "nope")


def test_a_regex_is_searched_in_the_path_too():
    model = _mobilenet()
    # "block1" is a composite layer: its path selects its sublayers.
    assert _selected("block1", model) == [
        "block1",
        "block1/expand",
        "block1/expand_bn",
        "block1/depthwise",
        "block1/depthwise_bn",
        "block1/project",
        "block1/project_bn",
    ]
    assert _selected("block2/expand$", model) == ["block2/expand"]
    # A sublayer's own name still matches on its own.
    assert _selected("^project$", model) == [
        "block1/project", "block2/project", "block3/project"
    ]


def test_a_layer_class_selects_its_instances_and_what_they_hold():
    model = _mobilenet()
    depthwise = _selected(keras.layers.DepthwiseConv2D, model)
    assert depthwise == [
        "separable/depthwise", "block1/depthwise", "block2/depthwise",
        "block3/depthwise",
    ]
    inside = _selected(InvertedResidual, model)
    assert inside[0] == "block1" and "block3/project_bn" in inside
    assert not any(path.startswith(("stem", "separable")) for path in inside)
    # Keras would call the class like a predicate (building a layer).
    mixed = _selected([keras.layers.Dense, "^stem$"], model)
    assert mixed == ["stem", "logits"]


@pytest.mark.parametrize(
    "filters, message",
    [
        (3, r"`filters` must be None, a regular expression \(string\), a layer "
            r"class, a callable `fn\(layer\) -> bool`, or a list or tuple of "
            r"them. Received: filters=3 \(of type int\)"),
        (["stem", 3.5], r"Received: filters=\['stem', 3.5\] \(holding 3.5 of type float\)"),
        ("block[", r"`filters` holds an invalid regular expression 'block\['"),
        ([], r"`filters` is an empty list: it would select no layer. Pass None"),
        ({"stem": 1}, r"must be None, a regular expression"),
    ],
)
def test_bad_filters_raise_clear_errors(filters, message):
    with pytest.raises(ValueError, match=message):
        LayerFilter(filters)


def test_the_argument_name_is_in_the_messages():
    with pytest.raises(ValueError, match=r"`schedule key 3` must be None"):
        LayerFilter(3, "schedule key 3")


def test_filters_that_match_nothing_are_reported():
    model = _mobilenet()
    entries = [
        entry for entry in walk_layers(model)
        if isinstance(entry.layer, keras.layers.Conv2D)
    ]
    layer_filter = LayerFilter(
        ["stem", "nope", keras.layers.Dense, lambda layer: False]
    )
    # Callables are not judged: selecting nothing may be what they mean.
    assert layer_filter.unmatched(entries) == ["nope", keras.layers.Dense]
    with pytest.raises(
        ValueError,
        match=r"`filters` matched no layer that the test tool can handle: "
        r"'nope', Dense. Such layers: 'stem', 'separable/pointwise', "
        r"'block1/expand', .*'block3/project'\. A string is a regular "
        r"expression searched in each layer's name and path",
    ):
        layer_filter.check_matches(entries, "the test tool")
    LayerFilter(["stem", "block"]).check_matches(entries, "the test tool")
    LayerFilter(None).check_matches([], "the test tool")


def test_specificity_prefers_the_layer_itself_then_names_then_length():
    model = _mobilenet()
    entry = next(e for e in walk_layers(model) if e.path == "block1/expand")

    def specificity(filters):
        return LayerFilter(filters).specificity(
            entry.layer, entry.path, entry.ancestors
        )

    ranked = [
        "block1/expand",  # the layer itself, the longest match
        "expand",  # the layer itself
        keras.layers.Conv2D,  # the layer's class
        lambda layer: True,  # a predicate on the layer
        "block1",  # a layer containing it
        InvertedResidual,  # the class of a layer containing it
    ]
    values = [specificity(f) for f in ranked]
    assert values == sorted(values, reverse=True)
    assert len(set(values)) == len(values)
    assert specificity("block2") is None
    assert specificity(None) < min(values)


def test_get_returns_a_filter_as_is():
    layer_filter = LayerFilter("stem")
    assert LayerFilter.get(layer_filter) is layer_filter
    assert LayerFilter.get(None).selects_all
