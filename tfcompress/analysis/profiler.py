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
"""

import dataclasses
import inspect
import math
import numbers

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph import keras_internals
from tfcompress.graph import layer_tree


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One row of a `ProfileReport`: a layer, a group of layers, or an op.

    Args:
        name: Path of the layer in the model, e.g. `"block1/expand_conv"`.
        layer_type: Class name of the layer, e.g. `"Conv2D"`.
        depth: Nesting depth; `0` for the model's direct children.
        is_group: Whether the row is a group (a nested model or a composite
            layer) whose numbers total the rows below it.
        output_shape: Output shape of the first call, batch dimension
            `None`; a tuple of shapes for a layer with several outputs;
            `None` if the layer was not called.
        params: Number of weights. For a group, of its whole subtree
            (including any weights it owns directly).
        trainable_params: The trainable part of `params`.
        macs: Multiply-accumulates per example, summed over all calls of
            the layer. `None` when unknown. For a group, the sum of the
            known MACs of its subtree (the note says when some are unknown).
        bytes_float32: Bytes of the weights stored as float32 (`4 * params`).
        bytes_int8: Bytes of the weights in an int8 model: 1 per kernel or
            embedding element, 4 per bias element (int32), 0 for folded
            `BatchNormalization`.
        calls: How many times the layer was called in the forward pass.
        note: Explanation, e.g. `"MACs unknown"` or that batch
            normalization is folded at export.
    """

    name: str
    layer_type: str
    depth: int
    is_group: bool
    output_shape: tuple | None
    params: int
    trainable_params: int
    macs: int | None
    bytes_float32: int
    bytes_int8: int
    calls: int
    note: str = ""

    def to_dict(self):
        """Returns the row as a JSON-serializable `dict`."""
        row = dataclasses.asdict(self)
        row["output_shape"] = _to_lists(self.output_shape)
        return row


