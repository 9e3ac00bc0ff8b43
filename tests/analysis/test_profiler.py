"""Tests of `tfcompress.analysis.profiler`: hand-checked MACs and params."""

import json

import keras
import numpy as np
import pytest

from tfcompress.analysis import LayerProfile
from tfcompress.analysis import ProfileReport
from tfcompress.analysis import profile


def _single_layer_report(layer, input_shape):
    model = keras.Sequential([keras.Input(input_shape), layer])
    return profile(model)


def _row(report, name):
    matches = [row for row in report.rows if row.name == name]
    assert len(matches) == 1, [row.name for row in report.rows]
    return matches[0]


# MAC rules, one layer at a time. The expected values are written as the
# formula: output positions * kernel window * input channels * filters.


def test_conv2d_stride_2_valid_padding():
    layer = keras.layers.Conv2D(8, 3, strides=2, padding="valid")
    report = _single_layer_report(layer, (32, 32, 3))
    row = report.rows[0]
    # (32 - 3) // 2 + 1 = 15 output positions per side.
    assert row.output_shape == (None, 15, 15, 8)
    assert row.macs == 15 * 15 * 3 * 3 * 3 * 8
    assert row.params == 3 * 3 * 3 * 8 + 8
    assert report.macs == row.macs


def test_conv2d_dilation_2():
    layer = keras.layers.Conv2D(8, 3, dilation_rate=2, padding="valid")
    report = _single_layer_report(layer, (32, 32, 3))
    # Effective kernel 5x5: 32 - 4 = 28 positions, still 3x3 MACs each.
    assert report.rows[0].output_shape == (None, 28, 28, 8)
    assert report.macs == 28 * 28 * 3 * 3 * 3 * 8


