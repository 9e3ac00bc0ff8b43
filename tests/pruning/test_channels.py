import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.analysis import profile
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.layers import CPConv2D
from tfcompress.layers import DepthwiseSeparableConv2D
from tfcompress.layers import InvertedResidual
from tfcompress.layers import LowRankDense
from tfcompress.layers import ShuffleConv2D
from tfcompress.models import small_mobilenet_v2
from tfcompress.pruning.channels import prunable_channel_groups
from tfcompress.pruning.channels import prune_channels

INPUT_SHAPE = (8, 8, 1)


# Models. Each builder returns the model and `edits(report)`: the weights of
# the original model to zero so that it computes what the pruned model
# computes. Removing a channel is the same as zeroing every weight that
# reads it in the next layer: (layer name, attribute path, axis, indices).


def removed(report, name):
    row = report.row(name)
    return sorted(set(range(row.channels_before)) - set(row.kept_indices))


def conv_chain():
    model = keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(16, 3, padding="same", name="c1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(8, 3, name="c2"),
            keras.layers.BatchNormalization(name="bn2"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, name="out"),
        ],
        name="conv_chain",
    )

    def edits(report):
        return [
            ("c2", "kernel", -2, removed(report, "c1")),
            ("out", "kernel", 0, removed(report, "c2")),
        ]

    return model, edits


def residual_add(use_ops=False):
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c0")(inputs)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="c1")(x)
    y = keras.layers.BatchNormalization(name="bn1")(y)
    if use_ops:
        # `keras.ops` calls in a functional graph, not layers.
        added = keras.ops.relu(x + y)
    else:
        added = keras.layers.Add(name="add")([x, y])
    z = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(added)
    z = keras.layers.GlobalAveragePooling2D()(z)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(z))

    def edits(report):
        group = removed(report, "c0")
        assert group == removed(report, "c1")
        return [
            ("c1", "kernel", -2, group),
            ("c2", "kernel", -2, group),
            ("out", "kernel", 0, removed(report, "c2")),
        ]

    return model, edits


def concatenate():
    inputs = keras.Input(INPUT_SHAPE)
    a = keras.layers.Conv2D(6, 3, padding="same", name="ca")(inputs)
    a = keras.layers.ReLU()(a)
    b = keras.layers.Conv2D(4, 1, name="cb")(inputs)
    b = keras.layers.BatchNormalization(name="bnb")(b)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Conv2D(8, 3, activation="relu", name="cc")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))

    def edits(report):
        rows = removed(report, "ca") + [6 + i for i in removed(report, "cb")]
        return [
            ("cc", "kernel", -2, rows),
            ("out", "kernel", 0, removed(report, "cc")),
        ]

    return model, edits


def flatten_dense():
    model = keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(4, 3, padding="same", name="c"),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu", name="d"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, name="out"),
        ]
    )

    def edits(report):
        # The 4x4 positions of the flattened 4x4x4 tensor, channels last.
        rows = [s * 4 + c for s in range(16) for c in removed(report, "c")]
        return [
            ("d", "kernel", 0, rows),
            ("out", "kernel", 0, removed(report, "d")),
        ]

    return model, edits


def depthwise(depth_multiplier):
    def build():
        model = keras.Sequential(
            [
                keras.Input(INPUT_SHAPE),
                keras.layers.Conv2D(8, 1, name="c1"),
                keras.layers.BatchNormalization(name="bn1"),
                keras.layers.ReLU(),
                keras.layers.DepthwiseConv2D(
                    3,
                    padding="same",
                    depth_multiplier=depth_multiplier,
                    name="dw",
                ),
                keras.layers.BatchNormalization(name="bn_dw"),
                keras.layers.ReLU(),
                keras.layers.Conv2D(8, 1, name="c2"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10, name="out"),
            ]
        )

        def edits(report):
            m = depth_multiplier
            rows = [c * m + k for c in removed(report, "c1") for k in range(m)]
            return [
                ("c2", "kernel", -2, rows),
                ("out", "kernel", 0, removed(report, "c2")),
            ]

        return model, edits

    return build


