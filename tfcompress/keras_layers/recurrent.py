"""Keras's recurrent layers, their cells and their wrappers."""

import keras

from tfcompress.analysis import recurrent_costs
from tfcompress.graph.registry import PrunableKernel
from tfcompress.graph.registry import register_layer
from tfcompress.quantization.quantize_rules import QuantizeRule
from tfcompress.quantization.recurrent_in_ops import LSTMInOps
from tfcompress.quantization.recurrent_in_ops import unsupported_lstm

L = keras.layers

# Leaves: counted from the input shape and the cell's kernels, since a
# fused (cuDNN) kernel may run instead of the cell's calls. `RNN` covers
# `LSTM`, `GRU`, `SimpleRNN` and `RNN(cell)` of any cell with a MACs rule.
register_layer(L.RNN, macs=recurrent_costs.recurrent_layer_macs)
register_layer(
    (L.ConvLSTM1D, L.ConvLSTM2D, L.ConvLSTM3D),
    macs=recurrent_costs.conv_lstm_macs,
)
register_layer(
    (L.LSTMCell, L.GRUCell, L.SimpleRNNCell),
    macs=recurrent_costs.recurrent_cell_macs,
)
register_layer(L.StackedRNNCells, macs=recurrent_costs.stacked_cells_macs)
# A leaf too: some backends run both directions in one fused kernel.
# `TimeDistributed` has no rule: it calls its layer once per timestep, and
# the profile counts those calls.
register_layer(L.Bidirectional, macs=recurrent_costs.bidirectional_macs)

# The cells hold the weights (the layers find them as sublayers: an LSTM's
# kernels are at "lstm/lstm_cell"). Both kernels reduce over axis -2: the
# step's input features for `kernel` `(input_dim, gates * units)`, the
# previous state for `recurrent_kernel` `(units, gates * units)`.
register_layer(
    (L.LSTMCell, L.GRUCell, L.SimpleRNNCell),
    prunable_kernels=[
        PrunableKernel("kernel", input_axis=-2),
        PrunableKernel("recurrent_kernel", input_axis=-2),
    ],
)


# Quantization: an LSTM is inlined as `LSTMInOps`, its steps written out
# over two Dense layers, as the int8 file runs it (unrolled). The other
# recurrent layers have no quantization-aware rewrite: left float in
# training, and the int8 post-training export quantizes them.
def _lstm_rule(layer):
    reason = unsupported_lstm(layer)
    if reason is None:
        return QuantizeRule.inline(twin=LSTMInOps)
    return QuantizeRule.keep_float(
        f"no quantization-aware rewrite for {reason} (export the float "
        "model with int8 post-training quantization instead)"
    )


register_layer(L.LSTM, quantize=QuantizeRule.per_layer(_lstm_rule))
register_layer(
    (L.GRU, L.SimpleRNN),
    quantize=QuantizeRule.keep_float(
        "no quantization-aware rewrite for GRU / SimpleRNN yet (export the "
        "float model with int8 post-training quantization instead)"
    ),
)