def test_conv2d_groups():
    layer = keras.layers.Conv2D(8, 3, groups=2, padding="same")
    report = _single_layer_report(layer, (16, 16, 4))
    # Each filter sees 4 / 2 input channels.
    assert report.macs == 16 * 16 * 3 * 3 * (4 // 2) * 8
    assert report.params == 3 * 3 * (4 // 2) * 8 + 8


def test_conv2d_channels_first():
    layer = keras.layers.Conv2D(8, 3, data_format="channels_first")
    report = _single_layer_report(layer, (3, 16, 16))
    assert report.rows[0].output_shape == (None, 8, 14, 14)
    assert report.macs == 14 * 14 * 3 * 3 * 3 * 8


def test_conv1d():
    layer = keras.layers.Conv1D(6, 5, padding="valid")
    report = _single_layer_report(layer, (20, 4))
    assert report.macs == (20 - 5 + 1) * 5 * 4 * 6


def test_depthwise_conv2d_depth_multiplier():
    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    report = _single_layer_report(layer, (16, 16, 4))
    assert report.rows[0].output_shape == (None, 16, 16, 8)
    assert report.macs == 16 * 16 * 3 * 3 * 4 * 2


def test_separable_conv2d():
    layer = keras.layers.SeparableConv2D(
        8, 3, depth_multiplier=2, padding="same"
    )
    report = _single_layer_report(layer, (16, 16, 4))
    depthwise = 16 * 16 * 3 * 3 * 4 * 2
    pointwise = 16 * 16 * (4 * 2) * 8
    assert report.macs == depthwise + pointwise


def test_conv2d_transpose():
    layer = keras.layers.Conv2DTranspose(4, 3, strides=2)
    report = _single_layer_report(layer, (5, 5, 3))
    # Every input position scatters a 3x3 window to every filter.
    assert report.macs == 5 * 5 * 3 * 3 * 3 * 4


def test_dense_on_2d_and_3d_inputs():
    report = _single_layer_report(keras.layers.Dense(5), (10,))
    assert report.macs == 10 * 5
    assert report.params == 10 * 5 + 5
    # On a sequence the dense layer applies at each of the 7 positions.
    report = _single_layer_report(keras.layers.Dense(5), (7, 10))
    assert report.rows[0].output_shape == (None, 7, 5)
    assert report.macs == 7 * 10 * 5


def test_time_distributed_counts_every_step():
    layer = keras.layers.TimeDistributed(keras.layers.Dense(5, name="dense"))
    report = _single_layer_report(layer, (7, 10))
    group = report.rows[0]
    assert group.is_group
    assert report.macs == 7 * 10 * 5
    assert report.params == 10 * 5 + 5


def test_dense_subclass_is_counted():
    class MyDense(keras.layers.Dense):
        pass

    report = _single_layer_report(MyDense(5), (10,))
    assert report.macs == 10 * 5
    assert report.unknown_macs == []


def test_batch_normalization_is_folded():
    report = _single_layer_report(keras.layers.BatchNormalization(), (8, 8, 6))
    row = report.rows[0]
    assert row.macs == 0
    assert row.params == 4 * 6
    assert row.trainable_params == 2 * 6
    assert row.bytes_float32 == 4 * 4 * 6
    assert row.bytes_int8 == 0
    assert "folded" in row.note
    assert report.unknown_macs == []


def test_pooling():
    report = _single_layer_report(keras.layers.AveragePooling2D(2), (8, 8, 3))
    # One accumulate per window element of each output value.
    assert report.macs == 4 * 4 * 3 * 2 * 2
    report = _single_layer_report(
        keras.layers.GlobalAveragePooling2D(), (8, 8, 3)
    )
    # Each input value accumulated once.
    assert report.macs == 8 * 8 * 3
    report = _single_layer_report(keras.layers.MaxPooling2D(2), (8, 8, 3))
    assert report.macs == 0
    assert "no MACs" in report.rows[0].note


def test_zero_mac_layers():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(0.5)(x)
    y = keras.layers.Activation("sigmoid")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Flatten()(x)
    report = profile(keras.Model(inputs, x))
    assert report.macs == 0
    assert report.unknown_macs == []
    assert [row.layer_type for row in report.rows] == [
        "ZeroPadding2D",
        "ReLU",
        "Dropout",
        "Activation",
        "Add",
        "Flatten",
    ]


def test_keras_ops_nodes_in_functional_graph():
    inputs = keras.Input((6, 4))
    x = inputs + 1.0
    x = keras.ops.matmul(x, keras.ops.ones((4, 5)))
    report = profile(keras.Model(inputs, x))
    assert [row.layer_type for row in report.rows] == ["Add", "Matmul"]
    # (6, 4) @ (4, 5): 4 MACs for each of the 6 * 5 outputs.
    assert report.macs == 6 * 5 * 4
    assert report.unknown_macs == []


def test_tensors_passed_by_keyword_are_recorded():
    # Recorded in the order of `call`'s signature, as if positional.
    inputs = keras.Input((6, 8))
    x = keras.layers.Dense(4, name="dense")(inputs=inputs)
    outputs = keras.layers.MultiHeadAttention(1, 2, name="mha")(
        value=x, query=inputs
    )
    report = profile(keras.Model(inputs, outputs))
    assert _row(report, "dense").macs == 6 * 8 * 4
    assert _row(report, "mha").macs == (
        6 * 8 * 2  # Query projection from the query's 8 features.
        + 2 * 6 * 4 * 2  # Key and value projections from x's 4.
        + 2 * 6 * 6 * 2  # Scores and weighted sum.
        + 6 * 2 * 8  # Output projection to the query's 8.
    )


def test_bytes():
    report = _single_layer_report(keras.layers.Dense(5), (10,))
    row = report.rows[0]
    assert row.bytes_float32 == 4 * (10 * 5 + 5)
    # int8 kernel, int32 bias.
    assert row.bytes_int8 == 10 * 5 + 4 * 5
    assert report.bytes_float32 == row.bytes_float32
    assert report.bytes_int8 == row.bytes_int8


# The tree walk.


def _nested_model():
    block = keras.Sequential(
        [
            keras.layers.Conv2D(8, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(name="relu"),
        ],
        name="block1",
    )
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="stem")(
        inputs
    )
    x = block(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, name="head")(x)
    return keras.Model(inputs, outputs, name="nested")


def test_nested_model_group_row_totals_its_children():
    model = _nested_model()
    report = profile(model)
    assert [(row.name, row.depth, row.is_group) for row in report.rows] == [
        ("stem", 0, False),
        ("block1", 0, True),
        ("block1/conv", 1, False),
        ("block1/bn", 1, False),
        ("block1/relu", 1, False),
        ("pool", 0, False),
        ("head", 0, False),
    ]
    group = _row(report, "block1")
    children = [row for row in report.rows if row.name.startswith("block1/")]
    assert group.params == sum(row.params for row in children)
    assert group.trainable_params == sum(
        row.trainable_params for row in children
    )
    assert group.macs == sum(row.macs for row in children)
    assert group.bytes_int8 == sum(row.bytes_int8 for row in children)
    assert group.output_shape == (None, 8, 8, 8)
    assert _row(report, "block1/conv").macs == 8 * 8 * 3 * 3 * 4 * 8
    # Totals count leaves only: the group row is not added again.
    expected_macs = (
        8 * 8 * 3 * 3 * 3 * 4  # stem
        + 8 * 8 * 3 * 3 * 4 * 8  # block1/conv
        + 8 * 8 * 8  # pool
        + 8 * 10  # head
    )
    assert report.macs == expected_macs
    assert report.params == model.count_params()
    assert report.trainable_params == sum(
        int(np.prod(w.shape)) for w in model.trainable_weights
    )


class _TwoDense(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, name="hidden")
        self.out = keras.layers.Dense(3, name="out")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


def test_subclassed_model_with_input_shape():
    model = _TwoDense(name="two_dense")
    report = profile(model, input_shape=(8,))
    assert [row.name for row in report.rows] == ["hidden", "out"]
    assert report.macs == 8 * 16 + 16 * 3
    assert report.params == model.count_params() == 8 * 16 + 16 + 16 * 3 + 3


def test_subclassed_model_requires_input_shape():
    with pytest.raises(ValueError, match=r"Pass `input_shape`") as error:
        profile(_TwoDense())
    assert "subclassed" in str(error.value)
    assert "Received: input_shape=None" in str(error.value)


def test_unknown_spatial_dimensions_require_input_shape():
    model = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)]
    )
    with pytest.raises(ValueError, match=r"unknown dimensions"):
        profile(model)
    report = profile(model, input_shape=(10, 10, 3))
    assert report.macs == 8 * 8 * 3 * 3 * 3 * 4


