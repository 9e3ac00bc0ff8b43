"""`WeightedLayer`: every weighted tfcompress layer takes Keras's weight
arguments, passes them to its sublayers, saves them, and still loads configs
written before they existed."""

import inspect
import json
import zipfile

import keras
import numpy as np
import pytest

import tfcompress.layers as L
from tfcompress.layers.weighted_layer import KERAS_WEIGHT_ARGUMENTS
from tfcompress.layers.weighted_layer import WeightedLayer

# (factory, input shape, number of kernels, number of biases).
CASES = {
    "DepthwiseSeparableConv2D": (
        lambda **kw: L.DepthwiseSeparableConv2D(8, **kw), (2, 6, 6, 4), 2, 0
    ),
    "InvertedResidual": (
        lambda **kw: L.InvertedResidual(8, expansion=2, **kw), (2, 6, 6, 4), 3, 0
    ),
    "ShuffleConv2D": (
        lambda **kw: L.ShuffleConv2D(8, groups=2, **kw), (2, 6, 6, 4), 1, 1
    ),
    "CPConv2D": (
        lambda **kw: L.CPConv2D(8, 3, rank=3, padding="same", **kw), (2, 6, 6, 4), 4, 1
    ),
    "Tucker2Conv2D": (
        lambda **kw: L.Tucker2Conv2D(8, 3, ranks=(3, 4), padding="same", **kw),
        (2, 6, 6, 4),
        3,
        1,
    ),
    "LowRankDense": (lambda **kw: L.LowRankDense(8, rank=3, **kw), (2, 5), 2, 1),
    "PartialConv2D": (
        lambda **kw: L.PartialConv2D(n_div=2, **kw), (2, 6, 6, 4), 1, 1
    ),
}

# The arguments each layer had before `WeightedLayer`; configs saved then
# lack the others.
OLD_ARGUMENTS = {
    "DepthwiseSeparableConv2D": {"activation", "kernel_regularizer"},
    "InvertedResidual": {"activation", "kernel_initializer", "kernel_regularizer"},
    "PartialConv2D": {"use_bias", "kernel_initializer", "kernel_regularizer"},
}
DEFAULT_OLD_ARGUMENTS = {
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
}


def new_arguments(case):
    layer_class = type(CASES[case][0]())
    old = OLD_ARGUMENTS.get(case, DEFAULT_OLD_ARGUMENTS) | {"activity_regularizer"}
    return set(layer_class.weight_arguments) - old


def weight_values():
    """A non-default value for every weight argument, fresh objects each call."""
    return {
        "use_bias": True,
        "kernel_initializer": keras.initializers.Constant(0.5),
        "bias_initializer": keras.initializers.Constant(0.25),
        "kernel_regularizer": keras.regularizers.L2(0.01),
        "bias_regularizer": keras.regularizers.L1(0.1),
        "activity_regularizer": keras.regularizers.L2(0.001),
        "kernel_constraint": keras.constraints.NonNeg(),
        "bias_constraint": keras.constraints.MaxNorm(2.0),
    }


def layer_with_every_argument(case):
    factory = CASES[case][0]
    taken = factory().weight_arguments
    values = {k: v for k, v in weight_values().items() if k in taken}
    return factory(**values), values


def variables(layer, name):
    return [w for w in layer.weights if w.name == name]


@pytest.mark.parametrize("case", CASES)
def test_weight_arguments_reach_every_kernel_and_bias(case):
    _, input_shape, n_kernels, n_biases = CASES[case]
    layer, given = layer_with_every_argument(case)
    layer.build(input_shape)
    kernels, biases = variables(layer, "kernel"), variables(layer, "bias")
    assert (len(kernels), len(biases)) == (n_kernels, n_biases)
    for kernel in kernels:
        assert kernel.constraint is given["kernel_constraint"]
        assert kernel.regularizer is given["kernel_regularizer"]
        if "kernel_initializer" in given:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), 0.5)
    for bias in biases:
        assert bias.constraint is given["bias_constraint"]
        assert bias.regularizer is given["bias_regularizer"]
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(bias), 0.25)


