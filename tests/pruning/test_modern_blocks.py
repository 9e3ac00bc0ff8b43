"""prune_channels through the blocks of modern networks: squeeze-and-
excitation, grouped and depthwise-as-grouped convolutions, LayerScale,
LayerNormalization and nested models, and on the zoo's EfficientNetB0 and
ConvNeXtTiny cuts."""

import keras
import numpy as np
import pytest

from tfcompress.analysis import profile
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.graph.keras_internals import application_layer_class
from tfcompress.models.zoo import zoo_model
from tfcompress.pruning.channels import prune_channels
from tests.pruning.test_channels import randomize_batch_norms
from tests.pruning.test_channels import removed

LayerScale = application_layer_class("convnext", "LayerScale")
SHAPE = (8, 8, 3)


def zeroed_copy(model, edits):
    """A copy with each removed channel's readers zeroed ("a/b": nested)."""
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    for path, attribute, axis, indices in edits:
        layer = reference
        for name in path.split("/"):
            layer = layer.get_layer(name)
        variable = getattr(layer, attribute)
        value = keras.ops.convert_to_numpy(variable).copy()
        index = [slice(None)] * value.ndim
        index[axis] = indices
        value[tuple(index)] = 0.0
        variable.assign(value)
    return reference


def squeeze_excitation():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(16, 1, name="expand")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("swish")(x)
    s = keras.layers.GlobalAveragePooling2D()(x)
    s = keras.layers.Reshape((1, 1, 16), name="se_reshape")(s)
    s = keras.layers.Conv2D(4, 1, activation="swish", name="se_reduce")(s)
    s = keras.layers.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    x = keras.layers.Multiply(name="excite")([x, s])
    x = keras.layers.Conv2D(8, 1, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))

    def edits(report):
        return [
            ("se_reduce", "kernel", -2, removed(report, "expand")),
            ("se_expand", "kernel", -2, removed(report, "se_reduce")),
            ("project", "kernel", -2, removed(report, "expand")),
            ("out", "kernel", 0, removed(report, "project")),
        ]

    return model, edits


def convnext_like():
    # Depthwise 7x7 as a grouped Conv2D, and LayerScale, as ConvNeXt has.
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(12, 1, name="stem")(inputs)
    x = keras.layers.Conv2D(12, 3, groups=12, padding="same", name="dw")(x)
    x = keras.layers.Dense(24, activation="gelu", name="pw1")(x)
    x = keras.layers.Dense(12, name="pw2")(x)
    x = LayerScale(0.5, 12, name="scale")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))

    def edits(report):
        return [
            ("pw1", "kernel", 0, removed(report, "stem")),
            ("pw2", "kernel", 0, removed(report, "pw1")),
            ("out", "kernel", 0, removed(report, "pw2")),
        ]

    return model, edits


def grouped():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 1, name="c1")(inputs)
    x = keras.layers.Conv2D(12, 3, groups=2, name="grouped")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))

    def edits(report):
        return [("out", "kernel", 0, removed(report, "grouped"))]

    return model, edits


def nested():
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 8)),
            keras.layers.Conv2D(6, 1, name="inner_c"),
            keras.layers.ReLU(),
        ],
        name="inner",
    )
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 1, name="c1")(inputs)
    x = inner(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))

    def edits(report):
        return [
            ("inner/inner_c", "kernel", -2, removed(report, "c1")),
            ("out", "kernel", 0, removed(report, "inner_inner_c")),
        ]

    return model, edits


@pytest.mark.parametrize(
    "build, left_alone",
    [
        (squeeze_excitation, ["out"]),
        (convnext_like, ["out"]),
        (grouped, ["c1", "out"]),  # A grouped conv's inputs are tied.
        (nested, ["out"]),
    ],
)
def test_pruned_model_equals_original_without_removed_channels(
    build, left_alone
):
    model, edits = build()
    randomize_batch_norms(model)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        if variable.path.endswith("bias"):
            variable.assign(rng.normal(size=variable.shape).astype("float32"))
    pruned, report = prune_channels(model, sparsity=0.5)
    assert [
        r.name for r in report.rows if r.status == "left alone"
    ] == left_alone
    x = rng.random((8, *SHAPE), "float32")
    reference = zeroed_copy(model, edits(report))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pruned(x, training=False)),
        keras.ops.convert_to_numpy(reference(x, training=False)),
        atol=1e-5,
    )
    assert profile(pruned).macs == report.macs_after < report.macs_before


