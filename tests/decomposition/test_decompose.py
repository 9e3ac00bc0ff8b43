"""`decompose` on a trained digits CNN: the report's numbers, the new
model's life cycle (save, load, fit, int8 export), targets and errors."""

import json

import keras
import numpy as np
import pytest

from tfcompress.analysis import profile
from tfcompress.decomposition import decompose
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite
from tfcompress.layers import CPConv2D
from tfcompress.layers import LowRankDense
from tfcompress.layers import Tucker2Conv2D

from .conftest import build_cnn
from .conftest import compile_for_digits

METHODS = {"conv2": "cp", "conv3": "tucker2", "dense": "svd"}
RANKS = {"conv2": 12, "conv3": (8, 12), "dense": 16}


@pytest.fixture(scope="module")
def decomposed(trained_cnn, digits):
    """The trained CNN with one layer per method, errors measured on data."""
    return decompose(trained_cnn, method=METHODS, rank=RANKS, data=digits[0], verbose=False)


def test_layers_are_replaced_and_the_rest_copied(trained_cnn, decomposed):
    new_model, _ = decomposed
    assert isinstance(new_model, keras.Sequential) and new_model.name == "cnn"
    types = {layer.name: type(layer) for layer in new_model.layers}
    assert types["conv2"] is CPConv2D and types["conv3"] is Tucker2Conv2D
    assert types["dense"] is LowRankDense
    assert new_model.get_layer("conv2").rank == 12
    assert new_model.get_layer("conv3").ranks == (8, 12)
    for name in ("conv1", "logits"):
        for new, old in zip(new_model.get_layer(name).weights, trained_cnn.get_layer(name).weights):
            assert new is not old
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(new), keras.ops.convert_to_numpy(old))


def test_report_macs_match_profile_and_the_formulas(trained_cnn, decomposed):
    new_model, report = decomposed
    before, after = profile(trained_cnn), profile(new_model)
    assert (report.macs_before, report.macs_after) == (before.macs, after.macs)
    assert (report.params_before, report.params_after) == (before.params, after.params)
    assert report.macs_ratio == pytest.approx(after.macs / before.macs)
    rows = {row.name: row for row in report.layers}
    # conv2: 8x8x16 -> 4x4x32 (stride 2), CP rank 12: 1x1 at 8x8, 3x1 depthwise
    # on 4x8 positions, 1x3 depthwise on 4x4, 1x1 to 32 channels.
    assert rows["conv2"].macs_before == 4 * 4 * 9 * 16 * 32
    assert rows["conv2"].macs_after == 12 * (8 * 8 * 16 + 4 * 8 * 3 + 4 * 4 * 3 + 4 * 4 * 32)
    # conv3: 4x4x32 -> 2x2x32 ("valid"), Tucker-2 ranks (8, 12).
    assert rows["conv3"].macs_before == 2 * 2 * 9 * 32 * 32
    assert rows["conv3"].macs_after == 4 * 4 * 32 * 8 + 2 * 2 * 9 * 8 * 12 + 2 * 2 * 12 * 32
    # dense: 128 -> 64, SVD rank 16.
    assert rows["dense"].macs_before == 128 * 64
    assert rows["dense"].macs_after == (128 + 64) * 16
    untouched = before.macs - sum(row.macs_before for row in report.layers)
    assert report.macs_after == untouched + sum(row.macs_after for row in report.layers)
    assert rows["dense"].params_after == (128 + 64) * 16 + 64
    assert report.macs_ratio < 0.4


def test_output_errors_are_measured_on_the_data(trained_cnn, decomposed, digits):
    new_model, report = decomposed
    x = digits[0][:256]
    for row in report.layers:
        old_layer, new_layer = trained_cnn.get_layer(row.name), new_model.get_layer(row.name)
        inputs = keras.Model(trained_cnn.inputs[0], old_layer.input)(x)
        old = keras.ops.convert_to_numpy(old_layer(inputs))
        new = keras.ops.convert_to_numpy(new_layer(inputs))
        expected = np.linalg.norm(new - old) / np.linalg.norm(old)
        assert row.output_error == pytest.approx(expected, rel=1e-3), row.name
        assert 0 < row.output_error < 0.5 and 0 < row.kernel_error < 1
    assert report.probe == "data"


def test_report_renders_and_serializes(decomposed):
    _, report = decomposed
    text = str(report)
    for expected in ("conv2", "cp", "(8, 12)", "Tucker2Conv2D", "MACs:", "ratio"):
        assert expected in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["layers"][1]["rank"] == [8, 12]
    assert data["macs_ratio"] == pytest.approx(report.macs_ratio)


