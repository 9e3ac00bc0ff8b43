"""Every layer `keras.layers` exports is counted or reported unknown.

A layer is never silently dropped from the MACs total: each class Keras
exports is profiled here in a small model, and its row either has integer
MACs (from a rule, or summed over its sublayers for the few composites that
do no work of their own) or is listed in `unknown_macs`. A class this file
does not know (a new Keras release) fails the test until it is added.
"""

import inspect

import keras
import pytest

from tfcompress.analysis import layer_costs
from tfcompress.analysis import profile

L = keras.layers

IMAGE = (8, 8, 3)
SEQUENCE = (6, 4)
VECTOR = (4,)
VOLUME = (4, 4, 4, 2)


class _OneStep(keras.layers.Layer):
    """Calls a recurrent cell once, on zero states."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell

    def call(self, inputs):
        batch = keras.ops.shape(inputs)[0]
        states = keras.tree.map_structure(
            lambda size: keras.ops.zeros((batch, size)), self.cell.state_size
        )
        return self.cell(inputs, states)[0]


def _on(layer, shape=VECTOR, dtype="float32"):
    inputs = keras.Input(shape, dtype=dtype)
    return keras.Model(inputs, layer(inputs)), layer


class _Calls(keras.Model):
    """A subclassed model calling one layer."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs)


def _subclassed(layer, shape):
    # For a layer that returns its very input when called on a symbolic
    # tensor, which a functional model cannot hold.
    model = _Calls(layer)
    model.example_shape = shape
    return model, layer


def _merge(layer, shape=VECTOR):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer([inputs, inputs])), layer


def _attention(layer):
    inputs = keras.Input(SEQUENCE)
    return keras.Model(inputs, layer(inputs, inputs)), layer


def _cell(cell):
    inputs = keras.Input(VECTOR)
    return keras.Model(inputs, _OneStep(cell)(inputs)), cell


def _hashed_crossing():
    layer = L.HashedCrossing(num_bins=5)
    first = keras.Input((1,), dtype="int32")
    second = keras.Input((1,), dtype="int32")
    return keras.Model([first, second], layer((first, second))), layer


