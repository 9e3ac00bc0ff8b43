"""Exit heads attached to chosen layers of a trained functional model."""

import dataclasses

import keras

from tfcompress.dynamic.exit_naming import exit_name
from tfcompress.dynamic.exit_naming import exit_names
from tfcompress.dynamic.stages import cut_layers
from tfcompress.dynamic.stages import split_stages
from tfcompress.dynamic.stages import stage_costs
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table



def pooled_dense_head(num_classes, feature_shape):
    """The default exit head: global average pooling, then a Dense layer.

    Pooling makes the head cheap whatever the feature map's size: its MACs
    are `channels * num_classes`. Features that are already a vector
    (`feature_shape` of length 1) go to the Dense layer directly.

    Args:
        num_classes: Number of logits.
        feature_shape: Shape of the features, without the batch dimension.

    Returns:
        A list of fresh layers.
    """
    layers = []
    if len(feature_shape) == 3:
        layers.append(keras.layers.GlobalAveragePooling2D())
    elif len(feature_shape) != 1:
        layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(num_classes))
    return layers


@dataclasses.dataclass(frozen=True)
class ExitRow(Row):
    """One exit head.

    Attributes:
        name: The head's layer name, `"exit_K"`.
        layer: The layer whose output it reads.
        feature_shape: Shape of that output, without the batch dimension.
        head_macs: MACs of the head, per example.
        macs_to_exit: MACs from the input to this exit's logits (the
            backbone up to `layer`, every earlier head and this one).
    """

    name: str
    layer: str
    feature_shape: tuple
    head_macs: int
    macs_to_exit: int


@dataclasses.dataclass(frozen=True, repr=False)
class ExitReport(Report):
    """Result of `attach_exits`.

    Attributes:
        rows: One `ExitRow` per exit, in order.
        backbone_macs: MACs of the original model, per example.
        total_macs: MACs of the model with every exit evaluated.
    """

    rows: tuple
    backbone_macs: int
    total_macs: int

    def table(self):
        lines = format_table(
            ["exit", "layer", "features", "head MACs", "MACs to exit"],
            [
                [
                    row.name,
                    row.layer,
                    "x".join(str(d) for d in row.feature_shape),
                    f"{row.head_macs:,}",
                    f"{row.macs_to_exit:,}",
                ]
                for row in self.rows
            ],
        )
        lines.append(
            f"backbone MACs {self.backbone_macs:,}; with every exit "
            f"{self.total_macs:,}"
        )
        return "\n".join(lines)


def attach_exits(model, *, at, head=None):
    """Attaches an exit classifier after each layer named in `at`.

    Returns a new functional model with the same layers (weights are
    shared, not copied) whose outputs are the logits of every exit, in the
    order of the layers, then the original model's logits. Each head is one
    layer named `"exit_K"` (a `keras.Sequential`), so that the stages can be
    found again from the model alone (`split_stages`) and the model saves as
    a plain `.keras` file.

    A cut must separate the model: every later layer must depend on the
    input only through the cut layer's output (a layer between blocks, not
    inside a residual branch), so that each stage takes one tensor in.

    Args:
        model: A trained functional `keras.Model` with one input and one
            output of logits, shape `(batch, classes)`.
        at: Names of the layers to attach exits to, a non-empty list; each
            layer is called once and has one output.
        head: A callable `head(num_classes, feature_shape)` returning the
            fresh layers of one head (a list), applied in order to the
            features of shape `feature_shape` (without the batch
            dimension). Defaults to `None`: `pooled_dense_head` (global average
            pooling and a Dense layer).

    Returns:
        `(model_with_exits, ExitReport)`.

    Raises:
        ValueError: If the model is not a single-input, single-output
            functional model, `at` is empty, names a missing layer, the same
            layer twice, the output layer, or a layer that does not
            separate the model.

    Example:

    ```python
    model = tfcompress.models.small_mobilenet_v2((28, 28, 1), 10)
    with_exits, report = attach_exits(model, at=["block1", "block2"])
    # with_exits outputs [exit_0 logits, exit_1 logits, final logits]
    ```
    """
    _check_model(model)
    layer_names = _check_at(model, at)
    num_classes = int(model.outputs[0].shape[-1])
    head = head or pooled_dense_head
    exits = []
    for index, name in enumerate(layer_names):
        features = model.get_layer(name).output
        layers = head(num_classes, tuple(features.shape[1:]))
        if isinstance(layers, keras.layers.Layer):
            layers = [layers]
        head_model = keras.Sequential(list(layers), name=exit_name(index))
        exits.append(head_model(features))
    with_exits = keras.Model(
        model.inputs, [*exits, *model.outputs], name=f"{model.name}_exits"
    )
    # Each stage must be a model of its own for the export: fail here, on
    # the cut that does not separate the graph, not later at export.
    split_stages(with_exits)
    return with_exits, exit_report(with_exits)


def exit_report(model):
    """The `ExitReport` of a model from `attach_exits`."""
    per_stage, heads = stage_costs(model)
    cumulative = 0
    rows = []
    cuts = cut_layers(model)
    for name, cut, macs, head_macs in zip(
        exit_names(model), cuts, per_stage, heads
    ):
        cumulative += macs
        head = model.get_layer(name)
        rows.append(
            ExitRow(
                name=name,
                layer=cut,
                feature_shape=tuple(int(d) for d in head.input.shape[1:]),
                head_macs=head_macs,
                macs_to_exit=cumulative,
            )
        )
    total = sum(per_stage)
    return ExitReport(
        rows=tuple(rows), backbone_macs=total - sum(heads), total_macs=total
    )


def _check_model(model):
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
        raise ValueError(
            "`model` must be a functional keras.Model. Received: "
            f"model={type(model).__name__}"
        )
    if not model.inputs or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one input and one output of logits. "
            f"Received: {len(model.inputs or [])} input(s), "
            f"{len(model.outputs or [])} output(s)"
        )
    if len(model.outputs[0].shape) != 2:
        raise ValueError(
            "`model`'s output must be logits of shape (batch, classes). "
            f"Received: output shape {tuple(model.outputs[0].shape)}"
        )


def _check_at(model, at):
    if isinstance(at, str) or not at:
        raise ValueError(
            "`at` must be a non-empty list of layer names. "
            f"Received: at={at!r}"
        )
    order = {layer.name: index for index, layer in enumerate(model.layers)}
    for name in at:
        if name not in order:
            raise ValueError(
                f"`at` names a layer the model does not have. Received: "
                f"at={list(at)!r}; missing: {name!r}"
            )
    if len(set(at)) != len(at):
        raise ValueError(
            f"`at` names a layer twice. Received: at={list(at)!r}"
        )
    for name in at:
        layer = model.get_layer(name)
        try:
            output = layer.output
        except (AttributeError, ValueError) as error:
            raise ValueError(
                "`at` must name layers called once, with one output. "
                f"Received: at={list(at)!r}; {name!r}: {error}"
            ) from error
        if isinstance(output, (list, tuple, dict)):
            raise ValueError(
                "`at` must name layers with one output. Received: "
                f"at={list(at)!r}; {name!r} has several"
            )
        if output is model.outputs[0]:
            raise ValueError(
                "`at` names the output layer, which is the final exit "
                f"already. Received: at={list(at)!r}"
            )
    return sorted(at, key=order.__getitem__)