def test_invalid_input_shape():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"Received: input_shape=\(0, 4\)"):
        profile(model, input_shape=(0, 4))
    with pytest.raises(ValueError, match=r"Received: input_shape='4'"):
        profile(model, input_shape="4")
    with pytest.raises(ValueError, match=r"has 1 inputs"):
        profile(model, input_shape=[(4,), (4,)])


def test_model_must_be_a_layer():
    with pytest.raises(TypeError, match=r"Received: model='model'"):
        profile("model")


def _two_input_model(image_size):
    image = keras.Input((image_size, image_size, 3), name="image")
    features = keras.Input((5,), name="features")
    x = keras.layers.GlobalAveragePooling2D()(image)
    x = keras.layers.Concatenate()([x, features])
    outputs = keras.layers.Dense(2)(x)
    return keras.Model({"image": image, "features": features}, outputs)


def test_multi_input_model():
    report = profile(_two_input_model(8))
    assert report.macs == 8 * 8 * 3 + (3 + 5) * 2

    model = _two_input_model(None)
    with pytest.raises(ValueError, match=r"unknown dimensions"):
        profile(model)
    # Explicit shapes come in the order of `model.inputs`.
    shapes = {"image": (4, 4, 3), "features": (5,)}
    report = profile(
        model, input_shape=[shapes[tensor.name] for tensor in model.inputs]
    )
    assert report.macs == 4 * 4 * 3 + (3 + 5) * 2