# Class -> a function building (model, the instance of the class in it).
CASES = {
    L.Activation: lambda: _on(L.Activation("relu")),
    L.ActivityRegularization: lambda: _on(L.ActivityRegularization()),
    L.AdaptiveAveragePooling1D: lambda: _on(
        L.AdaptiveAveragePooling1D(4), SEQUENCE
    ),
    L.AdaptiveAveragePooling2D: lambda: _on(
        L.AdaptiveAveragePooling2D(3), IMAGE
    ),
    L.AdaptiveAveragePooling3D: lambda: _on(
        L.AdaptiveAveragePooling3D(3), VOLUME
    ),
    L.AdaptiveMaxPooling1D: lambda: _on(L.AdaptiveMaxPooling1D(4), SEQUENCE),
    L.AdaptiveMaxPooling2D: lambda: _on(L.AdaptiveMaxPooling2D(3), IMAGE),
    L.AdaptiveMaxPooling3D: lambda: _on(L.AdaptiveMaxPooling3D(3), VOLUME),
    L.Add: lambda: _merge(L.Add()),
    L.AdditiveAttention: lambda: _merge(L.AdditiveAttention(), SEQUENCE),
    L.AlphaDropout: lambda: _on(L.AlphaDropout(0.1)),
    L.Attention: lambda: _merge(L.Attention(), SEQUENCE),
    L.AugMix: lambda: _on(L.AugMix(), IMAGE),
    L.AutoContrast: lambda: _on(L.AutoContrast(), IMAGE),
    L.Average: lambda: _merge(L.Average()),
    L.AveragePooling1D: lambda: _on(L.AveragePooling1D(2), SEQUENCE),
    L.AveragePooling2D: lambda: _on(L.AveragePooling2D(2), IMAGE),
    L.AveragePooling3D: lambda: _on(L.AveragePooling3D(2), VOLUME),
    L.BatchNormalization: lambda: _on(L.BatchNormalization(), IMAGE),
    L.Bidirectional: lambda: _on(L.Bidirectional(L.LSTM(3)), SEQUENCE),
    L.CategoryEncoding: lambda: _on(
        L.CategoryEncoding(5, output_mode="multi_hot"), (3,), "int32"
    ),
    L.CenterCrop: lambda: _on(L.CenterCrop(4, 4), IMAGE),
    L.Concatenate: lambda: _merge(L.Concatenate()),
    L.ContrastLimitedAdaptiveHistogramEqualization: lambda: _on(
        L.ContrastLimitedAdaptiveHistogramEqualization(), IMAGE
    ),
    L.Conv1D: lambda: _on(L.Conv1D(2, 3), SEQUENCE),
    L.Conv1DTranspose: lambda: _on(L.Conv1DTranspose(2, 3), SEQUENCE),
    L.Conv2D: lambda: _on(L.Conv2D(2, 3), IMAGE),
    L.Conv2DTranspose: lambda: _on(L.Conv2DTranspose(2, 3), IMAGE),
    L.Conv3D: lambda: _on(L.Conv3D(2, 3), VOLUME),
    L.Conv3DTranspose: lambda: _on(L.Conv3DTranspose(2, 3), VOLUME),
    L.ConvLSTM1D: lambda: _on(L.ConvLSTM1D(2, 3), (3, 6, 2)),
    L.ConvLSTM2D: lambda: _on(L.ConvLSTM2D(2, 3), (3, 6, 6, 2)),
    L.ConvLSTM3D: lambda: _on(L.ConvLSTM3D(2, 3), (3, 4, 4, 4, 2)),
    L.Cropping1D: lambda: _on(L.Cropping1D(1), SEQUENCE),
    L.Cropping2D: lambda: _on(L.Cropping2D(1), IMAGE),
    L.Cropping3D: lambda: _on(L.Cropping3D(1), VOLUME),
    L.CutMix: lambda: _on(L.CutMix(), IMAGE),
    L.Dense: lambda: _on(L.Dense(2)),
    L.DepthwiseConv1D: lambda: _on(L.DepthwiseConv1D(3), SEQUENCE),
    L.DepthwiseConv2D: lambda: _on(L.DepthwiseConv2D(3), IMAGE),
    L.Discretization: lambda: _on(L.Discretization([0.0, 1.0])),
    L.Dot: lambda: _merge(L.Dot(axes=1)),
    L.Dropout: lambda: _on(L.Dropout(0.5)),
    L.ELU: lambda: _on(L.ELU()),
    L.EinsumDense: lambda: _on(L.EinsumDense("ab,bc->ac", output_shape=2)),
    L.Embedding: lambda: _on(L.Embedding(10, 3), (5,), "int32"),
    L.Equalization: lambda: _subclassed(L.Equalization(), IMAGE),
    L.Flatten: lambda: _on(L.Flatten(), IMAGE),
    L.GRU: lambda: _on(L.GRU(3), SEQUENCE),
    L.GRUCell: lambda: _cell(L.GRUCell(3)),
    L.GaussianDropout: lambda: _on(L.GaussianDropout(0.1)),
    L.GaussianNoise: lambda: _on(L.GaussianNoise(0.1)),
    L.GlobalAveragePooling1D: lambda: _on(
        L.GlobalAveragePooling1D(), SEQUENCE
    ),
    L.GlobalAveragePooling2D: lambda: _on(L.GlobalAveragePooling2D(), IMAGE),
    L.GlobalAveragePooling3D: lambda: _on(L.GlobalAveragePooling3D(), VOLUME),
    L.GlobalMaxPooling1D: lambda: _on(L.GlobalMaxPooling1D(), SEQUENCE),
    L.GlobalMaxPooling2D: lambda: _on(L.GlobalMaxPooling2D(), IMAGE),
    L.GlobalMaxPooling3D: lambda: _on(L.GlobalMaxPooling3D(), VOLUME),
    L.GroupNormalization: lambda: _on(L.GroupNormalization(3), IMAGE),
    L.GroupQueryAttention: lambda: _attention(
        L.GroupQueryAttention(2, num_query_heads=2, num_key_value_heads=1)
    ),
    L.HashedCrossing: _hashed_crossing,
    L.Hashing: lambda: _on(L.Hashing(5), (3,), "int32"),
    L.Identity: lambda: _on(L.Identity()),
    L.IntegerLookup: lambda: _on(
        L.IntegerLookup(vocabulary=[1, 2]), (3,), "int64"
    ),
    L.LSTM: lambda: _on(L.LSTM(3), SEQUENCE),
    L.LSTMCell: lambda: _cell(L.LSTMCell(3)),
    L.Lambda: lambda: _on(L.Lambda(lambda x: x * 2.0)),
    L.LayerNormalization: lambda: _on(L.LayerNormalization(), SEQUENCE),
    L.LeakyReLU: lambda: _on(L.LeakyReLU()),
    L.Masking: lambda: _on(L.Masking(), SEQUENCE),
    L.MaxNumBoundingBoxes: lambda: _on(L.MaxNumBoundingBoxes(2), IMAGE),
    L.MaxPooling1D: lambda: _on(L.MaxPooling1D(2), SEQUENCE),
    L.MaxPooling2D: lambda: _on(L.MaxPooling2D(2), IMAGE),
    L.MaxPooling3D: lambda: _on(L.MaxPooling3D(2), VOLUME),
    L.Maximum: lambda: _merge(L.Maximum()),
    L.MelSpectrogram: lambda: _on(
        L.MelSpectrogram(
            fft_length=32, sequence_length=32, sequence_stride=16,
            num_mel_bins=4,
        ),
        (128,),
    ),
    L.Minimum: lambda: _merge(L.Minimum()),
    L.MixUp: lambda: _on(L.MixUp(), IMAGE),
    L.MultiHeadAttention: lambda: _attention(L.MultiHeadAttention(2, 2)),
    L.Multiply: lambda: _merge(L.Multiply()),
    L.Normalization: lambda: _on(L.Normalization(mean=0.0, variance=1.0)),
    L.PReLU: lambda: _on(L.PReLU()),
    L.Permute: lambda: _on(L.Permute((2, 1)), SEQUENCE),
    L.Pipeline: lambda: _on(
        L.Pipeline([L.RandomFlip(), L.Rescaling(1 / 255)]), IMAGE
    ),
    L.RMSNormalization: lambda: _on(L.RMSNormalization(), SEQUENCE),
    L.RNN: lambda: _on(L.RNN(L.SimpleRNNCell(3)), SEQUENCE),
    L.RandAugment: lambda: _on(L.RandAugment(), IMAGE),
    L.RandomBrightness: lambda: _on(L.RandomBrightness(0.2), IMAGE),
    L.RandomColorDegeneration: lambda: _on(
        L.RandomColorDegeneration(0.2), IMAGE
    ),
    L.RandomColorJitter: lambda: _on(L.RandomColorJitter(), IMAGE),
    L.RandomContrast: lambda: _on(L.RandomContrast(0.2), IMAGE),
    L.RandomCrop: lambda: _on(L.RandomCrop(4, 4), IMAGE),
    L.RandomElasticTransform: lambda: _on(L.RandomElasticTransform(), IMAGE),
    L.RandomErasing: lambda: _on(L.RandomErasing(), IMAGE),
    L.RandomFlip: lambda: _on(L.RandomFlip(), IMAGE),
    L.RandomGaussianBlur: lambda: _on(L.RandomGaussianBlur(), IMAGE),
    L.RandomGrayscale: lambda: _on(L.RandomGrayscale(), IMAGE),
    L.RandomHue: lambda: _on(L.RandomHue(0.2, (0, 255)), IMAGE),
    L.RandomInvert: lambda: _on(L.RandomInvert(), IMAGE),
    L.RandomPerspective: lambda: _on(L.RandomPerspective(), IMAGE),
    L.RandomPosterization: lambda: _on(L.RandomPosterization(4), IMAGE),
    L.RandomRotation: lambda: _on(L.RandomRotation(0.2), IMAGE),
    L.RandomSaturation: lambda: _on(L.RandomSaturation(0.2), IMAGE),
    L.RandomSharpness: lambda: _on(L.RandomSharpness(0.2), IMAGE),
    L.RandomShear: lambda: _on(L.RandomShear(0.2, 0.2), IMAGE),
    L.RandomTranslation: lambda: _on(L.RandomTranslation(0.2, 0.2), IMAGE),
    L.RandomZoom: lambda: _on(L.RandomZoom(0.2), IMAGE),
    L.ReLU: lambda: _on(L.ReLU()),
    L.RepeatVector: lambda: _on(L.RepeatVector(2)),
    L.Rescaling: lambda: _on(L.Rescaling(1 / 255), IMAGE),
    L.Reshape: lambda: _on(L.Reshape((2, 2))),
    L.Resizing: lambda: _on(L.Resizing(4, 4), IMAGE),
    L.ReversibleEmbedding: lambda: _on(
        L.ReversibleEmbedding(10, 3), (5,), "int32"
    ),
    L.STFTSpectrogram: lambda: _on(
        L.STFTSpectrogram(frame_length=16, frame_step=8, fft_length=16),
        (64, 1),
    ),
    L.SeparableConv1D: lambda: _on(L.SeparableConv1D(2, 3), SEQUENCE),
    L.SeparableConv2D: lambda: _on(L.SeparableConv2D(2, 3), IMAGE),
    L.SimpleRNN: lambda: _on(L.SimpleRNN(3), SEQUENCE),
    L.SimpleRNNCell: lambda: _cell(L.SimpleRNNCell(3)),
    L.Softmax: lambda: _on(L.Softmax()),
    L.Solarization: lambda: _on(L.Solarization(), IMAGE),
    L.SpatialDropout1D: lambda: _on(L.SpatialDropout1D(0.1), SEQUENCE),
    L.SpatialDropout2D: lambda: _on(L.SpatialDropout2D(0.1), IMAGE),
    L.SpatialDropout3D: lambda: _on(L.SpatialDropout3D(0.1), VOLUME),
    L.SpectralNormalization: lambda: _on(L.SpectralNormalization(L.Dense(2))),
    L.StackedRNNCells: lambda: _cell(
        L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)])
    ),
    L.Subtract: lambda: _merge(L.Subtract()),
    L.TimeDistributed: lambda: _on(L.TimeDistributed(L.Dense(2)), SEQUENCE),
    L.UnitNormalization: lambda: _on(L.UnitNormalization(), SEQUENCE),
    L.UpSampling1D: lambda: _on(L.UpSampling1D(2), SEQUENCE),
    L.UpSampling2D: lambda: _on(L.UpSampling2D(2), IMAGE),
    L.UpSampling3D: lambda: _on(L.UpSampling3D(2), VOLUME),
    L.ZeroPadding1D: lambda: _on(L.ZeroPadding1D(1), SEQUENCE),
    L.ZeroPadding2D: lambda: _on(L.ZeroPadding2D(1), IMAGE),
    L.ZeroPadding3D: lambda: _on(L.ZeroPadding3D(1), VOLUME),
}