@dataclasses.dataclass(frozen=True, repr=False)
class ProfileReport:
    """Result of `profile`: per-layer rows and model totals.

    `str(report)` (or `print(report)`) renders a fixed-width table with a
    totals section. Totals sum leaf rows only, never group rows, and count
    each weight once.

    Args:
        model_name: Name of the profiled model.
        rows: List of `LayerProfile`, in model order; a group row comes
            just before the rows of its children.
        params: Total number of weights; equals `model.count_params()`.
        trainable_params: The trainable part of `params`.
        macs: Total known multiply-accumulates per example. Layers whose
            MACs are unknown are excluded and listed in `unknown_macs`.
        bytes_float32: Bytes of all weights at float32.
        bytes_int8: Bytes of all weights in an int8 model.
        unknown_macs: Names (paths) of the layers whose MACs are unknown.
    """

    model_name: str
    rows: list
    params: int
    trainable_params: int
    macs: int
    bytes_float32: int
    bytes_int8: int
    unknown_macs: list

    def to_dict(self):
        """Returns the report as a JSON-serializable `dict`.

        Returns:
            A `dict` with the totals and `"rows"`, a list of row dicts (see
            `LayerProfile.to_dict`).
        """
        return {
            "model_name": self.model_name,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "bytes_float32": self.bytes_float32,
            "bytes_int8": self.bytes_int8,
            "unknown_macs": list(self.unknown_macs),
            "rows": [row.to_dict() for row in self.rows],
        }

    def __str__(self):
        return _format_report(self)

    def __repr__(self):
        return (
            f"<ProfileReport model_name={self.model_name!r} "
            f"params={self.params} macs={self.macs} "
            f"unknown_macs={self.unknown_macs!r}>"
        )


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
    inputs = _example_inputs(model, input_shape)
    if not all(
        getattr(layer, "built", True) for layer in _all_layers(model)
    ):
        # Build first, outside the recording: building may trace `call()`
        # symbolically, and layers created in `build()` must be hooked too.
        model(inputs, training=False)

    records = {}
    hooks = []
    try:
        for operation in _traceable_operations(model):
            hooks.append(_install_recorder(operation, records))
        model(inputs, training=False)
    finally:
        for hook in reversed(hooks):
            keras_internals.restore_call(*hook)

    walk = _Walk(
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


# Example inputs.


def _example_inputs(model, input_shape):
    """A batch of one example of zeros for each input of `model`."""
    # Subclassed models raise AttributeError on `model.inputs`.
    model_inputs = list(getattr(model, "inputs", None) or [])
    if input_shape is None:
        if not model_inputs:
            raise ValueError(
                "Cannot infer the input shape of "
                f"'{model.name}' ({type(model).__name__}): it has no "
                "`model.inputs`, as is the case for subclassed models. "
                "Pass `input_shape`, the shape of one example without the "
                "batch dimension, e.g. `profile(model, "
                "input_shape=(32, 32, 3))`, or a list of shapes for several "
                "inputs. Received: input_shape=None"
            )
        shapes = [tuple(tensor.shape[1:]) for tensor in model_inputs]
        if any(dim is None for shape in shapes for dim in shape):
            raise ValueError(
                f"The inputs of '{model.name}' have unknown dimensions: "
                f"{[tuple(tensor.shape) for tensor in model_inputs]}. "
                "Pass `input_shape`, the shape of one example without the "
                "batch dimension, e.g. `profile(model, "
                "input_shape=(32, 32, 3))`. Received: input_shape=None"
            )
    else:
        shapes = _normalize_input_shape(input_shape)
        if model_inputs and len(shapes) != len(model_inputs):
            raise ValueError(
                f"Argument `input_shape` must give one shape per input of "
                f"'{model.name}', which has {len(model_inputs)} inputs. "
                f"Received: input_shape={input_shape!r}"
            )
    if model_inputs:
        dtypes = [tensor.dtype for tensor in model_inputs]
    else:
        dtypes = ["float32"] * len(shapes)
    tensors = [
        keras.ops.zeros((1, *shape), dtype=dtype)
        for shape, dtype in zip(shapes, dtypes)
    ]
    if len(tensors) == 1:
        return tensors[0]
    if model_inputs and isinstance(model, keras.Model):
        try:
            # A functional model's `input` is the structure (list, dict)
            # it was built with, in the order of `model.inputs`.
            return keras.tree.pack_sequence_as(model.input, tensors)
        except (AttributeError, ValueError, TypeError):
            pass
    return tensors


def _normalize_input_shape(input_shape):
    """`input_shape` as a list of tuples of positive ints."""

    def is_shape(value):
        return isinstance(value, (tuple, list)) and all(
            isinstance(dim, numbers.Integral)
            and not isinstance(dim, bool)
            and dim > 0
            for dim in value
        )

    if is_shape(input_shape):
        return [tuple(int(dim) for dim in input_shape)]
    if (
        isinstance(input_shape, (tuple, list))
        and input_shape
        and all(is_shape(shape) for shape in input_shape)
    ):
        return [tuple(int(dim) for dim in shape) for shape in input_shape]
    raise ValueError(
        "Argument `input_shape` must be the shape of one example without "
        "the batch dimension, a tuple of positive integers such as "
        "`(32, 32, 3)`, or a list of such tuples for a model with several "
        f"inputs. Received: input_shape={input_shape!r}"
    )


# Recording the forward pass.


@dataclasses.dataclass(frozen=True)
class _Call:
    input_shapes: list
    output_shapes: list


def _all_layers(model):
    return layer_tree.all_layers(model, include_self=True)


def _traceable_operations(model):
    """Every layer of `model`, and the `keras.ops` nodes of its graphs."""
    operations = {}
    for layer in _all_layers(model):
        operations[id(layer)] = layer
        if isinstance(layer, keras.Model):
            for operation in getattr(layer, "operations", None) or []:
                operations.setdefault(id(operation), operation)
    return list(operations.values())


def _install_recorder(operation, records):
    """Records the shapes of every eager call of `operation`.

    Returns:
        A handle for `keras_internals.restore_call`.
    """

    def record(original, *args, **kwargs):
        outputs = original(*args, **kwargs)
        if _is_eager(outputs):
            records.setdefault(id(operation), []).append(
                _Call(
                    _shapes(_call_arguments(original, args, kwargs)),
                    _shapes(outputs),
                )
            )
        return outputs

    return keras_internals.intercept_call(operation, record)


def _call_arguments(call, args, kwargs):
    """The arguments of a call, in the order of `call`'s signature.

    Tensors passed by keyword count too, in their parameter's place:
    `mha(query=x, value=y)` records the shapes of `x` then `y`, as
    `mha(x, y)` does.
    """
    try:
        bound = inspect.signature(call).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return (*args, *kwargs.values())
    return tuple(bound.arguments.values())


def _is_eager(outputs):
    """Whether `outputs` are concrete values, not symbolic tracing."""
    if any(
        isinstance(x, keras.KerasTensor) for x in keras.tree.flatten(outputs)
    ):
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    return True


def _shapes(structure):
    """Shapes of the tensors (anything with a shape) in `structure`."""
    shapes = []
    for value in keras.tree.flatten(structure):
        shape = getattr(value, "shape", None)
        if shape is not None and hasattr(value, "dtype"):
            shapes.append(tuple(int(dim) for dim in shape))
    return shapes


# Walking the layer tree.


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


class _Walk:
    """Builds the rows and accumulates the totals."""

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


def _to_lists(shape):
    if isinstance(shape, tuple):
        return [_to_lists(dim) for dim in shape]
    return shape


# Rendering.


def _format_report(report):
    headers = (
        "Layer (type)",
        "Output shape",
        "Params",
        "MACs",
        "Bytes fp32",
        "Bytes int8",
        "Note",
    )
    right_aligned = (False, False, True, True, True, True, False)
    lines = [
        tuple(headers),
        *(
            (
                "  " * row.depth
                + f"{row.name.rsplit('/', 1)[-1]} ({row.layer_type})",
                _format_shape(row.output_shape),
                f"{row.params:,}",
                "unknown" if row.macs is None else f"{row.macs:,}",
                f"{row.bytes_float32:,}",
                f"{row.bytes_int8:,}",
                row.note,
            )
            for row in report.rows
        ),
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]

    def render(cells):
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, right_aligned)
        ]
        return "  ".join(parts).rstrip()

    table_width = sum(widths) + 2 * (len(widths) - 1)
    out = [f'Model: "{report.model_name}"', "=" * table_width]
    out.append(render(lines[0]))
    out.append("-" * table_width)
    out.extend(render(line) for line in lines[1:])
    out.append("=" * table_width)
    out.append(
        f"Params:        {report.params:,} "
        f"(trainable: {report.trainable_params:,})"
    )
    macs = f"MACs:          {report.macs:,}{_human_suffix(report.macs)}"
    macs += " per example"
    if report.unknown_macs:
        macs += ", excluding unknown layers"
    out.append(macs)
    out.append(
        f"Weight bytes:  {report.bytes_float32:,} B at float32"
        f"{_human_suffix(report.bytes_float32, 'B')}, "
        f"{report.bytes_int8:,} B at int8"
        f"{_human_suffix(report.bytes_int8, 'B')}"
    )
    if report.unknown_macs:
        out.append(
            f"MACs unknown:  {', '.join(report.unknown_macs)} "
            "(not in the MACs total)"
        )
    return "\n".join(out)


def _format_shape(shape):
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], tuple):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    trailing_comma = "," if len(shape) == 1 else ""
    return "(" + ", ".join(str(dim) for dim in shape) + trailing_comma + ")"


def _human_suffix(number, unit=""):
    """`" (1.23 M)"` for `1234567`; empty below 1000, where it adds nothing."""
    if abs(number) < 1000:
        return ""
    return f" ({_human(number, unit)})"


def _human(number, unit=""):
    """`1234567` -> `"1.23 M"`: three significant digits and a prefix."""
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= threshold:
            return f"{number / threshold:.3g} {prefix}{unit}"
    return f"{number} {unit}".rstrip()


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