def test_profile_shows_the_ranks(decomposed):
    new_model, _ = decomposed
    rows = {row.name: row for row in profile(new_model).rows}
    assert rows["conv2"].layer_type == "CPConv2D"
    assert rows["conv2/input_projection"].output_shape[-1] == 12
    assert rows["conv3/input_projection"].output_shape[-1] == 8
    assert rows["conv3/core"].output_shape[-1] == 12
    assert rows["dense/u"].output_shape[-1] == 16


def test_save_load_fine_tune_and_int8_export(decomposed, digits, tmp_path):
    new_model, _ = decomposed
    x_train, y_train, x_test, y_test = digits
    path = tmp_path / "decomposed.keras"
    new_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x_test, verbose=0), new_model.predict(x_test, verbose=0))
    assert loaded.get_layer("conv3").get_config() == new_model.get_layer("conv3").get_config()

    # Fine-tune the loaded copy, so the shared fixture stays as decomposed.
    # MACs down to a third cost accuracy (0.95 -> 0.83 here); two epochs
    # win it back.
    before = np.mean(loaded.predict(x_test, verbose=0).argmax(1) == y_test)
    compile_for_digits(loaded, learning_rate=1e-3)
    history = loaded.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = np.mean(loaded.predict(x_test, verbose=0).argmax(1) == y_test)
    assert before > 0.7 and after > max(before, 0.9), (before, after)

    tflite_path = tmp_path / "decomposed_int8.tflite"
    to_tflite(loaded, tflite_path, quantization="int8", data=x_train[:100])
    litert = LiteRTModel(tflite_path).predict(x_test)
    agreement = np.mean(litert.argmax(1) == loaded.predict(x_test, verbose=0).argmax(1))
    assert agreement >= 0.95, agreement


def test_keras_int8_quantization_of_the_low_rank_dense(trained_cnn, digits):
    new_model, _ = decompose(trained_cnn, method="svd", rank=16, filters=["dense"], verbose=False)
    x_test = digits[2]
    float_top1 = new_model.predict(x_test, verbose=0).argmax(1)
    new_model.quantize("int8", filters=lambda layer: isinstance(layer, keras.layers.Dense))
    assert new_model.get_layer("dense").u.quantization_mode == "int8"
    agreement = np.mean(new_model.predict(x_test, verbose=0).argmax(1) == float_top1)
    assert agreement >= 0.95, agreement


@pytest.mark.parametrize("method", ["cp", "tucker2"])
def test_target_macs_ratio(trained_cnn, method):
    new_model, report = decompose(trained_cnn, method=method, target_macs_ratio=0.5, verbose=False)
    ratio = profile(new_model).macs / profile(trained_cnn).macs
    assert report.macs_ratio == pytest.approx(ratio)
    # At most the target, and not far below it: the largest ranks that fit.
    assert 0.4 < ratio <= 0.5, ratio
    assert {row.name for row in report.layers} <= {"conv1", "conv2", "conv3"}
    assert "conv2" in {row.name for row in report.layers}


def test_unreachable_target_is_an_error(trained_cnn):
    # The Dense layers are under 10% of the MACs: SVD cannot halve them.
    with pytest.raises(ValueError, match=r"`target_macs_ratio` 0.5 is not reachable: .* keeps 0\.9"):
        decompose(trained_cnn, method="svd", target_macs_ratio=0.5, verbose=False)