def test_grouped_filters_keep_as_many_in_every_group():
    model, _ = grouped()
    pruned, report = prune_channels(model, sparsity=0.5)
    kept = np.array(report.row("grouped").kept_indices)
    # 12 filters in 2 groups of 6: 3 kept in each.
    assert (kept < 6).sum() == (kept >= 6).sum() == 3
    layer = pruned.get_layer("grouped")
    assert (layer.filters, layer.groups) == (6, 2)
    # Its input channels are tied by group: c1 is left alone.
    assert report.row("c1").status == "left alone"
    assert "grouped Conv2D 'grouped'" in report.row("c1").reason


def test_depthwise_as_grouped_conv_and_layer_scale_shrink_with_channels():
    model, _ = convnext_like()
    pruned, report = prune_channels(model, sparsity=0.5)
    dw = pruned.get_layer("dw")
    assert (dw.filters, dw.groups) == (6, 6)
    kept = list(report.row("stem").kept_indices)
    np.testing.assert_array_equal(
        pruned.get_layer("dw").kernel.numpy(),
        model.get_layer("dw").kernel.numpy()[..., kept],
    )
    assert pruned.get_layer("scale").projection_dim == 6


def test_layer_normalization_is_sliced_and_its_statistics_follow():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(8, 1, name="c1")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Conv2D(4, 1, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(x))
    model.get_layer("ln").gamma.assign(np.arange(1, 9, dtype="float32"))
    pruned, report = prune_channels(model, sparsity=0.5)
    kept = list(report.row("c1").kept_indices)
    assert len(kept) == 4
    np.testing.assert_array_equal(
        pruned.get_layer("ln").gamma.numpy(), np.array(kept) + 1.0
    )


@pytest.mark.parametrize("name", ["efficientnet_b0", "convnext_tiny"])
def test_zoo_models_halve_their_channels(name, tmp_path):
    model = zoo_model(name, size="tiny")
    pruned, report = prune_channels(model, sparsity=0.5)
    # Only the classifier (the model output) and EfficientNet's input
    # Normalization (on the model input) are left alone.
    left = {r.name for r in report.rows if r.status == "left alone"}
    # (The Normalization's name depends on how many the process has built.)
    normalizations = {
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Normalization)
    }
    assert left <= {"head"} | normalizations
    assert report.macs_ratio <= 0.6
    assert tuple(pruned.outputs[0].shape) == tuple(model.outputs[0].shape)
    x = np.random.default_rng(0).random((4, 32, 32, 3), "float32")
    expected = pruned.predict(x, verbose=0)
    pruned.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    if name == "efficientnet_b0":
        return  # Its export (14 s) adds no op that ConvNeXt's lacks.
    exported = to_tflite(pruned, tmp_path / "pruned.tflite", verbose=False)
    np.testing.assert_allclose(
        LiteRTModel(exported).predict(x), expected, rtol=1e-3, atol=1e-4
    )


def test_attention_loses_whole_heads_and_output_channels(tmp_path):
    inputs = keras.Input((6, 8))
    x = keras.layers.Dense(16, name="d1")(inputs)
    x = keras.layers.MultiHeadAttention(4, 5, name="mha")(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    pruned, report = prune_channels(model, sparsity=0.5)
    mha = pruned.get_layer("mha")
    assert (mha.num_heads, mha.key_dim) == (2, 5)
    assert report.row("mha/heads").channels_after == 2
    assert tuple(mha.output_dense.kernel.shape) == (2, 5, 8)
    heads = removed(report, "mha/heads")
    edits = [
        ("mha", "output_dense.kernel", 0, heads),
        ("out", "kernel", 0, removed(report, "mha")),
    ]
    edits += [
        ("mha", f"{p}_dense.kernel", 0, removed(report, "d1"))
        for p in ("query", "key", "value")
    ]
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    for name, attribute, axis, indices in edits:
        variable = reference.get_layer(name)
        for part in attribute.split("."):
            variable = getattr(variable, part)
        value = variable.numpy().copy()
        index = [slice(None)] * value.ndim
        index[axis] = indices
        value[tuple(index)] = 0.0
        variable.assign(value)
    x = np.random.default_rng(0).random((4, 6, 8), "float32")
    np.testing.assert_allclose(
        pruned.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5
    )
    pruned.save(tmp_path / "p.keras")
    np.testing.assert_array_equal(
        keras.saving.load_model(tmp_path / "p.keras").predict(x, verbose=0),
        pruned.predict(x, verbose=0),
    )


def test_zoo_vit_is_pruned_through_attention_and_layer_norm():
    model = zoo_model("vit", size="tiny")
    pruned, report = prune_channels(model, sparsity=0.5)
    assert [r.name for r in report.rows if r.status == "left alone"] == ["head"]
    assert report.macs_ratio <= 0.6
    assert tuple(pruned.outputs[0].shape) == tuple(model.outputs[0].shape)
