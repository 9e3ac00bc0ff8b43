"""MAC rules for recurrent layers and their cells.

Conventions (see also `tfcompress.analysis.layer_costs`): at each timestep
a recurrent cell multiplies its input and its previous state by the
kernels of its gates, `gates * (input_dim + units) * units` MACs (4 gates
for `LSTMCell`, 3 for `GRUCell`, 1 for `SimpleRNNCell`); a `ConvLSTM`
cell convolves them instead, `positions * prod(kernel_size) *
(in_channels + filters) * 4 * filters`. A recurrent layer counts its
cell's step once per timestep of the call, whatever it returns
(`return_sequences`, `return_state`) and whichever way the backend runs it
(a Python loop, `while_loop` or a fused cuDNN kernel).

The gate activations and the element-wise state updates
(`c = f * c + i * g`, `h = o * tanh(c)`, GRU's `r * h` and
`z * h + (1 - z) * h'`) are element-wise: 0 MACs, as everywhere else. So
both GRU variants count the same: with `reset_after=False` the reset gate
multiplies the state before its product with the candidate's recurrent
kernel, with `reset_after=True` (Keras's default) after it; the products
have the same sizes, only the (uncounted) element-wise step and the bias
layout differ.
"""

import math

from tfcompress.analysis.layer_costs import UNKNOWN_MACS
from tfcompress.analysis.layer_costs import LayerCost
from tfcompress.analysis.layer_costs import layer_cost


def recurrent_cell_macs(layer, input_shapes, output_shape):
    """MACs of one step of an `LSTMCell`, `GRUCell` or `SimpleRNNCell`.

    The input and the previous state are multiplied by `kernel`
    `(input_dim, gates * units)` and `recurrent_kernel`
    `(units, gates * units)`.

    Args:
        layer: A built cell with `kernel` and `recurrent_kernel`.
        input_shapes: Shapes of the call's tensors, the step's input
            `(batch, input_dim)` first, then the states.
        output_shape: Shape of the step's output.

    Returns:
        A `LayerCost`, for the whole batch.

    Example:

    >>> cell = keras.layers.LSTMCell(4)
    >>> cell.build((None, 3))
    >>> recurrent_cell_macs(cell, [(1, 3), (1, 4), (1, 4)], (1, 4))
    LayerCost(macs=112, note='')
    """
    inputs = input_shapes[0]
    recurrent = tuple(layer.recurrent_kernel.shape)
    kernel_macs = inputs[-1] * layer.kernel.shape[-1]
    return LayerCost(
        math.prod(inputs[:-1]) * (kernel_macs + math.prod(recurrent))
    )


def stacked_cells_macs(layer, input_shapes, output_shape):
    # `StackedRNNCells`: each cell's step reads the output of the one
    # before it.
    batch, size = math.prod(input_shapes[0][:-1]), input_shapes[0][-1]
    total = 0
    for cell in layer.cells:
        out_size = _output_size(cell)
        cost = layer_cost(cell, [(batch, size)], (batch, out_size))
        if cost.macs is None:
            return _unknown_cell(cell)
        total += cost.macs
        size = out_size
    return LayerCost(total)


def recurrent_layer_macs(layer, input_shapes, output_shape):
    """MACs of one call of a recurrent layer (`LSTM`, `GRU`, `RNN`, ...).

    The cell's step on the input `(batch, timesteps, ...)` is counted once
    per timestep: it is the cell's cost on a batch of
    `batch * timesteps` steps. A cell without a MAC rule makes the layer
    unknown.

    Args:
        layer: A built `keras.layers.RNN` (or subclass).
        input_shapes: Shapes of the call's tensors, the sequences first.
        output_shape: Shape of the layer's (first) output.

    Returns:
        A `LayerCost`.

    Example:

    >>> gru = keras.layers.GRU(4)
    >>> gru.build((None, 10, 3))
    >>> recurrent_layer_macs(gru, [(1, 10, 3)], (1, 4))
    LayerCost(macs=840, note='')
    """
    sequences = input_shapes[0] if input_shapes else ()
    if len(sequences) < 3:
        return LayerCost(None, UNKNOWN_MACS)
    steps = sequences[0] * sequences[1]
    if layer.return_sequences:
        step_output = output_shape[2:]
    else:
        step_output = output_shape[1:]
    cost = layer_cost(
        layer.cell, [(steps, *sequences[2:])], (steps, *step_output)
    )
    if cost.macs is None:
        return _unknown_cell(layer.cell)
    return LayerCost(cost.macs)


def conv_lstm_macs(layer, input_shapes, output_shape):
    # `ConvLSTM1D/2D/3D`: at each timestep the input and the state are
    # convolved with kernels of 4 * filters outputs, at every output
    # position (the state convolution is "same" with stride 1, on the
    # output's positions).
    sequences = input_shapes[0]
    batch, timesteps = sequences[:2]
    step_output = output_shape[2:] if layer.return_sequences else (
        output_shape[1:]
    )
    if layer.data_format == "channels_first":
        positions = math.prod(step_output[1:])
    else:
        positions = math.prod(step_output[:-1])
    cell = layer.cell
    per_position = math.prod(cell.kernel.shape) + math.prod(
        cell.recurrent_kernel.shape
    )
    return LayerCost(batch * timesteps * positions * per_position)


def bidirectional_macs(layer, input_shapes, output_shape):
    # The forward and the backward layer each run over the sequences. They
    # are counted from the input shape, not from their own calls: the
    # fused bidirectional kernel some backends use calls neither.
    sequences = input_shapes[0]
    total = 0
    for direction in (layer.forward_layer, layer.backward_layer):
        direction_output = direction.compute_output_shape(sequences)
        if direction_output and isinstance(direction_output[0], (tuple, list)):
            direction_output = direction_output[0]
        cost = layer_cost(direction, [sequences], tuple(direction_output))
        if cost.macs is None:
            return LayerCost(
                None,
                f"{UNKNOWN_MACS} (wrapped {type(direction).__name__}: "
                f"{cost.note})",
            )
        total += cost.macs
    return LayerCost(total)


def _output_size(cell):
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.units
    return size


def _unknown_cell(cell):
    return LayerCost(
        None,
        f"{UNKNOWN_MACS} (cell {type(cell).__name__} has no MACs rule; "
        "see tfcompress.graph.register_layer)",
    )