# Classes not profiled here, and why; each still has a MAC rule.
NOT_PROFILED = {
    L.InputLayer: "the input of every functional model",
    L.StringLookup: "takes strings, which profile's zeros cannot be",
    L.TextVectorization: "takes strings, which profile's zeros cannot be",
    L.TFSMLayer: "wraps a SavedModel from outside Keras",
    L.JaxLayer: "wraps a JAX function; JAX backend only",
    L.FlaxLayer: "wraps a Flax module; JAX backend only",
    L.TorchModuleWrapper: "wraps a torch module; torch backend only",
}

# Base classes: a user's subclass is a leaf (unknown without a rule of its
# own, see test_profiler) or a composite counted through its sublayers.
BASE_CLASSES = {L.Layer, L.Wrapper}

# Composites whose own `call()` only routes data to their sublayers: their
# MACs are their sublayers'.
COUNTED_THROUGH_SUBLAYERS = {L.TimeDistributed, L.Pipeline}

# Layers profiled as unknown (with the reason in their note), by choice.
UNKNOWN = {
    L.Lambda,
    L.ContrastLimitedAdaptiveHistogramEqualization,
    L.MelSpectrogram,
    L.STFTSpectrogram,
    L.Resizing,  # Bilinear by default.
}


def _exported_layer_classes():
    classes = {}
    for name in dir(L):
        value = getattr(L, name)
        if inspect.isclass(value) and issubclass(value, L.Layer):
            classes.setdefault(value, name)
    return classes


