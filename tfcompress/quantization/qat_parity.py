"""How closely a quantization-aware model simulates its own int8 file.

A quantization-aware model (`quantize_model`) rounds its tensors where the
int8 `.tflite` file stores them, on the same scales, so each op of the file
should compute what the model computes up to the rounding of the int8
kernel (at most about half a step of the op's output, rarely one). An op
the model simulates wrongly (a different fixed scale, a missing rounding, a
different rounding of a mean) differs by more, and the difference then
compounds through every op after it.

`qat_parity` runs the model and its file on the same inputs (LiteRT with
every intermediate tensor kept), pairs each int8 tensor of the file with
the model's tensor rounded on the same scale (an `ActivationQuantizer`'s
output, matched by scale, zero point and shape, in graph order), and gives
per op the difference in units of the output's quantization step. The
first op that is off by more than a step is where the simulation is wrong.
"""

import dataclasses

import keras
import numpy as np

from tfcompress.argument_validation import integer_at_least
from tfcompress.graph.functional_graph import call_nodes
from tfcompress.graph.functional_graph import functional_graph
from tfcompress.graph.functional_graph import producer
from tfcompress.graph.functional_graph import run_graph
from tfcompress.litert.inspection import inspect_tflite
from tfcompress.litert.tensor_tracer import TensorTracer
from tfcompress.litert.tflite_file_path import tflite_file_path
from tfcompress.quantization.activation_quantizer import ActivationQuantizer
from tfcompress.quantization.layer_ops import op_layers
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

_INTEGER_RANGES = {"int8": (-128, 127), "int16": (-32768, 32767)}
# Ops that convert a tensor between types or scales without computing.
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


@dataclasses.dataclass(frozen=True)
class OpParity(Row):
    """How far one int8 op of the file is from the model's tensor.

    Attributes:
        name: The Keras tensor's layer (or op) name, the row's name.
        index: The op's position in the file.
        op: The op's name (`"CONV_2D"`, `"MEAN"`, ...).
        operation: The class of the Keras layer or op the tensor comes from
            (`"ActivationQuantizer"` after the layer it rounds).
        scale: The output's quantization step.
        max_steps: Largest difference, in steps.
        mean_steps: Mean difference, in steps.
        share_over_half: Share of values more than half a step apart
            (more than the int8 kernel's own rounding).
        local_max_steps: Largest difference when the model computes the
            op from the file's own inputs (every matched tensor before it
            replaced by the file's values): what the op itself adds.
        local_mean_steps: Mean of that difference.
        local_share_over_half: Share of values more than half a step
            apart, from the file's inputs.
    """

    name: str
    index: int
    op: str
    operation: str
    scale: float
    max_steps: float
    mean_steps: float
    share_over_half: float
    local_max_steps: float
    local_mean_steps: float
    local_share_over_half: float


@dataclasses.dataclass(frozen=True)
class QATParityReport(Report):
    """Per-op differences between a quantization-aware model and its file.

    Attributes:
        path: The `.tflite` file.
        num_examples: Inputs both ran on.
        rows: One `OpParity` per int8 op matched, in file order.
        unmatched: `(op index, op name)` of the int8 ops no model tensor
            was matched with.
    """

    path: str
    num_examples: int
    rows: tuple
    unmatched: tuple

    def first_divergence(self, max_steps=1.0, local=True):
        """The first op (file order) more than `max_steps` steps off.

        With `local` (the default), from the file's own inputs: the first
        op the model simulates wrongly rather than the first one its
        inputs' differences reach.
        """
        for row in self.rows:
            value = row.local_max_steps if local else row.max_steps
            if value > max_steps + 1e-3:  # float32 rounding of the scale
                return row
        return None

    def by_op(self):
        """`{op name: {"ops", "local_max_steps", "local_share_over_half"}}`:
        per op kind, the worst op's local figures."""
        grouped = {}
        for row in self.rows:
            grouped.setdefault(row.op, []).append(row)
        return {
            op: {
                "ops": len(rows),
                "local_max_steps": max(r.local_max_steps for r in rows),
                "local_share_over_half": max(
                    r.local_share_over_half for r in rows
                ),
            }
            for op, rows in grouped.items()
        }

    def table(self):
        lines = [
            f"QAT model vs {self.path!r} on {self.num_examples} examples, "
            "differences in output quantization steps"
        ]
        lines += format_table(
            [
                "tensor",
                "op",
                "scale",
                "max",
                "mean",
                "> 0.5 step",
                "local max",
                "local > 0.5",
            ],
            [
                [
                    row.name,
                    row.op,
                    f"{row.scale:.4g}",
                    f"{row.max_steps:.2f}",
                    f"{row.mean_steps:.3f}",
                    f"{row.share_over_half:.2%}",
                    f"{row.local_max_steps:.2f}",
                    f"{row.local_share_over_half:.2%}",
                ]
                for row in self.rows
            ],
        )
        if self.unmatched:
            lines.append(
                "not matched: "
                + ", ".join(f"{name} (op {i})" for i, name in self.unmatched)
            )
        return "\n".join(lines)