def test_input_model_is_never_modified(trained_cnn, digits):
    x = digits[2][:32]
    weights = [w.copy() for w in trained_cnn.get_weights()]
    outputs = trained_cnn.predict(x, verbose=0)
    layers = [(layer.name, type(layer)) for layer in trained_cnn.layers]
    new_model, _ = decompose(trained_cnn, method="tucker2", rank=4, data=x, verbose=False)
    # No variable is shared: overwriting the new model's leaves the old.
    for variable in new_model.weights:
        variable.assign(np.zeros(variable.shape))
    assert [(layer.name, type(layer)) for layer in trained_cnn.layers] == layers
    for before, after in zip(weights, trained_cnn.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(trained_cnn.predict(x, verbose=0), outputs)


def test_layers_that_would_not_save_macs_are_skipped_and_reported(trained_cnn):
    # logits is 64 -> 10: rank 9 costs (64 + 10) * 9 = 666 > 640 MACs.
    new_model, report = decompose(trained_cnn, method="svd", rank=9, verbose=False)
    assert [row.name for row in report.layers] == ["dense"]
    (skipped,) = report.skipped
    assert skipped.name == "logits"
    assert "666 MACs, not fewer than the original's 640" in skipped.reason
    assert type(new_model.get_layer("logits")) is keras.layers.Dense
    assert "Skipped logits" in str(report)


def test_rank_above_a_layers_full_rank_skips_it_unless_named(trained_cnn):
    # logits has full rank 10; dense (128 -> 64) has 64.
    _, report = decompose(trained_cnn, method="svd", rank=12, verbose=False)
    assert [row.name for row in report.layers] == ["dense"]
    assert report.skipped[0].reason == "rank 12 exceeds the full rank 10"
    # Chosen by a filter, the layer is skipped too.
    _, report = decompose(trained_cnn, method="svd", rank=12, filters="logits", verbose=False)
    assert report.layers == []
    assert [(row.name, row.reason) for row in report.skipped] == [("logits", "rank 12 exceeds the full rank 10")]
    # Named in a `rank` dict, it raises.
    with pytest.raises(
        ValueError,
        match=r"`rank\['logits'\]` of layer 'logits' must be at most its full rank 10 for 'svd'. "
        r"Received: rank\['logits'\]=12",
    ):
        decompose(trained_cnn, method="svd", rank={"logits": 12}, verbose=False)


def test_grouped_and_dilated_convs(digits):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 8)),
            keras.layers.Conv2D(16, 3, groups=4, name="grouped"),
            keras.layers.Conv2D(16, 3, dilation_rate=2, name="dilated"),
        ]
    )
    _, report = decompose(model, method="cp", rank=2, verbose=False)
    assert report.layers == []
    assert [(row.name, row.reason.split(" (")[0]) for row in report.skipped] == [
        ("grouped", "grouped convolution"),
        ("dilated", "dilated convolution"),
    ]
    # Named in a dict, a layer the method cannot handle raises.
    with pytest.raises(ValueError, match=r"Layer 'grouped' cannot be decomposed with 'cp': grouped convolution \(groups=4\)"):
        decompose(model, method={"grouped": "cp"}, rank=2, verbose=False)
    with pytest.raises(ValueError, match=r"Layer 'dilated' cannot be decomposed with 'tucker2': dilated convolution"):
        decompose(model, method="tucker2", rank={"dilated": 2}, verbose=False)
    # A string filter that selects no layer the method can handle raises.
    with pytest.raises(
        ValueError,
        match=r"`filters` matched no layer that method 'cp' can handle: 'grouped'. Such layers: none",
    ):
        decompose(model, method="cp", rank=2, filters=["grouped"], verbose=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 0}, r"`rank` must be an integer >= 1. Received: rank=0"),
        ({"rank": -3}, r"`rank` must be an integer >= 1. Received: rank=-3"),
        ({"rank": 1.5}, r"`rank` must be a fraction of energy to keep, a float in \(0, 1\]. Received: rank=1.5"),
        ({"rank": {"dense": 65}}, r"`rank\['dense'\]` of layer 'dense' must be at most its full rank 64"),
        ({"rank": {"dense": 0}}, r"`rank\['dense'\]` must be an integer >= 1. Received: rank\['dense'\]=0"),
        ({"rank": 4, "method": {"nope": "svd"}}, r"Model 'cnn' has no layer named 'nope' .* can decompose: \['dense', 'logits'\]"),
        (
            {"rank": 4, "filters": ["dense", "nope"]},
            r"`filters` matched no layer that method 'svd' can handle: 'nope'. Such layers: 'dense', 'logits'",
        ),
        ({"rank": {"nope": 4}}, r"Model 'cnn' has no layer named 'nope'"),
        ({"rank": 4, "method": {"conv1": "svd"}}, r"Method 'svd' decomposes Dense layers; layer 'conv1' is a Conv2D"),
        ({"rank": 4, "filters": "conv1"}, r"`filters` matched no layer that method 'svd' can handle: 'conv1'"),
        ({"rank": 4, "filters": 3}, r"`filters` must be None, a regular expression"),
        ({"rank": 4, "filters": "[a-"}, r"`filters` holds an invalid regular expression '\[a-'"),
        (
            {"rank": {"dense": 4}, "method": {"dense": "svd", "logits": "svd"}},
            r"A dict `rank` must give a rank for each chosen layer",
        ),
        ({"rank": {"dense": 4}, "filters": ["dense"]}, r"A dict `rank` names its layers; do not pass `filters` too"),
        ({"rank": 4, "method": "pca"}, r"`method` must be one of 'auto', 'channel_svd', 'cp', 'svd', 'tucker2'"),
        ({"rank": 4.0, "method": "cp"}, r"CP needs an integer rank. Received: rank=4.0"),
        ({"rank": (2, 3, 4), "method": "tucker2"}, r"or a pair \(r_in, r_out\) of them"),
        ({}, r"Pass exactly one of `rank` and `target_macs_ratio`"),
        ({"rank": 4, "target_macs_ratio": 0.5}, r"Pass exactly one of `rank` and `target_macs_ratio`"),
        ({"target_macs_ratio": 1.5}, r"`target_macs_ratio` must be a float in \(0, 1\)"),
        ({"method": {"conv2": "cp"}, "rank": 4, "filters": ["conv2"]}, r"A dict `method` already chooses the layers"),
        ({"rank": {"dense": 4}, "filters": lambda layer: True}, r"A dict `rank` names its layers"),
        ({"rank": 4, "init": "hosvd"}, r"`init` must be \"svd\" or \"random\". Received: init='hosvd'"),
        ({"rank": 4, "n_iter_max": 0}, r"`n_iter_max` must be an integer >= 1. Received: n_iter_max=0"),
    ],
)
def test_bad_arguments_raise_clear_errors(trained_cnn, kwargs, message):
    kwargs = {"method": "svd", "verbose": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        decompose(trained_cnn, **kwargs)


def test_subclassed_and_unbuilt_models_are_rejected():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.zeros((1, 8), "float32"))
    with pytest.raises(ValueError, match="needs a Sequential or functional model.*svd_factors.*Received: model of type Subclassed"):
        decompose(model, method="svd", rank=2)
    with pytest.raises(ValueError, match="decompose needs a built model"):
        decompose(keras.Sequential([keras.layers.Dense(4)]), method="svd", rank=2)
    with pytest.raises(ValueError, match="`model` must be a functional or Sequential `keras.Model`"):
        decompose(keras.layers.Dense(4), method="svd", rank=2)


