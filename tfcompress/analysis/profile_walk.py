"""The layer tree walk of `profile`: one row per layer, and the totals.

Layers are walked as a tree. A layer with a MAC rule (`Dense`, `Conv2D`,
`BatchNormalization`, ...) is a leaf. Any other layer with sublayers (a
nested model, a composite layer such as
`tfcompress.layers.InvertedResidual`) is a group: its row shows the totals
of its subtree and is followed by its children's rows. Totals count leaves
only, so nothing is counted twice; each weight is counted once even when
its layer is shared.
"""

import dataclasses
import math

import keras

from tfcompress.analysis import layer_costs
from tfcompress.analysis.profile_report import LayerProfile
from tfcompress.graph import layer_tree


def _children(layer):
    """Direct sublayers of `layer` (and ops nodes of a functional model)."""
    if not isinstance(layer, keras.layers.Layer):
        return []
    children = layer_tree.sublayers(layer)
    operations = None
    if isinstance(layer, keras.Model):
        operations = getattr(layer, "operations", None)
    if operations:
        # A functional model: its graph's operations (in topological order)
        # include the `keras.ops` nodes, which are not layers.
        known = {id(operation) for operation in operations}
        children = list(operations) + [
            child for child in children if id(child) not in known
        ]
    return [
        child
        for child in children
        if not isinstance(child, keras.layers.InputLayer)
    ]