def composite_layers():
    model = keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(8, 3, padding="same", name="c0"),
            CPConv2D(8, 3, rank=4, padding="same", name="cp"),
            DepthwiseSeparableConv2D(8, name="ds"),
            keras.layers.GlobalAveragePooling2D(),
            LowRankDense(16, rank=4, activation="relu", name="lr"),
            keras.layers.Dense(10, name="out"),
        ]
    )

    def edits(report):
        return [
            ("cp", "input_projection.kernel", -2, removed(report, "c0")),
            # Through the depthwise half, to the pointwise rows.
            ("ds", "pointwise.kernel", -2, removed(report, "cp")),
            ("lr", "u.kernel", 0, removed(report, "ds")),
            ("out", "kernel", 0, removed(report, "lr")),
        ]

    return model, edits


def mobilenet():
    model = small_mobilenet_v2(INPUT_SHAPE, 10)

    def edits(report):
        group1 = removed(report, "separable")
        group2 = removed(report, "block2/project")
        assert group1 == removed(report, "block1/project")
        assert group2 == removed(report, "block3/project")
        return [
            ("separable", "pointwise.kernel", -2, removed(report, "stem")),
            ("block1", "expand.kernel", -2, group1),
            ("block2", "expand.kernel", -2, group1),
            ("block1", "project.kernel", -2, removed(report, "block1/expand")),
            ("block2", "project.kernel", -2, removed(report, "block2/expand")),
            ("block3", "expand.kernel", -2, group2),
            ("logits", "kernel", 0, group2),
            ("block3", "project.kernel", -2, removed(report, "block3/expand")),
        ]

    return model, edits