@pytest.mark.parametrize("case", CASES)
def test_regularizers_add_their_losses(case):
    _, input_shape, n_kernels, n_biases = CASES[case]
    layer, _ = layer_with_every_argument(case)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    to_numpy = keras.ops.convert_to_numpy
    expected = (
        sum(0.01 * np.sum(to_numpy(k) ** 2) for k in variables(layer, "kernel"))
        + sum(0.1 * np.sum(np.abs(to_numpy(b))) for b in variables(layer, "bias"))
        + 0.001 * np.sum(y**2) / input_shape[0]
    )
    losses = [float(loss) for loss in layer.losses]
    assert len(losses) == n_kernels + n_biases + 1
    np.testing.assert_allclose(sum(losses), expected, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_kernel_constraint_holds_during_fit(case):
    factory, input_shape, _, _ = CASES[case]
    kwargs = {"kernel_constraint": "non_neg"}
    if "kernel_initializer" in factory().weight_arguments:
        kwargs["kernel_initializer"] = "random_normal"
    block = factory(**kwargs)
    model = keras.Sequential(
        [keras.Input(input_shape[1:]), block, keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    kernels = variables(block, "kernel")
    assert min(keras.ops.convert_to_numpy(k).min() for k in kernels) < 0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, *input_shape[1:])).astype("float32")
    model.fit(x, rng.normal(size=(8, 1)), epochs=1, batch_size=8, verbose=0)
    assert min(keras.ops.convert_to_numpy(k).min() for k in kernels) >= 0


@pytest.mark.parametrize("case", CASES)
def test_config_with_every_argument_round_trips_through_a_keras_file(case, tmp_path):
    _, input_shape, _, _ = CASES[case]
    layer, given = layer_with_every_argument(case)
    config = layer.get_config()
    for name in given:
        assert name in config
    assert type(layer).from_config(config).get_config() == config

    model = keras.Sequential([keras.Input(input_shape[1:]), layer])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.layers[0].get_config() == config
    for kernel in variables(loaded.layers[0], "kernel"):
        assert isinstance(kernel.constraint, keras.constraints.NonNeg)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def drop_keys_from_tfcompress_configs(path, keys):
    """Rewrites the `.keras` file at `path` as if saved before `keys` existed."""

    def strip(node):
        if isinstance(node, dict):
            if str(node.get("registered_name", "")).startswith("tfcompress>"):
                for key in keys:
                    node["config"].pop(key)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    strip(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("case", CASES)
def test_keras_file_without_the_new_keys_loads(case, tmp_path):
    factory, input_shape, _, _ = CASES[case]
    block = factory()
    model = keras.Sequential([keras.Input(input_shape[1:]), block])
    path = tmp_path / "old.keras"
    model.save(path)
    new_keys = new_arguments(case)
    assert new_keys  # every layer gained an argument
    drop_keys_from_tfcompress_configs(path, new_keys)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))["config"]["layers"]
    assert not new_keys & set(saved[-1]["config"])

    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[0].get_config() == block.get_config()


@pytest.mark.parametrize("case", CASES)
def test_defaults_are_those_of_keras_but_where_documented(case):
    """The defaults each layer had before `WeightedLayer`, kept."""
    layer_class = type(CASES[case][0]())
    exceptions = {
        "DepthwiseSeparableConv2D": {"activation": "relu6"},
        "InvertedResidual": {"activation": "relu6"},
        "PartialConv2D": {"use_bias": False},
    }.get(case, {})
    parameters = inspect.signature(layer_class).parameters
    for name in layer_class.weight_arguments:
        expected = exceptions.get(name, KERAS_WEIGHT_ARGUMENTS[name])
        assert parameters[name].default == expected, name


@pytest.mark.parametrize(
    "layer_class, argument",
    [
        (L.InvertedResidual, {"use_bias": True}),
        (L.InvertedResidual, {"bias_regularizer": "l2"}),
        (L.DepthwiseSeparableConv2D, {"kernel_initializer": "ones"}),
        (L.PartialConv2D, {"activation": "relu"}),
    ],
)
def test_an_argument_the_layer_does_not_take_is_refused(layer_class, argument):
    args = () if layer_class is L.PartialConv2D else (8,)
    with pytest.raises(ValueError, match=f"Unrecognized keyword arguments.*{next(iter(argument))}"):
        layer_class(*args, **argument)


@pytest.mark.parametrize(
    "argument, message",
    [
        ({"use_bias": "yes"}, "`use_bias` must be True or False. Received: use_bias='yes'"),
        ({"kernel_initializer": "no_such"}, "Could not interpret initializer identifier"),
        ({"bias_regularizer": "no_such"}, "Could not interpret regularizer identifier"),
        ({"kernel_constraint": "no_such"}, "Could not interpret constraint identifier"),
        ({"activation": "no_such"}, "Could not interpret activation function identifier"),
    ],
)
def test_invalid_weight_arguments(argument, message):
    with pytest.raises(ValueError, match=message):
        L.LowRankDense(8, rank=2, **argument)


def test_weight_arguments_must_be_keras_ones():
    class Misnamed(WeightedLayer):
        weight_arguments = ("kernel_initializer", "kernel_init")

    with pytest.raises(ValueError, match=r"may only name .*Received: \['kernel_init'\]"):
        Misnamed()


def test_sublayer_arguments_of_a_subset():
    block = L.InvertedResidual(8, kernel_initializer="ones", kernel_constraint="non_neg")
    assert set(block.kernel_arguments(prefix="depthwise")) == {
        "depthwise_initializer",
        "depthwise_regularizer",
        "depthwise_constraint",
    }
    assert block.bias_arguments() == {}
    partial = L.PartialConv2D(use_bias=True, bias_initializer="ones")
    assert partial.bias_arguments()["use_bias"] is True
    assert set(partial.bias_arguments()) == {
        "use_bias",
        "bias_initializer",
        "bias_regularizer",
        "bias_constraint",
    }