def test_callable_filters_and_progress_lines(trained_cnn, capsys):
    _, report = decompose(trained_cnn, method="cp", rank=8, filters=lambda layer: layer.name != "conv1")
    assert [row.name for row in report.layers] == ["conv2", "conv3"]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["conv2", "conv3"]
    assert "cp rank 8, kernel error" in lines[0]


def test_filters_skip_the_selected_layers_the_method_cannot_handle(trained_cnn):
    # "conv1|dense": conv1 is a Conv2D, which SVD does not decompose.
    new_model, report = decompose(trained_cnn, method="svd", rank=8, filters="conv1|dense", verbose=False)
    assert [row.name for row in report.rows] == ["dense"]
    assert [(row.name, row.reason) for row in report.skipped] == [
        ("conv1", "method 'svd' decomposes Dense layers, not Conv2D"),
    ]
    assert type(new_model.get_layer("conv1")) is keras.layers.Conv2D
    assert "Skipped conv1: method 'svd' decomposes Dense layers" in str(report)
    # A layer class selects too.
    _, report = decompose(trained_cnn, method="cp", rank=4, filters=keras.layers.Conv2D, verbose=False)
    assert [row.name for row in report.rows] == ["conv1", "conv2", "conv3"]
    assert report.skipped == []


def test_the_new_model_is_compiled_like_the_input(trained_cnn):
    # trained_cnn is compiled (Adam, sparse categorical cross-entropy).
    new_model, _ = decompose(trained_cnn, method="svd", rank=8, verbose=False)
    assert new_model.compiled and new_model.optimizer is not trained_cnn.optimizer
    assert new_model.get_compile_config() == trained_cnn.get_compile_config()
    uncompiled, _ = decompose(build_cnn(), method="svd", rank=8, verbose=False)
    assert not uncompiled.compiled


def test_untrained_copy_of_the_architecture_decomposes_too():
    # The decomposition does not rely on training: any built model works.
    model = build_cnn()
    new_model, report = decompose(model, method="cp", rank=4, filters=["conv3"], verbose=False)
    assert isinstance(new_model.get_layer("conv3"), CPConv2D)
    assert report.probe == "random normal"


def test_decomposed_model_prunes_like_any_other(decomposed, digits, tmp_path):
    """MagnitudePruning reaches the factors' kernels; prune_channels the
    layers around and inside the factorized ones it knows."""
    from tfcompress.callbacks import MagnitudePruning
    from tfcompress.pruning import ConstantSparsity
    from tfcompress.pruning import prune_channels
    from tfcompress.pruning import sparsity_report
    from tfcompress.pruning.masks import pruned_count

    new_model, _ = decomposed
    x_train, y_train, x_test, _ = digits
    path = tmp_path / "copy.keras"
    new_model.save(path)
    model = keras.saving.load_model(path, safe_mode=True)
    compile_for_digits(model, learning_rate=1e-3)
    callback = MagnitudePruning(ConstantSparsity(0.5, 0), filters=["conv2", "dense"])
    model.fit(x_train[:256], y_train[:256], epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    assert set(callback.pruned) == {
        "conv2/input_projection", "conv2/vertical", "conv2/horizontal",
        "conv2/output_projection", "dense/u", "dense/v",
    }
    for kernel in sparsity_report(model).kernels:
        if kernel.path in callback.pruned:
            assert kernel.zeros == pruned_count(kernel.size, 0.5), kernel

    pruned, report = prune_channels(model, sparsity=0.5)
    assert report.macs_after < report.macs_before
    assert pruned.predict(x_test[:8], verbose=0).shape == (8, 10)