def qat_parity(model, path, x, batch_size=32):
    """Compares each int8 op of a QAT model's file with the model.

    Args:
        model: The quantization-aware model (`quantize_model`'s), Sequential
            or functional.
        path: Its int8 `.tflite` file (`to_tflite(model, path,
            quantization="int8")`), or the `TFLiteExport`.
        x: Inputs, an array `(N, *input_shape)`, `N >= 1`.
        batch_size: Examples per batch. Defaults to `32`.

    Returns:
        A `QATParityReport`.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If `x` is empty, `model` has no graph or no
            `ActivationQuantizer`.

    Example:

    ```python
    qat_model, _ = quantize_model(model, data=x_train[:128])
    to_tflite(qat_model, "qat.tflite", quantization="int8")
    report = qat_parity(qat_model, "qat.tflite", x_test[:64])
    print(report.first_divergence())
    ```
    """
    integer_at_least("batch_size", batch_size, minimum=1)
    path = tflite_file_path(path, "path")
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(
            "`x` must hold at least one example, with a batch axis. "
            f"Received: x of shape {x.shape}"
        )
    graph = functional_graph(model, "qat_parity")
    nodes = [node for node in call_nodes(graph) if len(node.outputs) == 1]
    if not any(isinstance(n.operation, ActivationQuantizer) for n in nodes):
        raise ValueError(
            "`model` must be quantization-aware (made by `quantize_model`): "
            "it has no ActivationQuantizer to compare the file with. "
            f"Received: model={model.name!r}"
        )
    probe = keras.Model(graph.inputs, [node.outputs[0] for node in nodes])
    values = probe.predict(x, batch_size=batch_size, verbose=0)
    if len(nodes) == 1:
        values = [values]

    inspection = inspect_tflite(path)
    owners = op_layers(model, inspection)
    tracer = TensorTracer(path)
    step = batch_size if tracer.has_dynamic_batch else 1
    ops = [
        (op, layers)
        for op, layers in zip(inspection.ops, owners)
        if op.subgraph == 0 and op.outputs and _per_tensor_int(op.outputs[0])
    ]
    outputs = {op.index: [] for op, _ in ops}
    for start in range(0, len(x), step):
        tracer.run([x[start : start + step]])
        for op, _ in ops:
            outputs[op.index].append(tracer.tensor(op.outputs[0].index))

    candidates = [
        (i, node, _quantizer_grid(node.operation))
        for i, node in enumerate(nodes)
    ]
    used = set()
    matched_by_node, unmatched = {}, []
    # `{id(tensor): node index}` of the model; `{file tensor: node index}`.
    index_of = {id(node.outputs[0]): i for i, node in enumerate(nodes)}
    node_of_tensor = {}
    for op, layers in ops:
        tensor = op.outputs[0]
        file_values = np.concatenate(outputs[op.index]).astype(np.float64)
        scale = float(tensor.quantization.scales[0])
        zero_point = int(tensor.quantization.zero_points[0])
        keeps = _keeps_scale(op)
        match = _match(
            candidates, used, values, file_values.shape, scale, zero_point,
            set(layers), op.name in _CONVERSION_OPS, keeps,
            fed_by=[
                node_of_tensor[t.index]
                for t in op.inputs
                if t.index in node_of_tensor
            ],
            index_of=index_of,
        )
        if match is None and keeps:
            # A square tensor and its transpose share grid and shape (an
            # attention's scores): the tensor that holds the model's values
            # is the match.
            match = _closer(matched_by_node, values, file_values, op, scale)
        if match is None:
            unmatched.append((op.index, op.name))
            continue
        used.add(match)
        previous = matched_by_node.get(match)
        if previous is not None:
            unmatched.append((previous[0].index, previous[0].name))
        matched_by_node[match] = (op, match, file_values, scale, zero_point)
        node_of_tensor[tensor.index] = match
    matches = sorted(matched_by_node.values(), key=lambda m: m[0].index)
    local = _local_steps(graph, nodes, x, batch_size, matches)
    rows = []
    for op, match, file_values, scale, zero_point in matches:
        node = nodes[match]
        steps = np.abs(
            np.asarray(values[match], np.float64) / scale
            - (file_values - zero_point)
        )
        local_steps = local[match]
        rows.append(
            OpParity(
                name=node.operation.name,
                index=op.index,
                op=op.name,
                operation=type(node.operation).__name__,
                scale=scale,
                max_steps=float(steps.max()),
                mean_steps=float(steps.mean()),
                share_over_half=float(np.mean(steps > _HALF)),
                local_max_steps=float(local_steps.max()),
                local_mean_steps=float(local_steps.mean()),
                local_share_over_half=float(np.mean(local_steps > _HALF)),
            )
        )
    return QATParityReport(
        path=path,
        num_examples=len(x),
        rows=tuple(rows),
        unmatched=tuple(unmatched),
    )