def test_shared_layer_counts_macs_per_call_and_params_once():
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((4,))
    outputs = shared(shared(inputs))
    model = keras.Model(inputs, outputs)
    report = profile(model)
    row = _row(report, "shared")
    assert row.calls == 2
    assert row.macs == 2 * (4 * 4)
    assert row.params == 4 * 4 + 4
    assert report.params == model.count_params() == 4 * 4 + 4
    assert "called 2x" in row.note


class _Scale(keras.layers.Layer):
    """A custom layer with a weight and no MAC rule."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

    def call(self, inputs):
        return inputs * self.scale


def test_unknown_layer_is_reported_not_guessed():
    inputs = keras.Input((6,))
    x = _Scale(name="scale")(inputs)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    report = profile(model)
    row = _row(report, "scale")
    assert row.params == 6
    assert row.macs is None
    assert "MACs unknown" in row.note
    assert report.unknown_macs == ["scale"]
    assert report.macs == 6 * 2
    assert report.params == model.count_params()
    text = str(report)
    assert "unknown" in text
    assert "MACs unknown:  scale" in text


class _OwnWeightBlock(keras.layers.Layer):
    """A composite layer owning a weight besides its sublayer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.gate = self.add_weight(shape=(3,), name="gate")

    def call(self, inputs):
        return self.dense(inputs) * self.gate


def test_group_owning_weights_directly():
    model = keras.Sequential(
        [keras.Input((4,)), _OwnWeightBlock(name="block")]
    )
    report = profile(model)
    group = _row(report, "block")
    assert group.is_group
    assert group.params == 4 * 3 + 3 + 3
    assert _row(report, "block/dense").params == 4 * 3 + 3
    assert report.params == model.count_params()
    assert report.unknown_macs == ["block"]
    assert report.macs == 4 * 3
    assert "owns 3 params directly" in group.note


def test_model_is_unchanged():
    model = _nested_model()
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3))
    before = keras.ops.convert_to_numpy(model(x))
    weights_before = [w.copy() for w in model.get_weights()]
    profile(model)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), before)
    for w, w_before in zip(model.get_weights(), weights_before):
        np.testing.assert_array_equal(w, w_before)
    for layer in model._flatten_layers(include_self=True, recursive=True):
        assert "call" not in layer.__dict__, layer.name
    for operation in model.operations:
        assert "call" not in operation.__dict__, operation.name


class _Flaky(keras.layers.Layer):
    fail = False

    def call(self, inputs):
        if self.fail:
            raise RuntimeError("flaky layer failed")
        return inputs


def test_hooks_removed_when_forward_pass_fails():
    flaky = _Flaky(name="flaky")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), flaky]
    )
    flaky.fail = True
    with pytest.raises(RuntimeError, match="flaky layer failed"):
        profile(model)
    for layer in model._flatten_layers(include_self=True, recursive=True):
        assert "call" not in layer.__dict__, layer.name


@pytest.mark.filterwarnings("ignore:Layer InputLayer does not have")
def test_quantized_layer():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.quantize("int8")
    report = profile(model)
    assert report.macs == 4 * 3
    assert report.params == model.count_params()
    assert "quantized_call" not in model.layers[0].__dict__


def test_profile_a_single_layer():
    layer = keras.layers.Dense(3)
    report = profile(layer, input_shape=(4,))
    assert [row.name for row in report.rows] == [layer.name]
    assert report.macs == 4 * 3
    assert report.params == 4 * 3 + 3


# The report.


def test_report_table_and_dict():
    report = profile(_nested_model())
    assert isinstance(report, ProfileReport)
    assert all(isinstance(row, LayerProfile) for row in report.rows)
    with pytest.raises(AttributeError):
        report.rows[0].macs = 1
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == 'Model: "nested"'
    assert "Layer (type)" in lines[2]
    assert "  conv (Conv2D)" in text
    assert "(None, 8, 8, 8)" in text
    # Thousands separators and a human-readable total.
    assert f"{8 * 8 * 3 * 3 * 4 * 8:,}" in text
    assert f"MACs:          {report.macs:,} (" in text
    assert " k)" in text
    assert f"Params:        {report.params:,}" in text
    # Fixed width: the numeric columns are right-aligned to a common edge.
    header = lines[2]
    params_end = header.index("Params") + len("Params")
    for line in lines[4 : 4 + len(report.rows)]:
        assert line[params_end - 1] != " ", line

    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["params"] == report.params
    assert as_dict["macs"] == report.macs
    assert as_dict["unknown_macs"] == []
    assert len(as_dict["rows"]) == len(report.rows)
    assert as_dict["rows"][0]["name"] == "stem"
    assert as_dict["rows"][0]["output_shape"] == [None, 8, 8, 4]