class ProfileWalk:
    """Builds the rows of a profile and accumulates the model totals.

    Args:
        records: The calls of every layer and op, from
            `tfcompress.analysis.forward_pass.record_calls`.
        trainable_ids: `id`s of the model's trainable variables.

    After `model_rows(model)`, `params`, `trainable_params`, `macs`,
    `bytes_int8` and `unknown_macs` hold the model totals.
    """

    def __init__(self, records, trainable_ids):
        self.records = records
        self.trainable_ids = trainable_ids
        self.seen_variables = set()
        self.seen_layers = {}
        self.params = 0
        self.trainable_params = 0
        self.macs = 0
        self.bytes_int8 = 0
        self.unknown_macs = []

    def model_rows(self, model):
        """Rows of the model's children; the totals line replaces its row."""
        children = [] if layer_costs.has_rule(model) else _children(model)
        if not children:
            rows, _ = self.walk(model, model.name, 0)
            return rows
        self.seen_layers[id(model)] = model.name
        rows = []
        own = self.take_variables(model, _weights(model), children)
        if own.params:
            rows.append(self.own_weights_row(model, model.name, 0, own))
        for child in children:
            child_rows, _ = self.walk(child, child.name, 0)
            rows.extend(child_rows)
        return rows

    def walk(self, layer, path, depth):
        """Rows of `layer`'s subtree (its own row first), unknown count."""
        if id(layer) in self.seen_layers:
            row = LayerProfile(
                name=path,
                layer_type=type(layer).__name__,
                depth=depth,
                is_group=False,
                output_shape=None,
                params=0,
                trainable_params=0,
                macs=0,
                bytes_float32=0,
                bytes_int8=0,
                calls=0,
                note=f"same layer as {self.seen_layers[id(layer)]}",
            )
            return [row], 0
        self.seen_layers[id(layer)] = path
        children = [] if layer_costs.has_rule(layer) else _children(layer)
        if children:
            return self.group_rows(layer, path, depth, children)
        return [self.leaf_row(layer, path, depth)], 0

    def leaf_row(self, layer, path, depth):
        calls = self.records.get(id(layer), [])
        own = self.take_variables(layer, _weights(layer), [])
        notes = []
        if not calls:
            macs = 0
            notes.append("not called in the forward pass")
        else:
            costs = [
                layer_costs.layer_cost(
                    layer,
                    call.input_shapes,
                    call.output_shapes[0] if call.output_shapes else (),
                )
                for call in calls
            ]
            unknown = [cost for cost in costs if cost.macs is None]
            if unknown:
                macs = None
                notes.append(unknown[0].note or layer_costs.UNKNOWN_MACS)
            else:
                macs = sum(cost.macs for cost in costs)
                if costs[0].note:
                    notes.append(costs[0].note)
            if len(calls) > 1:
                notes.append(f"called {len(calls)}x, MACs summed")
        if macs is None:
            self.unknown_macs.append(path)
        else:
            self.macs += macs
        return LayerProfile(
            name=path,
            layer_type=type(layer).__name__,
            depth=depth,
            is_group=False,
            output_shape=_display_shape(calls),
            params=own.params,
            trainable_params=own.trainable_params,
            macs=macs,
            bytes_float32=4 * own.params,
            bytes_int8=own.bytes_int8,
            calls=len(calls),
            note="; ".join(notes),
        )

    def group_rows(self, layer, path, depth, children):
        own = self.take_variables(layer, _weights(layer), children)
        rows = []
        child_heads = []
        unknown = 0
        for child in children:
            child_rows, child_unknown = self.walk(
                child, f"{path}/{child.name}", depth + 1
            )
            child_heads.append(child_rows[0])
            rows.extend(child_rows)
            unknown += child_unknown + (child_rows[0].macs is None)
        notes = _settings(layer)
        if own.params:
            self.unknown_macs.append(path)
            unknown += 1
            notes.append(
                f"owns {own.params:,} params directly: their MACs unknown"
            )
        if unknown:
            notes.append(f"excludes unknown MACs of {unknown} layer(s)")
        params = own.params + sum(row.params for row in child_heads)
        group_row = LayerProfile(
            name=path,
            layer_type=type(layer).__name__,
            depth=depth,
            is_group=True,
            output_shape=_display_shape(self.records.get(id(layer), [])),
            params=params,
            trainable_params=own.trainable_params
            + sum(row.trainable_params for row in child_heads),
            macs=sum(row.macs or 0 for row in child_heads),
            bytes_float32=4 * params,
            bytes_int8=own.bytes_int8
            + sum(row.bytes_int8 for row in child_heads),
            calls=len(self.records.get(id(layer), [])),
            note="; ".join(notes),
        )
        return [group_row, *rows], unknown

    def own_weights_row(self, layer, path, depth, own):
        self.unknown_macs.append(path)
        return LayerProfile(
            name=path,
            layer_type=type(layer).__name__,
            depth=depth,
            is_group=False,
            output_shape=None,
            params=own.params,
            trainable_params=own.trainable_params,
            macs=None,
            bytes_float32=4 * own.params,
            bytes_int8=own.bytes_int8,
            calls=0,
            note="weights owned by the model itself: MACs unknown",
        )

    def take_variables(self, layer, variables, children):
        """Counts the variables of `layer` not in `children` nor seen yet."""
        excluded = {
            id(variable) for child in children for variable in _weights(child)
        }
        own = _Counts()
        for variable in variables:
            if id(variable) in excluded or id(variable) in self.seen_variables:
                continue
            self.seen_variables.add(id(variable))
            size = math.prod(variable.shape)
            own.params += size
            if id(variable) in self.trainable_ids:
                own.trainable_params += size
            own.bytes_int8 += layer_costs.int8_weight_bytes(layer, variable)
        self.params += own.params
        self.trainable_params += own.trainable_params
        self.bytes_int8 += own.bytes_int8
        return own


@dataclasses.dataclass
class _Counts:
    params: int = 0
    trainable_params: int = 0
    bytes_int8: int = 0


def _weights(layer):
    # `keras.ops` nodes of a functional graph are not layers: no weights.
    return list(getattr(layer, "weights", None) or [])


def _display_shape(calls):
    """Output shape of the first call, batch dimension shown as `None`."""
    if not calls:
        return None
    shapes = [
        (None, *shape[1:]) if shape else ()
        for shape in calls[0].output_shapes
    ]
    if len(shapes) == 1:
        return shapes[0]
    return tuple(shapes)


# Settings of composite layers that decide their cost, shown in the note of
# their group row (e.g. a decomposed layer's rank).
_SETTINGS = ("rank", "ranks", "expansion", "groups", "n_div")


def _settings(layer):
    notes = []
    for name in _SETTINGS:
        value = getattr(layer, name, None)
        if isinstance(value, (int, float, tuple)) and not isinstance(
            value, bool
        ):
            notes.append(f"{name} {value}")
    return notes
