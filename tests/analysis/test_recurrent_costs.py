"""Tests of `tfcompress.analysis.recurrent_costs`: hand-counted RNNs."""

import keras
import pytest

from tfcompress.analysis import profile

L = keras.layers


def _profile_layer(layer, input_shape, dtype="float32"):
    inputs = keras.Input(input_shape, dtype=dtype)
    outputs = layer(inputs)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    model = keras.Model(inputs, outputs)
    report = profile(model)
    assert report.params == model.count_params()
    return report


def _lstm(timesteps, input_dim, units):
    return timesteps * 4 * (input_dim + units) * units


@pytest.mark.parametrize(
    "options",
    [{}, {"return_sequences": True}, {"return_state": True}],
    ids=["last", "sequences", "state"],
)
def test_lstm(options):
    report = _profile_layer(L.LSTM(8, **options), (10, 4))
    # 4 gates, each (4 + 8) x 8, at each of 10 timesteps.
    assert report.macs == _lstm(10, 4, 8) == 3_840
    assert report.unknown_macs == []
    assert report.rows[0].layer_type == "LSTM"
    assert not report.rows[0].is_group


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_both_reset_variants(reset_after):
    report = _profile_layer(L.GRU(8, reset_after=reset_after), (10, 4))
    # 3 gates, each (4 + 8) x 8, at each of 10 timesteps. reset_after only
    # moves the (element-wise) reset product before or after the recurrent
    # product of the same size, and splits the bias.
    assert report.macs == 10 * 3 * (4 + 8) * 8 == 2_880
    biases = 2 if reset_after else 1
    assert report.params == 3 * (4 + 8 + biases) * 8


def test_simple_rnn():
    report = _profile_layer(L.SimpleRNN(8, return_sequences=True), (10, 4))
    assert report.macs == 10 * (4 + 8) * 8


def test_bidirectional_lstm():
    report = _profile_layer(L.Bidirectional(L.LSTM(8)), (10, 4))
    assert report.macs == 2 * _lstm(10, 4, 8)
    assert report.params == 2 * 4 * (4 + 8 + 1) * 8
    assert report.unknown_macs == []


def test_bidirectional_gru_summed_sequences():
    layer = L.Bidirectional(
        L.GRU(8, return_sequences=True), merge_mode="sum"
    )
    report = _profile_layer(layer, (10, 4))
    assert report.macs == 2 * 10 * 3 * (4 + 8) * 8


def test_bidirectional_with_its_own_backward_layer():
    layer = L.Bidirectional(
        L.LSTM(8), backward_layer=L.GRU(6, go_backwards=True)
    )
    report = _profile_layer(layer, (10, 4))
    assert report.macs == _lstm(10, 4, 8) + 10 * 3 * (4 + 6) * 6


def test_stacked_cells():
    layer = L.RNN(L.StackedRNNCells([L.LSTMCell(8), L.GRUCell(6)]))
    report = _profile_layer(layer, (10, 4))
    # The GRU cell reads the LSTM cell's 8 outputs.
    assert report.macs == _lstm(10, 4, 8) + 10 * 3 * (8 + 6) * 6


class _NoRuleCell(keras.layers.Layer):
    state_size = 3
    output_size = 3

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3))

    def call(self, inputs, states):
        output = keras.ops.matmul(inputs, self.kernel) + states[0]
        return output, [output]


def test_rnn_of_a_cell_without_rule_is_unknown():
    report = _profile_layer(L.RNN(_NoRuleCell(), name="rnn"), (10, 4))
    assert report.unknown_macs == ["rnn"]
    assert "_NoRuleCell has no MACs rule" in report.rows[0].note


def test_conv_lstm_2d():
    layer = L.ConvLSTM2D(4, 3, strides=2, return_sequences=True)
    report = _profile_layer(layer, (5, 9, 9, 2))
    # Output 4x4 positions; the input convolution reads 2 channels, the
    # state convolution the 4 filters, each into 4 gates x 4 filters.
    assert report.rows[0].output_shape == (None, 5, 4, 4, 4)
    assert report.macs == 5 * 4 * 4 * 3 * 3 * (2 + 4) * 4 * 4


def test_time_distributed_conv2d():
    layer = L.TimeDistributed(L.Conv2D(3, 3, name="conv"))
    report = _profile_layer(layer, (5, 8, 8, 2))
    # The wrapped layer is called once per timestep, and counted each time.
    assert report.rows[1].calls == 5
    assert report.macs == 5 * 6 * 6 * 3 * 3 * 2 * 3


def test_keyword_spotting_conv1d_model():
    # 49 frames of 10 MFCCs, 12 keywords.
    inputs = keras.Input((49, 10))
    x = L.Conv1D(64, 3, padding="same", use_bias=False)(inputs)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv1D(3, strides=2, padding="same")(x)
    x = L.Conv1D(64, 1)(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dropout(0.2)(x)
    outputs = L.Dense(12, activation="softmax")(x)
    report = profile(keras.Model(inputs, outputs))
    assert report.unknown_macs == []
    assert report.macs == (
        49 * 3 * 10 * 64  # Conv1D.
        + 25 * 3 * 64  # Depthwise, stride 2: 25 positions.
        + 25 * 64 * 64  # Pointwise.
        + 25 * 64  # Average pooling.
        + 64 * 12  # Classifier.
    )


def test_embedding_and_lstm_text_model():
    inputs = keras.Input((20,), dtype="int32")
    x = L.Embedding(1000, 16, mask_zero=True)(inputs)
    x = L.LSTM(32)(x)
    outputs = L.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    report = profile(model)
    assert report.unknown_macs == []
    # The lookup is free; the LSTM runs all 20 steps (the mask it gets
    # from the embedding does not change the shapes).
    assert report.macs == _lstm(20, 16, 32) + 32 * 2
    assert report.params == model.count_params()
