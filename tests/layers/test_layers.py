"""Checks every tfcompress layer must pass: config and `.keras` round trips
in Sequential, functional and subclassed models, training with `fit`, and
LiteRT parity after float32 and int8 export."""

import keras
import numpy as np
import pytest

import tfcompress.layers as L
from tfcompress.export import LiteRTModel
from tfcompress.export import to_tflite

# (id, factory, model part before the layer). Every case feeds the digits
# images (8, 8, 1) through a small stem so that the layer sees real features.
CASES = {
    # momentum=0.9: the batch-norm statistics settle within the few hundred
    # training steps a unit test can afford.
    "depthwise_separable": lambda: L.DepthwiseSeparableConv2D(
        16, strides=2, momentum=0.9
    ),
    "inverted_residual": lambda: L.InvertedResidual(
        16, expansion=4, momentum=0.9
    ),
    "inverted_residual_stride2": lambda: L.InvertedResidual(
        24, expansion=6, strides=2, momentum=0.9
    ),
    "channel_shuffle": lambda: L.ChannelShuffle(4),
    "shuffle_conv": lambda: L.ShuffleConv2D(32, groups=4, activation="relu"),
    "cp_conv": lambda: L.CPConv2D(24, 3, rank=6, padding="same"),
    "tucker2_conv": lambda: L.Tucker2Conv2D(
        24, 3, ranks=(8, 12), strides=2, padding="same", activation="relu"
    ),
    "low_rank_dense": lambda: L.LowRankDense(32, rank=8, activation="relu"),
    "low_rank_conv": lambda: L.LowRankConv2D(
        24, 3, rank=6, strides=2, padding="same", activation="relu"
    ),
    "low_rank_separable": lambda: L.LowRankSeparableConv2D(
        24, 3, rank=6, padding="same", activation="relu"
    ),
    "partial_conv": lambda: L.PartialConv2D(n_div=4),
}


def stem_layers():
    return [keras.layers.Conv2D(16, 3, padding="same", activation="relu")]


def head_layers(case):
    if case == "low_rank_dense":
        return [keras.layers.Dense(10)]
    return [keras.layers.Flatten(), keras.layers.Dense(10)]


def pre_layers(case):
    if case == "low_rank_dense":
        return [keras.layers.Flatten()]
    return stem_layers()


def build_functional(case):
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for layer in [*pre_layers(case), CASES[case](), *head_layers(case)]:
        x = layer(x)
    return keras.Model(inputs, x)


def build_sequential(case):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            *pre_layers(case),
            CASES[case](),
            *head_layers(case),
        ]
    )


@keras.saving.register_keras_serializable(package="tfcompress_tests")
class Subclassed(keras.Model):
    """A subclassed model around a block, as users write them."""

    def __init__(self, block, flatten_first=False, **kwargs):
        super().__init__(**kwargs)
        self.block = block
        self.flatten_first = flatten_first
        if not flatten_first:
            self.stem = keras.layers.Conv2D(16, 3, padding="same")
        self.flatten = keras.layers.Flatten()
        self.head = keras.layers.Dense(10)

    def call(self, inputs):
        if self.flatten_first:
            x = self.flatten(inputs)
            return self.head(self.block(x))
        x = self.block(self.stem(inputs))
        return self.head(self.flatten(x))

    def get_config(self):
        return {
            **super().get_config(),
            "block": keras.saving.serialize_keras_object(self.block),
            "flatten_first": self.flatten_first,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["block"] = keras.saving.deserialize_keras_object(
            config["block"]
        )
        return cls(**config)


def build_subclassed(case):
    model = Subclassed(
        CASES[case](), flatten_first=case == "low_rank_dense"
    )
    model(np.zeros((1, 8, 8, 1), "float32"))
    return model


BUILDERS = {
    "sequential": build_sequential,
    "functional": build_functional,
    "subclassed": build_subclassed,
}


@pytest.fixture(scope="module")
def trained(digits):
    """One functional model per case, trained for a few epochs on digits."""
    x_train, y_train, x_test, y_test = digits
    models = {}
    for case in CASES:
        keras.utils.set_random_seed(0)
        model = build_functional(case)
        model.compile(
            optimizer=keras.optimizers.Adam(3e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        history = model.fit(
            x_train, y_train, epochs=6, batch_size=64, verbose=0
        )
        models[case] = (model, history.history)
    return models


@pytest.mark.parametrize("case", CASES)
def test_config_round_trip(case):
    layer = CASES[case]()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("case", CASES)
def test_save_and_load_gives_identical_outputs(case, builder, tmp_path, digits):
    model = BUILDERS[builder](case)
    x = digits[2][:16]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    )
    layer_class = type(CASES[case]())

    def block_config(m):
        (block,) = [
            layer
            for layer in m._flatten_layers()
            if isinstance(layer, layer_class)
        ]
        return block.get_config()

    assert block_config(loaded) == block_config(model)


@pytest.mark.parametrize("case", CASES)
def test_fit_learns_digits(case, trained, digits):
    model, history = trained[case]
    loss = history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    _, _, x_test, y_test = digits
    accuracy = np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test)
    assert accuracy > 0.85


@pytest.mark.parametrize("case", CASES)
def test_tflite_float32_matches_keras(case, trained, digits, tmp_path):
    model, _ = trained[case]
    x_test = digits[2]
    path = tmp_path / "model.tflite"
    to_tflite(model, path)
    litert = LiteRTModel(path).predict(x_test)
    np.testing.assert_allclose(
        litert, model.predict(x_test, verbose=0), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("case", CASES)
def test_tflite_int8_agrees_on_top1(case, trained, digits, tmp_path):
    model, _ = trained[case]
    x_train, _, x_test, _ = digits
    path = tmp_path / "model_int8.tflite"
    to_tflite(
        model, path, quantization="int8", data=x_train[:200]
    )
    litert = LiteRTModel(path).predict(x_test)
    keras_top1 = model.predict(x_test, verbose=0).argmax(1)
    agreement = np.mean(litert.argmax(1) == keras_top1)
    assert agreement >= 0.95, agreement
