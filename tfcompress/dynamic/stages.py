"""A model with exits cut into stages: stage K takes the features at cut
K - 1 (the image, for the first) to the features at cut K and exit K's
logits; the last stage takes the last cut's features to the final logits.

Each stage is a functional `keras.Model` over the same layers (weights are
shared), so it profiles, exports and runs like any model.
"""

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


def split_stages(model):
    """Cuts a model from `attach_exits` into one `keras.Model` per stage.

    Args:
        model: A model from `attach_exits` (or its `.keras` reload).

    Returns:
        A list of `len(exits) + 1` models named `"stage_K"`. Stage K < last
        outputs `[features, exit_logits]`; the last outputs the final
        logits.

    Raises:
        ValueError: If the model has no exits, or a cut does not separate
            the model (a later layer reads a tensor from before the cut, as
            a residual connection across it does).

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
    cuts = cut_layers(model)
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


def stage_macs(model):
    """MACs per example of each stage of `model` (`tfcompress.analysis`).

    Stage K < last counts the backbone from cut K - 1 to cut K and exit
    K's head: what running it costs when the example goes on.
    """
    return stage_costs(model)[0]


def stage_costs(model):
    """`(stage MACs, head MACs)`: per example, one profile per stage.

    The first list is `stage_macs`; the second holds the MACs of each
    exit's head (part of its stage's), so that the backbone's MACs are
    `sum(stage MACs) - sum(head MACs)`.
    """
    stages, heads = [], []
    for stage in split_stages(model):
        costs = profile(stage)
        stages.append(costs.macs)
        for name in exit_names(stage):
            heads.append(costs.row(name).macs)
    return stages, heads
