"""A model with exits cut into stages: stage K takes the features at cut
K - 1 (the image, for the first) to the features at cut K and exit K's
logits; the last stage takes the last cut's features to the final logits.

Each stage is a functional `keras.Model` over the same layers (weights are
shared), so it profiles, exports and runs like any model.
"""

import numbers

import keras

from tfcompress.analysis import profile
from tfcompress.dynamic.exit_naming import exit_names

STAGE_PREFIX = "stage_"


def cut_layers(model):
    """Names of the layers the exits of `model` read, in exit order."""
    by_output = {}
    for layer in model.layers:
        try:
            by_output[id(layer.output)] = layer.name
        except (AttributeError, ValueError):
            continue  # A shared layer has no single output; it is no cut.
    names = []
    for name in exit_names(model):
        features = model.get_layer(name).input
        if id(features) not in by_output:
            raise ValueError(
                f"Exit {name!r} does not read the output of a layer of the "
                "model; build the model with `attach_exits`."
            )
        names.append(by_output[id(features)])
    return names


def split_stages(model, exits=None):
    """Cuts a model from `attach_exits` into one `keras.Model` per stage.

    Args:
        model: A model from `attach_exits` (or its `.keras` reload).
        exits: Indices of the exits to keep, or `None` (every exit). A
            stage ends only at a kept exit: the layers between two kept
            exits run as one stage, and a dropped exit's head is not in any
            stage (a fused stage costs one call and no head for the exits
            it skips). `()` gives one stage, the model without exits.

    Returns:
        A list of `len(kept exits) + 1` models named `"stage_K"`. Stage K <
        last outputs `[features, exit_logits]`; the last outputs the final
        logits.

    Raises:
        ValueError: If the model has no exits, `exits` names an exit it
            does not have, or a cut does not separate the model (a later
            layer reads a tensor from before the cut, as a residual
            connection across it does).

    Example:

    ```python
    stages = split_stages(with_exits)
    features, logits = stages[0](images)
    ```
    """
    names = exit_names(model)
    if not names:
        raise ValueError(
            "`model` has no exit heads (layers named 'exit_K'); attach them "
            f"with `attach_exits`. Received: model={model.name!r}"
        )
    kept = kept_exits(exits, len(names))
    all_cuts = cut_layers(model)
    cuts = [all_cuts[index] for index in kept]
    names = [names[index] for index in kept]
    stages = []
    previous = model.inputs[0]
    ends = [
        [model.get_layer(cut).output, model.get_layer(name).output]
        for cut, name in zip(cuts, names)
    ]
    ends.append(model.outputs[-1])
    for index, outputs in enumerate(ends):
        try:
            stage = keras.Model(
                previous, outputs, name=f"{STAGE_PREFIX}{index}"
            )
        except ValueError as error:
            where = cuts[index - 1] if index else "the input"
            raise ValueError(
                f"The model cannot be cut after {where!r}: stage {index} "
                "needs a tensor from before that cut (a residual connection "
                "across it?). Attach exits to layers between blocks. "
                f"Keras said: {error}"
            ) from error
        stages.append(stage)
        previous = outputs[0] if isinstance(outputs, list) else None
    return stages


def kept_exits(exits, count):
    """`exits` checked against a model with `count` exits, as a sorted
    tuple of indices (`None`: all of them)."""
    if exits is None:
        return tuple(range(count))
    if isinstance(exits, (str, bytes)) or not hasattr(exits, "__iter__"):
        raise ValueError(
            "`exits` must be a list of exit indices or None. Received: "
            f"exits={exits!r}"
        )
    exits = list(exits)
    bad = [
        index for index in exits
        if isinstance(index, bool) or not isinstance(index, numbers.Integral)
        or not 0 <= index < count
    ]
    if bad:
        raise ValueError(
            f"`exits` must hold indices of the model's {count} exits, in "
            f"[0, {count - 1}]. Received: exits={exits!r}"
        )
    return tuple(sorted({int(index) for index in exits}))


def stage_macs(model, exits=None):
    """MACs per example of each stage of `model` (`tfcompress.analysis`).

    Stage K < last counts the backbone from the previous kept cut to cut K
    and exit K's head: what running it costs when the example goes on.
    `exits` as in `split_stages`.
    """
    return stage_costs(model, exits)[0]


def stage_costs(model, exits=None):
    """`(stage MACs, head MACs)`: per example, one profile per stage.

    The first list is `stage_macs`; the second holds the MACs of each kept
    exit's head (part of its stage's), so that the backbone's MACs are
    `sum(stage MACs) - sum(head MACs)`.
    """
    stages, heads = [], []
    for stage in split_stages(model, exits):
        costs = profile(stage)
        stages.append(costs.macs)
        for name in exit_names(stage):
            heads.append(costs.row(name).macs)
    return stages, heads
