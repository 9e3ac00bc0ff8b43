"""How structured pruning ranks channels: the importance criteria.

One score per channel of each group to prune, from the weights (`"l1"`,
`"l2"`), the scale of the following batch normalization (`"bn_gamma"`) or
a first-order Taylor expansion of the loss on examples (`"taylor"`); tied
channel sets add their scores.
"""

import keras
import numpy as np

# The Taylor importance needs a gradient tape; tfcompress runs on Keras's
# TensorFlow backend (the one TFLite export needs).
import tensorflow as tf

IMPORTANCE_CRITERIA = ("l1", "l2", "bn_gamma", "taylor")

# Examples per batch when Taylor importance is computed from arrays.
_TAYLOR_BATCH_SIZE = 64


def importance_scores(criterion, model, groups, data):
    """`{root: scores}`, one score per channel, for the groups to prune."""
    if not groups:
        return {}
    if criterion == "taylor":
        return _taylor_scores(model, groups, data)
    scores = {}
    for root, units in groups.items():
        scores[root] = sum(_unit_score(criterion, unit) for unit in units)
    return scores


def _unit_score(criterion, unit):
    if criterion == "bn_gamma":
        batch_norm = unit.batch_norm
        if batch_norm is None:
            raise ValueError(
                "importance='bn_gamma' ranks channels by the scale (gamma) "
                "of the BatchNormalization right after the layer, and no "
                f"BatchNormalization with a scale follows '{unit.name}'. Use "
                "importance='l1', or leave the layer out with `filters`."
            )
        return np.abs(keras.ops.convert_to_numpy(batch_norm.gamma))
    total = 0.0
    for variable, axis in unit.kernels:
        weights = _per_channel(keras.ops.convert_to_numpy(variable), axis)
        if criterion == "l1":
            total = total + np.abs(weights).sum(axis=0)
        else:
            total = total + np.square(weights).sum(axis=0)
    return total if criterion == "l1" else np.sqrt(total)


def _per_channel(values, axis):
    """Reshapes `values` to `(-1, channels)`, channels taken from `axis`."""
    values = np.moveaxis(values, axis, -1)
    return values.reshape(-1, values.shape[-1])


def _taylor_scores(model, groups, data):
    weights = {}  # id(variable) -> (variable, output axis)
    for units in groups.values():
        for unit in units:
            for variable, axis in unit.kernels:
                weights[id(variable)] = (variable, axis)
            if unit.bias is not None:
                weights[id(unit.bias)] = (unit.bias, 0)
    variables = [variable for variable, _ in weights.values()]
    values = {
        key: keras.ops.convert_to_numpy(variable)
        for key, (variable, _) in weights.items()
    }
    scores = {
        root: np.zeros(units[0].channel_set.size)
        for root, units in groups.items()
    }
    batches = 0
    for x, y in _batches(data):
        with tf.GradientTape() as tape:
            # Layers set to trainable=False have variables the tape does not
            # watch by itself.
            for variable in variables:
                tape.watch(variable.value)
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        gradients = dict(
            zip(weights, tape.gradient(loss, [v.value for v in variables]))
        )
        for root, units in groups.items():
            # The first-order change of the loss when the channel's filters
            # in every unit of the group are removed together.
            change = np.zeros_like(scores[root])
            for unit in units:
                keys = [id(variable) for variable, _ in unit.kernels]
                if unit.bias is not None:
                    keys.append(id(unit.bias))
                for key in keys:
                    if gradients[key] is None:
                        continue  # The loss does not depend on it.
                    product = values[key] * keras.ops.convert_to_numpy(
                        gradients[key]
                    )
                    change += _per_channel(product, weights[key][1]).sum(0)
            scores[root] += np.square(change)
        batches += 1
    if not batches:
        raise ValueError(
            "importance='taylor' got no batch from `data`. Received: an "
            "empty `data`"
        )
    return scores


def _batches(data):
    """Yields `(x, y)` batches from `(x, y)` arrays or an iterable."""
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(hasattr(part, "shape") for part in data)
    ):
        x, y = data
        if len(x) != len(y):
            raise ValueError(
                "`data` must be (x, y) with as many labels as examples. "
                f"Received: x.shape={tuple(x.shape)}, y.shape={tuple(y.shape)}"
            )
        for start in range(0, len(x), _TAYLOR_BATCH_SIZE):
            yield (
                x[start : start + _TAYLOR_BATCH_SIZE],
                y[start : start + _TAYLOR_BATCH_SIZE],
            )
        return
    try:
        iterator = iter(data)
    except TypeError:
        raise ValueError(
            "`data` must be a tuple (x, y) of arrays, or a dataset (or any "
            "iterable) of (x, y) batches. Received: data of type "
            f"{type(data).__name__}"
        ) from None
    for batch in iterator:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                "`data` must yield (x, y) batches. Received: a batch of "
                f"type {type(batch).__name__}"
            )
        yield batch[0], batch[1]