def test_every_exported_layer_class_is_covered():
    exported = _exported_layer_classes()
    covered = set(CASES) | set(NOT_PROFILED) | BASE_CLASSES
    missing = sorted(
        name for cls, name in exported.items() if cls not in covered
    )
    assert missing == [], (
        "Layers keras.layers exports that this test does not profile: "
        "add a MAC rule (tfcompress/keras_layers/) and a case here."
    )
    for cls in NOT_PROFILED:
        assert layer_costs.has_rule(cls), cls.__name__


def _row_of(report, layer):
    rows = [
        row
        for row in report.rows
        if row.name.rsplit("/", 1)[-1] == layer.name
        and row.layer_type == type(layer).__name__
    ]
    assert len(rows) == 1, [row.name for row in report.rows]
    return rows[0]


@pytest.mark.parametrize(
    "layer_class", sorted(CASES, key=lambda cls: cls.__name__),
    ids=lambda cls: cls.__name__,
)
def test_layer_is_counted_or_reported_unknown(layer_class):
    model, layer = CASES[layer_class]()
    assert type(layer) is layer_class
    report = profile(model, getattr(model, "example_shape", None))
    row = _row_of(report, layer)
    assert row.calls >= 1, row
    assert report.params == model.count_params()
    if row.is_group:
        assert layer_class in COUNTED_THROUGH_SUBLAYERS, (
            f"{layer_class.__name__} is counted through its sublayers only: "
            "whatever its own call() computes would be dropped."
        )
    if layer_class in UNKNOWN:
        assert row.macs is None
        assert row.name in report.unknown_macs
        assert row.note.startswith(layer_costs.UNKNOWN_MACS), row.note
    else:
        assert isinstance(row.macs, int), row
        assert report.unknown_macs == []
