"""The model zoo: the architectures users bring, at small sizes.

Every tool is checked on these, not only on tfcompress's own CNNs:
keras.applications models (weights=None) with squeeze-and-excitation,
hard-swish, separable convolutions, dense blocks, NASNet cells, ConvNeXt's
LayerNorm and LayerScale; a ViT; a Conv1D keyword spotter; an Embedding +
LSTM text classifier.

Two sizes:

- `"full"`: the whole network at a small input (32x32x3; Xception's
  smallest is 71x71x3). `benchmarks/model_zoo.py` measures these.
- `"tiny"`: the application's stem and first blocks, cut where each
  distinctive block has appeared (SE, residual and dense blocks, a
  transition's average pooling, separable convolutions, a NASNet reduction
  cell, a ConvNeXt stage), with a pooled classifier. The test suite runs
  every tool on these in seconds.

Example:

>>> model = zoo_model("kws_conv1d", size="tiny", num_classes=4)
>>> tuple(model.output.shape)
(None, 4)
"""

import keras

from tfcompress.models.vit import small_vit

ZOO_MODELS = (
    "mobilenet_v3_small",
    "efficientnet_b0",
    "resnet50",
    "densenet121",
    "xception",
    "nasnet_mobile",
    "convnext_tiny",
    "vit",
    "kws_conv1d",
    "lstm_text",
)
SIZES = ("tiny", "full")

# keras.applications constructor, input shape, and where "tiny" cuts it
# (the layer whose output feeds the classifier).
_APPLICATIONS = {
    "mobilenet_v3_small": (
        "MobileNetV3Small",
        (32, 32, 3),
        "expanded_conv_4_add",
    ),
    "efficientnet_b0": ("EfficientNetB0", (32, 32, 3), "block3b_add"),
    "resnet50": ("ResNet50", (32, 32, 3), "conv2_block2_out"),
    "densenet121": ("DenseNet121", (32, 32, 3), "pool2_pool"),
    "xception": ("Xception", (71, 71, 3), "block3_sepconv1_act"),
    "nasnet_mobile": ("NASNetMobile", (32, 32, 3), "reduction_concat_stem_1"),
    "convnext_tiny": (
        "ConvNeXtTiny",
        (32, 32, 3),
        "convnext_tiny_stage_0_block_1_identity",
    ),
}

# Keyword spotting: 49 frames of 10 MFCCs (the usual 1 s window).
KWS_INPUT_SHAPE = (49, 10)
# Text: sequences of 16 tokens from a vocabulary of 1000 (the int8 file runs
# the LSTM unrolled: its graph, and its export time, grow with the length).
TEXT_TIMESTEPS = 16
TEXT_VOCABULARY = 1000


def zoo_input_shape(name):
    """The input shape (without batch) of zoo model `name`."""
    _check_name(name)
    if name in _APPLICATIONS:
        return _APPLICATIONS[name][1]
    if name == "vit":
        return (32, 32, 3)
    if name == "kws_conv1d":
        return KWS_INPUT_SHAPE
    return (TEXT_TIMESTEPS,)


def zoo_model(name, size="tiny", num_classes=10):
    """Builds zoo model `name` (uncompiled, random weights).

    Args:
        name: One of `ZOO_MODELS`.
        size: `"tiny"` (the first blocks; for tests) or `"full"` (the
            whole network; for benchmarks). Defaults to `"tiny"`.
        num_classes: Positive integer, number of classes. Defaults to
            `10`.

    Returns:
        A functional `keras.Model` that outputs logits, named after the
        zoo entry and the size (e.g. `"resnet50_tiny"`).

    Raises:
        ValueError: For an unknown name or size.
    """
    _check_name(name)
    if size not in SIZES:
        raise ValueError(
            f"`size` must be one of {SIZES}. Received: size={size!r}"
        )
    full = size == "full"
    if name in _APPLICATIONS:
        model = _application(name, full, num_classes)
    elif name == "vit":
        model = small_vit(
            (32, 32, 3),
            num_classes,
            patch=4,
            dim=64 if full else 32,
            heads=4 if full else 2,
            blocks=6 if full else 2,
            # Like the applications, it takes raw [0, 255] pixels and
            # scales them itself.
            rescale=1 / 255,
        )
    elif name == "kws_conv1d":
        model = _keyword_spotter(num_classes, 64 if full else 16)
    else:
        model = _text_classifier(num_classes, 64 if full else 16)
    # model.input/model.output (not the lists): a one-output model built from
    # lists would predict a list of one array.
    return keras.Model(model.input, model.output, name=f"{name}_{size}")


def _check_name(name):
    if name not in ZOO_MODELS:
        raise ValueError(
            f"`name` must be one of {ZOO_MODELS}. Received: name={name!r}"
        )


def _application(name, full, num_classes):
    constructor, input_shape, cut = _APPLICATIONS[name]
    model = getattr(keras.applications, constructor)(
        weights=None,
        input_shape=input_shape,
        classes=num_classes,
        classifier_activation=None,  # Logits, as every zoo model gives.
    )
    if full:
        return model
    features = model.get_layer(cut).output
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(model.input, outputs)


def _keyword_spotter(num_classes, width):
    """Conv1D + BatchNormalization + ReLU blocks over MFCC frames."""
    inputs = keras.Input(KWS_INPUT_SHAPE)
    x = inputs
    for index, (filters, stride) in enumerate(
        ((width, 2), (width, 1), (2 * width, 2), (2 * width, 1))
    ):
        x = keras.layers.Conv1D(
            filters, 3, strides=stride, padding="same", use_bias=False,
            name=f"conv{index}",
        )(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs)


def _text_classifier(num_classes, units):
    """Embedding + LSTM + Dense over fixed-length token sequences."""
    inputs = keras.Input((TEXT_TIMESTEPS,), dtype="int32")
    x = keras.layers.Embedding(TEXT_VOCABULARY, units, name="embedding")(
        inputs
    )
    x = keras.layers.LSTM(units, name="lstm")(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs)
