"""A small Vision Transformer of standard Keras layers."""

import keras

from tfcompress.analysis import layer_costs
from tfcompress.graph.registry import register_layer
from tfcompress.pruning import channel_rules
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each token's position: `x + position`.

    Input shape:
        `(batch_size, tokens, dim)`.

    Output shape:
        The same.

    Example:

    >>> layer = PositionEmbedding()
    >>> tuple(layer(keras.ops.zeros((2, 4, 8))).shape)
    (2, 4, 8)
    """

    def build(self, input_shape):
        self.position = self.add_weight(
            shape=(1, *input_shape[1:]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position",
        )

    def call(self, inputs):
        return keras.ops.add(inputs, self.position)

    def compute_output_shape(self, input_shape):
        return input_shape


register_layer(
    PositionEmbedding,
    prunable_kernels=(),
    macs=layer_costs.no_macs,
    # An ADD with a constant operand: TFLite stores the table per tensor.
    quantize=QuantizeRule.rounded_kernels({"position": None}),
    channels=channel_rules.added_weight("position"),
)


def small_vit(
    input_shape,
    num_classes,
    patch=2,
    dim=32,
    heads=2,
    blocks=2,
    dropout=0.1,
    rescale=None,
    name="small_vit",
):
    """Builds a small ViT (Dosovitskiy et al. 2021) for small images.

    Conv2D patches, a learned position embedding, pre-norm encoder blocks
    (LayerNormalization, MultiHeadAttention, a GELU MLP of `2 * dim`
    units, residual adds), a final LayerNormalization, average pooling of
    the tokens and a Dense classifier that outputs logits.

    Args:
        input_shape: Tuple `(height, width, channels)`, height and width
            multiples of `patch`.
        num_classes: Positive integer, number of classes.
        patch: Patch size in pixels. Defaults to `2`.
        dim: Token width. Defaults to `32`.
        heads: Attention heads (`dim` divisible by it). Defaults to `2`.
        blocks: Encoder blocks. Defaults to `2`.
        dropout: Attention dropout. Defaults to `0.1`.
        rescale: Optional float the inputs are multiplied by first (a
            `Rescaling` layer), e.g. `1 / 255` for raw pixels. The patch
            embedding has no normalization after it: on raw [0, 255]
            pixels its tokens are 255 times larger, and the position
            embedding added to them falls below one step of the int8 scale
            they share. Defaults to `None` (inputs used as given).
        name: Model name. Defaults to `"small_vit"`.

    Returns:
        An uncompiled functional `keras.Model`.

    Example:

    >>> model = small_vit((8, 8, 1), num_classes=10)
    >>> tuple(model.output.shape)
    (None, 10)
    """
    inputs = keras.Input(input_shape)
    x = inputs
    if rescale is not None:
        x = keras.layers.Rescaling(rescale, name="rescaling")(x)
    x = keras.layers.Conv2D(dim, patch, strides=patch, name="patches")(x)
    tokens = (input_shape[0] // patch) * (input_shape[1] // patch)
    x = keras.layers.Reshape((tokens, dim), name="tokens")(x)
    x = PositionEmbedding(name="position")(x)
    for b in range(blocks):
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"b{b}_ln1")(x)
        y = keras.layers.MultiHeadAttention(
            heads, dim // heads, dropout=dropout, name=f"b{b}_attention"
        )(y, y)
        x = keras.layers.Add(name=f"b{b}_add1")([x, y])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"b{b}_ln2")(x)
        y = keras.layers.Dense(2 * dim, activation="gelu", name=f"b{b}_mlp1")(y)
        y = keras.layers.Dense(dim, name=f"b{b}_mlp2")(y)
        x = keras.layers.Add(name=f"b{b}_add2")([x, y])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)
