"""Per-layer profile of a Keras model: shapes, parameters, MACs and bytes.

`profile(model)` runs one eager forward pass on a batch of one example of
zeros, records the input and output shapes of every layer call, and applies
the rules of `tfcompress.analysis.layer_costs` to each call. The model is
not modified: the recording hooks are removed before `profile` returns,
even when the forward pass fails.

Layers are walked as a tree. A layer with a MAC rule (`Dense`, `Conv2D`,
`BatchNormalization`, ...) is a leaf. Any other layer with sublayers (a
nested model, a composite layer such as
`tfcompress.layers.InvertedResidual`) is a group: its row shows the totals
of its subtree and is followed by its children's rows. Totals count leaves
only, so nothing is counted twice; each weight is counted once even when
its layer is shared.

What a composite layer computes in its own `call()` outside its sublayers
(e.g. a slice or a concatenation) is not seen; by the conventions of
`layer_costs` such data movement and element-wise work is 0 MACs anyway.
Weights a composite layer owns directly, though, mean work the profiler
cannot count: such a layer is listed in `ProfileReport.unknown_macs`.

The work is split by concept: `forward_pass` (example inputs, the recorded
call), `profile_walk` (the layer tree walk and totals) and `profile_report`
(the report and its table).
"""

import keras

from tfcompress.analysis import forward_pass
from tfcompress.analysis.profile_report import LayerProfile
from tfcompress.analysis.profile_report import ProfileReport
from tfcompress.analysis.profile_walk import ProfileWalk

__all__ = ["LayerProfile", "ProfileReport", "profile"]


def profile(model, input_shape=None):
    """Profiles `model` layer by layer: shapes, parameters, MACs and bytes.

    Runs one eager forward pass (`training=False`) on a batch of one
    example of zeros and records the shapes of every layer call. MACs are
    per example; see `tfcompress.analysis.layer_costs` for the counting
    conventions (element-wise ops are 0, batch normalization is folded, a
    layer without a rule is reported as unknown rather than guessed). A
    layer called several times (shared) has its MACs counted for every call
    and its weights once.

    The model is left unchanged: the recording hooks are removed even if
    the forward pass fails. An unbuilt model is built by an extra forward
    pass, as calling it would.

    Args:
        model: A `keras.Model` (functional, sequential or subclassed) or a
            `keras.layers.Layer`.
        input_shape: Shape of one example, without the batch dimension,
            e.g. `(32, 32, 3)`; for a model with several inputs, a list of
            such shapes in the order of `model.inputs`. Required when the
            model has no `model.inputs` (subclassed models) or when they
            have unknown dimensions. Defaults to `None`: use the shapes of
            `model.inputs`.

    Returns:
        A `ProfileReport`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)),
    ...     keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(),
    ...     keras.layers.Dense(2),
    ... ])
    >>> report = profile(model)
    >>> report.params == model.count_params()
    True
    >>> report.macs == 6 * 6 * 3 * 3 * 3 * 4 + 6 * 6 * 4 + 4 * 2
    True
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Argument `model` must be a `keras.Model` or a "
            f"`keras.layers.Layer`. Received: model={model!r} "
            f"(of type {type(model).__name__})"
        )
    inputs = forward_pass.example_inputs(model, input_shape)
    records = forward_pass.record_calls(model, inputs)
    walk = ProfileWalk(
        records, {id(v) for v in getattr(model, "trainable_weights", [])}
    )
    rows = walk.model_rows(model)
    return ProfileReport(
        model_name=model.name,
        rows=rows,
        params=walk.params,
        trainable_params=walk.trainable_params,
        macs=walk.macs,
        bytes_float32=4 * walk.params,
        bytes_int8=walk.bytes_int8,
        unknown_macs=walk.unknown_macs,
    )