def test_human_readable_macs():
    report = _single_layer_report(
        keras.layers.Conv2D(64, 3, padding="same"), (64, 64, 32)
    )
    assert report.macs == 64 * 64 * 3 * 3 * 32 * 64
    assert "(75.5 M)" in str(report)


def test_tfcompress_layers_are_profiled_through_their_sublayers():
    from tfcompress import layers as tfc_layers

    inputs = keras.Input((16, 16, 8))
    x = tfc_layers.DepthwiseSeparableConv2D(16, strides=2, name="dws")(inputs)
    x = tfc_layers.InvertedResidual(16, expansion=4, name="ir")(x)
    x = tfc_layers.ShuffleConv2D(16, groups=4, name="shuffle")(x)
    x = tfc_layers.PartialConv2D(n_div=4, name="partial")(x)
    x = tfc_layers.CPConv2D(
        16, kernel_size=3, rank=4, padding="same", name="cp"
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = tfc_layers.LowRankDense(10, rank=4, name="low_rank")(x)
    model = keras.Model(inputs, outputs)
    report = profile(model)

    assert report.unknown_macs == []
    assert report.params == model.count_params()
    expected = {
        # Depthwise 3x3 at stride 2 (8x8 out), then pointwise 8 -> 16.
        "dws": 8 * 8 * 3 * 3 * 8 + 8 * 8 * 8 * 16,
        # Expand 16 -> 64, depthwise 3x3 on 64, project 64 -> 16.
        "ir": 8 * 8 * 16 * 64 + 8 * 8 * 3 * 3 * 64 + 8 * 8 * 64 * 16,
        # 1x1 grouped conv, 4 groups of 16 / 4 channels; shuffle is free.
        "shuffle": 8 * 8 * (16 // 4) * 16,
        # 3x3 conv on 16 / 4 channels only.
        "partial": 8 * 8 * 3 * 3 * 4 * 4,
        # 1x1 to rank 4, 3x1 and 1x3 depthwise, 1x1 to 16.
        "cp": 8 * 8 * 16 * 4 + 2 * (8 * 8 * 3 * 4) + 8 * 8 * 4 * 16,
        "pool": 8 * 8 * 16,
        "low_rank": 16 * 4 + 4 * 10,
    }
    for name, macs in expected.items():
        assert _row(report, name).macs == macs, name
    assert report.macs == sum(expected.values())
    assert _row(report, "dws").is_group
    assert _row(report, "dws/depthwise_bn").note.startswith("folded")
    shuffle_row = _row(report, "shuffle/channel_shuffle")
    assert shuffle_row.macs == 0
    assert "channel shuffle" in shuffle_row.note


def test_group_rows_show_the_settings_that_set_their_cost():
    import tfcompress.layers as L

    model = keras.Sequential(
        [
            keras.Input((8, 8, 4)),
            L.CPConv2D(8, 3, rank=3),
            L.Tucker2Conv2D(8, 3, ranks=(2, 3)),
            L.InvertedResidual(8, expansion=2),
            keras.layers.Flatten(),
            L.LowRankDense(10, rank=2),
        ]
    )
    notes = {row.layer_type: row.note for row in profile(model).rows}
    assert notes["CPConv2D"] == "rank 3"
    assert notes["Tucker2Conv2D"] == "ranks (2, 3)"
    assert notes["InvertedResidual"] == "expansion 2"
    assert notes["LowRankDense"] == "rank 2"