def randomize_batch_norms(model, seed=1):
    """Non-trivial batch norms, so that each channel is scaled its own way."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        shape = tuple(variable.shape)
        if name in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif name in ("beta", "moving_mean"):
            variable.assign(0.2 * rng.standard_normal(shape).astype("float32"))


def zeroed_copy(model, edits):
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    for layer_name, attribute, axis, indices in edits:
        variable = reference.get_layer(layer_name)
        for part in attribute.split("."):
            variable = getattr(variable, part)
        value = keras.ops.convert_to_numpy(variable).copy()
        index = [slice(None)] * value.ndim
        index[axis] = indices
        value[tuple(index)] = 0.0
        variable.assign(value)
    return reference


def snapshot(model):
    return model.to_json(), [w.copy() for w in model.get_weights()]


def assert_unchanged(model, before):
    config, weights = before
    assert model.to_json() == config
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.fixture
def images():
    return np.random.default_rng(2).random((32, *INPUT_SHAPE), "float32")


# Tests.


@pytest.mark.parametrize(
    "build",
    [conv_chain, residual_add, concatenate, composite_layers, mobilenet],
)
def test_sparsity_zero_gives_the_same_model(build, images):
    model, _ = build()
    randomize_batch_norms(model)
    pruned, report = prune_channels(model, sparsity=0.0)
    assert pruned is not model
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(pruned(images, training=False)),
        keras.ops.convert_to_numpy(model(images, training=False)),
    )
    assert report.params_after == report.params_before
    assert report.macs_after == report.macs_before
    assert {row.status for row in report.rows} <= {"unchanged", "left alone"}


@pytest.mark.parametrize(
    "build, sparsity",
    [
        (conv_chain, 0.5),
        (residual_add, 0.5),
        (lambda: residual_add(use_ops=True), 0.5),
        (concatenate, 0.5),
        (flatten_dense, 0.5),
        (depthwise(1), 0.5),
        (depthwise(2), 0.5),
        (composite_layers, 0.5),
        (mobilenet, 0.5),
        (mobilenet, {"block1/expand": 0.3, "stem": 0.4, "block3": 0.25}),
    ],
    ids=[
        "conv_chain",
        "residual_add",
        "residual_ops",
        "concatenate",
        "flatten_dense",
        "depthwise",
        "depthwise_multiplier_2",
        "composite_layers",
        "mobilenet",
        "mobilenet_dict",
    ],
)
def test_pruned_model_equals_original_without_removed_channels(
    build, sparsity, images
):
    model, edits = build()
    randomize_batch_norms(model)
    before = snapshot(model)
    pruned, report = prune_channels(model, sparsity=sparsity)
    assert_unchanged(model, before)
    assert any(row.status == "pruned" for row in report.rows)
    reference = zeroed_copy(model, edits(report))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pruned(images, training=False)),
        keras.ops.convert_to_numpy(reference(images, training=False)),
        atol=1e-5,
    )
    assert pruned.count_params() == report.params_after
    assert profile(pruned).macs == report.macs_after < report.macs_before


def test_kept_filters_are_the_largest_l1_norms_and_weights_are_slices():
    model, _ = conv_chain()
    randomize_batch_norms(model)
    pruned, report = prune_channels(model, sparsity=0.5)

    c1, c2 = model.get_layer("c1"), model.get_layer("c2")
    kernel1 = keras.ops.convert_to_numpy(c1.kernel)
    kernel2 = keras.ops.convert_to_numpy(c2.kernel)
    l1_norms = np.abs(kernel1).sum(axis=(0, 1, 2))
    keep1 = np.sort(np.argsort(-l1_norms)[:8])
    keep2 = np.sort(np.argsort(-np.abs(kernel2).sum(axis=(0, 1, 2)))[:4])
    assert report.row("c1").kept_indices == tuple(keep1)
    assert report.row("c2").kept_indices == tuple(keep2)
    # Every removed filter has a smaller L1 norm than every kept one.
    assert l1_norms[keep1].min() > np.delete(l1_norms, keep1).max()

    new_c1, new_c2 = pruned.get_layer("c1"), pruned.get_layer("c2")
    assert new_c1.filters == 8 and new_c2.filters == 4
    assert tuple(new_c2.kernel.shape) == (3, 3, 8, 4)
    assert tuple(pruned.get_layer("out").kernel.shape) == (4, 10)
    np.testing.assert_array_equal(new_c1.kernel.numpy(), kernel1[..., keep1])
    np.testing.assert_array_equal(
        new_c1.bias.numpy(), c1.bias.numpy()[keep1]
    )
    for old, new in zip(
        model.get_layer("bn1").weights, pruned.get_layer("bn1").weights
    ):
        np.testing.assert_array_equal(new.numpy(), old.numpy()[keep1])
    np.testing.assert_array_equal(
        new_c2.kernel.numpy(), kernel2[:, :, keep1, :][..., keep2]
    )
    np.testing.assert_array_equal(
        pruned.get_layer("out").kernel.numpy(),
        model.get_layer("out").kernel.numpy()[keep2],
    )
    row = report.row("out")
    assert row.status == "left alone" and "model output" in row.reason
    assert (row.channels_before, row.channels_after) == (10, 10)


def test_l2_ranks_by_euclidean_norm():
    model, _ = conv_chain()
    _, report = prune_channels(
        model,
        sparsity=0.75,
        importance="l2",
        filters=lambda layer: layer.name == "c1",
    )
    kernel = model.get_layer("c1").kernel.numpy()
    norms = np.sqrt(np.square(kernel).sum(axis=(0, 1, 2)))
    assert report.row("c1").kept_indices == tuple(
        np.sort(np.argsort(-norms)[:4])
    )
    assert report.row("c1").importance == "l2"
    assert report.row("c2").status == "not selected"


def test_bn_gamma_keeps_the_largest_absolute_gammas():
    model, _ = conv_chain()
    gamma = np.array(
        [0.1, -2.0, 0.3, 1.5, -0.05, 0.9, 0.0, -1.2]
        + [0.2, 0.4, -0.6, 0.7, 0.01, -0.02, 3.0, 0.5],
        dtype="float32",
    )
    model.get_layer("bn1").gamma.assign(gamma)
    pruned, report = prune_channels(
        model, sparsity={"c1": 0.5}, importance="bn_gamma"
    )
    # |gamma| ranks 14, 1, 3, 7, 5, 11, 10, 15 first.
    assert report.row("c1").kept_indices == (1, 3, 5, 7, 10, 11, 14, 15)
    np.testing.assert_array_equal(
        pruned.get_layer("bn1").gamma.numpy(),
        gamma[[1, 3, 5, 7, 10, 11, 14, 15]],
    )


def test_bn_gamma_without_batch_norm_names_the_layer():
    model, _ = flatten_dense()
    with pytest.raises(ValueError, match="no BatchNormalization.*'c'"):
        prune_channels(model, sparsity=0.5, importance="bn_gamma")


def test_taylor_scores_match_a_direct_computation(digits):
    x_train, y_train, _, _ = digits
    model, _ = conv_chain()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss)
    x, y = x_train[:64], y_train[:64]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    before = snapshot(model)
    _, report = prune_channels(
        model, sparsity=0.5, importance="taylor", data=dataset, filters=["c1"]
    )
    assert_unchanged(model, before)

    c1 = model.get_layer("c1")
    scores = np.zeros(16)
    for start in (0, 32):
        with tf.GradientTape() as tape:
            value = loss(
                y[start : start + 32], model(x[start : start + 32])
            )
        grad_kernel, grad_bias = tape.gradient(value, [c1.kernel, c1.bias])
        change = (c1.kernel.numpy() * grad_kernel.numpy()).sum(axis=(0, 1, 2))
        change += c1.bias.numpy() * grad_bias.numpy()
        scores += change**2
    assert report.row("c1").kept_indices == tuple(
        np.sort(np.argsort(-scores)[:8])
    )
    assert report.row("c1").importance == "taylor"


def test_taylor_needs_data_and_a_compiled_loss(digits):
    x_train, y_train, _, _ = digits
    model, _ = conv_chain()
    with pytest.raises(ValueError, match="needs examples: pass data="):
        prune_channels(model, sparsity=0.5, importance="taylor")
    with pytest.raises(ValueError, match="compile the model first"):
        prune_channels(
            model, sparsity=0.5, importance="taylor", data=(x_train, y_train)
        )
    model.compile("adam", "sparse_categorical_crossentropy")
    pruned, _ = prune_channels(
        model, sparsity=0.5, importance="taylor", data=(x_train[:100], y_train[:100])
    )
    assert pruned.get_layer("c1").filters == 8


def test_min_channels_and_round_to():
    model, _ = conv_chain()
    _, report = prune_channels(model, sparsity=0.9, min_channels=6)
    assert report.row("c1").channels_after == 6  # not 16 - 14 = 2
    assert report.row("c2").channels_after == 6
    _, report = prune_channels(model, sparsity=0.6, round_to=4)
    # 16 - 9 = 7 -> 8; 8 - 4 = 4 -> 4.
    assert report.row("c1").channels_after == 8
    assert report.row("c2").channels_after == 4
    _, report = prune_channels(model, sparsity=0.3, round_to=16)
    assert report.row("c2").channels_after == 8  # never above 8
    assert report.row("c2").status == "unchanged"


def test_mobilenet_macs_training_saving_and_int8_export(digits, tmp_path):
    x_train, y_train, x_test, y_test = digits
    model = small_mobilenet_v2(INPUT_SHAPE, 10)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # MACs and parameters depend only on the channel counts: exact.
    _, quarter = prune_channels(model, sparsity=0.25)
    assert (quarter.macs_before, quarter.macs_after) == (460608, 274800)
    pruned, half = prune_channels(model, sparsity=0.5)
    assert half.macs_after == 136096  # 29.5% of the MACs
    assert (half.params_before, half.params_after) == (19050, 6138)
    block1 = pruned.get_layer("block1")
    assert (block1.filters, block1.expansion, block1.uses_residual) == (
        8,
        4.0,
        True,
    )
    assert block1.expand.filters == 32

    # The pruned model is compiled like the input model and trains.
    assert pruned.compiled
    history = pruned.fit(
        x_train, y_train, epochs=2, batch_size=32, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.7

    path = tmp_path / "pruned.keras"
    pruned.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    expected = keras.ops.convert_to_numpy(pruned(x_test, training=False))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x_test, training=False)),
        expected,
        atol=1e-6,
    )

    export = to_tflite(
        pruned,
        tmp_path / "pruned_int8.tflite",
        quantization="int8",
        data=x_train[:200],
    )
    litert = LiteRTModel(export.path).predict(x_test)
    agreement = np.mean(np.argmax(litert, -1) == np.argmax(expected, -1))
    assert agreement >= 0.95


def test_expansion_is_rebuilt_from_kept_channels(images):
    model = small_mobilenet_v2(INPUT_SHAPE, 10)
    pruned, report = prune_channels(
        model, sparsity={"block1/expand": 0.3, "block2/project": 0.5}
    )
    # 64 - floor(0.3 * 64) = 45 hidden channels for 16 inputs.
    block1 = pruned.get_layer("block1")
    assert block1.expansion == 45 / 16
    assert block1.expand.filters == 45
    assert block1.filters == 16
    # block3's 128 hidden channels stay: its input halves, its expansion
    # doubles.
    block3 = pruned.get_layer("block3")
    assert (block3.expand.filters, block3.expansion) == (128, 8.0)
    assert report.row("block1/project").status == "not selected"
    assert report.row("block3/project").status == "pruned"
    assert report.row("block3/project").tied_to == ("block2/project",)


def test_as_many_hidden_as_input_channels_keeps_the_expansion(images):
    model, edits = mobilenet()
    randomize_batch_norms(model)
    pruned, report = prune_channels(model, sparsity={"block1/expand": 0.75})
    block1 = pruned.get_layer("block1")
    # 16 hidden channels for 16 inputs: an expansion of exactly 1 would drop
    # the expansion convolution.
    assert block1.expand is not None and block1.expand.filters == 16
    assert block1.expansion == pytest.approx(1.0) and block1.expansion > 1
    reference = zeroed_copy(model, edits(report))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pruned(images, training=False)),
        keras.ops.convert_to_numpy(reference(images, training=False)),
        atol=1e-5,
    )


def test_inverted_residual_never_gains_a_residual_add():
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = InvertedResidual(24, expansion=2, name="block")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    # 12 outputs for 12 inputs would make the rebuilt block add its input.
    pruned, report = prune_channels(
        model, sparsity={"stem": 0.25, "block/project": 0.5}
    )
    row = report.row("block/project")
    assert row.status == "left alone"
    assert "turn on the residual add of 'block'" in row.reason
    block = pruned.get_layer("block")
    assert (block.filters, block.uses_residual) == (24, False)
    assert report.row("stem").channels_after == 12


def test_channel_groups_of_mobilenet():
    model = small_mobilenet_v2(INPUT_SHAPE, 10)
    assert prunable_channel_groups(model) == [
        ("stem",),
        ("separable", "block1/project"),
        ("block1/expand",),
        ("block2/expand",),
        ("block2/project", "block3/project"),
        ("block3/expand",),
    ]
    assert prunable_channel_groups(model, filters="expand") == [
        ("block1/expand",),
        ("block2/expand",),
        ("block3/expand",),
    ]


def test_residual_add_with_the_model_input_is_left_alone(images):
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c0")(inputs)
    x = keras.layers.Add(name="skip")([inputs, x])
    x = keras.layers.Conv2D(6, 3, name="c1")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    pruned, report = prune_channels(model, sparsity=0.5)
    row = report.row("c0")
    assert row.status == "left alone"
    assert "tied by skip" in row.reason and "model input" in row.reason
    assert report.row("c1").channels_after == 3
    assert pruned.get_layer("c0").filters == 4


def reshape_barrier():
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inputs)
    # A reshape that moves channels off the last axis.
    x = keras.layers.Reshape((8, 64), name="reshape")(x)
    x = keras.layers.Conv1D(6, 3, name="c2")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="out")(x))


def shuffle_barrier():
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Conv2D(8, 1, name="c1"),
            ShuffleConv2D(8, groups=2, name="shuffle"),
            keras.layers.Conv2D(6, 1, name="c2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, name="out"),
        ]
    )


@pytest.mark.parametrize(
    "build, barrier, reason",
    [
        (reshape_barrier, None, "feeds Reshape 'reshape'"),
        (shuffle_barrier, "shuffle", "feeds ShuffleConv2D 'shuffle'"),
    ],
)
def test_barriers_are_left_alone_and_reported(build, barrier, reason, images):
    model = build()
    pruned, report = prune_channels(model, sparsity=0.5)
    row = report.row("c1")
    assert row.status == "left alone"
    assert row.channels_after == 8
    assert reason in row.reason
    if barrier is not None:
        assert report.row(barrier).status == "left alone"
        assert "left alone" in str(report)
    # c2 is still pruned, and only its channels are gone.
    assert report.row("c2").channels_after == 3
    reference = zeroed_copy(
        model, [("out", "kernel", 0, removed(report, "c2"))]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pruned(images)),
        keras.ops.convert_to_numpy(reference(images)),
        atol=1e-5,
    )


def test_compiled_model_gives_a_compiled_model_when_it_can():
    model, _ = conv_chain()
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    pruned, _ = prune_channels(model, sparsity=0.5)
    assert pruned.compiled and pruned.optimizer is not model.optimizer
    assert pruned.optimizer.learning_rate.numpy() == pytest.approx(0.05)

    def unregistered_loss(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred))

    model.compile("adam", unregistered_loss)
    with pytest.warns(UserWarning, match="Compile it before training"):
        pruned, _ = prune_channels(model, sparsity=0.5)
    assert not pruned.compiled


def test_sequential_built_without_input():
    model = keras.Sequential(
        [
            keras.layers.Conv2D(8, 3, name="c"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="out"),
        ]
    )
    with pytest.raises(ValueError, match="needs a built model"):
        prune_channels(model, sparsity=0.5)
    model.build((None, *INPUT_SHAPE))
    pruned, _ = prune_channels(model, sparsity=0.5)
    assert pruned.get_layer("c").filters == 4
    assert tuple(pruned.output_shape) == (None, 3)


def test_subclassed_model_is_rejected():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(
        ValueError, match="needs a Sequential or functional model"
    ):
        prune_channels(model, sparsity=0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": 1.0}, r"`sparsity` must be a float in \[0, 1\)"),
        ({"sparsity": -0.1}, r"Received: sparsity=-0.1"),
        ({"sparsity": "0.5"}, r"`sparsity` must be a float"),
        ({"sparsity": True}, r"`sparsity` must be a float"),
        ({"sparsity": {"c1": 1.5}}, r"`sparsity\['c1'\]` must be a float"),
        ({"sparsity": {"nope": 0.5}}, r"without prunable channels: 'nope'"),
        ({"sparsity": {3: 0.5}}, r"keys of a `sparsity` dict"),
        ({"importance": "l3"}, r"'l1', 'l2', 'bn_gamma', 'taylor'"),
        ({"min_channels": 0}, r"`min_channels` must be an integer >= 1"),
        ({"round_to": 2.5}, r"`round_to` must be an integer >= 1"),
        ({"data": (np.zeros(2), np.zeros(2))}, r"only used by .*taylor"),
        (
            {"filters": ["c1", "bn1"]},
            r"`filters` matched no layer that prune_channels can handle: "
            r"'bn1'. Such layers: 'c1', 'c2', 'out'",
        ),
        ({"filters": 3}, r"`filters` must be None, a regular expression"),
        ({"filters": "("}, r"invalid regular expression '\('"),
        ({"filters": []}, r"`filters` is an empty list"),
    ],
)
def test_invalid_arguments_are_explained(kwargs, message):
    model, _ = conv_chain()
    kwargs = {"sparsity": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        prune_channels(model, **kwargs)


def test_report_renders_and_serializes():
    model, _ = residual_add()
    _, report = prune_channels(model, sparsity=0.5)
    text = str(report)
    for name in ("c0", "c1", "c2", "out"):
        assert name in text
    assert "tied by add" in text
    assert f"{report.macs_before:,} -> {report.macs_after:,}" in text
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert [row["name"] for row in as_dict["rows"]] == [
        "c0",
        "c1",
        "c2",
        "out",
    ]
    assert as_dict["rows"][0]["channels_after"] == 4
    assert as_dict["rows"][0]["tied_to"] == ["c1"]
    with pytest.raises(KeyError, match="No row named 'bn0'"):
        report.row("bn0")