def _local_steps(graph, nodes, x, batch_size, matches):
    """`{node index: |difference| in steps}` from the file's inputs.

    Re-runs the graph eagerly, batch by batch; after each matched node its
    output is replaced by the file's (dequantized) tensor, so each op is
    computed from exactly what its int8 kernel read.
    """
    index_of = {id(node): i for i, node in enumerate(nodes)}
    by_node = {
        match: (file_values, scale, zero_point)
        for _, match, file_values, scale, zero_point in matches
    }
    found = {match: [] for match in by_node}
    for start in range(0, len(x), batch_size):
        stop = start + batch_size

        def node_fn(node, args, kwargs, start=start, stop=stop):
            outputs = node.operation(*args, **kwargs)
            i = index_of.get(id(node))
            if i not in by_node:
                return outputs
            file_values, scale, zero_point = by_node[i]
            stored = file_values[start:stop] - zero_point
            computed = np.asarray(
                keras.ops.convert_to_numpy(outputs), np.float64
            )
            found[i].append(np.abs(computed / scale - stored))
            return keras.ops.convert_to_tensor(
                (stored * scale).astype("float32")
            )

        run_graph(graph, [x[start:stop]], node_fn)
    return {i: np.concatenate(parts) for i, parts in found.items()}


# More than half a step, with room for float32 rounding of the scale.
_HALF = 0.5 + 1e-3


def _per_tensor_int(tensor):
    q = tensor.quantization
    return (
        tensor.dtype in _INTEGER_RANGES
        and q is not None
        and q.num_scales == 1
    )


def _quantizer_grid(layer):
    """`(scale, zero point)` an `ActivationQuantizer` rounds on, else None.

    The fake-quant op's nudging: the range widened to include 0, 255 steps,
    the zero point on a level (what the converter writes into the file).
    """
    if not isinstance(layer, ActivationQuantizer) or not layer.built:
        return None
    if layer.fixed_range is not None:
        low, high = layer.fixed_range
    else:
        low = float(keras.ops.convert_to_numpy(layer.range_min))
        high = float(keras.ops.convert_to_numpy(layer.range_max))
    low = min(low, 0.0)
    high = max(high, low + 1e-6)
    levels = 2**layer.num_bits - 1
    scale = (high - low) / levels
    zero_point = int(np.clip(round(-low / scale), 0, levels)) - 128
    return scale, zero_point


def _closer(matched_by_node, values, file_values, op, scale):
    """The node matched to this op's input, if this op's values are closer
    to it than the input's."""
    inputs = {t.index for t in op.inputs if not t.is_constant}
    for i, (other, _, other_values, _, zero_point) in matched_by_node.items():
        if other.outputs[0].index not in inputs:
            continue
        if other_values.shape != file_values.shape:
            return None
        model = np.asarray(values[i], np.float64) / scale
        here = np.mean(np.abs(model - (file_values - zero_point)))
        there = np.mean(np.abs(model - (other_values - zero_point)))
        return i if here < there else None
    return None


def _nodes_of(operations, candidates):
    """The graph nodes calling `operations` (the ops a quantizer rounds)."""
    wanted = {id(operation) for operation in operations}
    return [node for _, node, _ in candidates if id(node.operation) in wanted]


def _keeps_scale(op):
    """Whether the op's output has the scale of one of its inputs."""
    output = op.outputs[0].quantization
    return any(
        not t.is_constant
        and _per_tensor_int(t)
        and t.quantization.scales[0] == output.scales[0]
        and t.quantization.zero_points[0] == output.zero_points[0]
        for t in op.inputs
    )


def _match(
    candidates,
    used,
    values,
    shape,
    scale,
    zero_point,
    owners,
    convert,
    keeps,
    fed_by=(),
    index_of=None,
):
    """The index of the model tensor that a file tensor stores.

    A rounded tensor (an `ActivationQuantizer`'s output on the same grid
    and shape) not matched yet, preferring one whose quantizer or the layer
    it rounds owns the op, else the first in graph order. An op with no
    such tensor keeps its input's scale (a reshape, padding, max pooling):
    the output of the last layer that owns it, of the same shape. An op
    inside a layer (a layer normalization's SUB, MUL) is not matched.
    First of all, a tensor rounded after an op that reads the tensors
    matched to the file op's inputs (`fed_by`): the sigmoids of many
    blocks share grid and shape.
    """
    same_grid = []
    for i, node, grid in candidates:
        if grid is None or i in used or values[i].shape != shape:
            continue
        if abs(grid[0] - scale) <= 1e-4 * scale and grid[1] == zero_point:
            same_grid.append((i, node))
    for i, node in same_grid:
        if fed_by and index_of is not None:
            readers = [producer(t) for t in node.input_tensors]
            sources = {
                index_of.get(id(x))
                for op_node in _nodes_of(readers, candidates)
                for x in op_node.input_tensors
            }
            if sources & set(fed_by):
                return i
    for i, node in same_grid:
        rounded = [producer(t).name for t in node.input_tensors]
        if node.operation.name in owners or any(
            name in owners for name in rounded
        ):
            return i
    if same_grid and not convert:
        return same_grid[0][0]
    owned = [
        i
        for i, node, _ in candidates
        if keeps
        and node.operation.name in owners
        and values[i].shape == shape
    ]
    if owned:
        return owned[-1]
    return same_grid[0][0] if same_grid else None
