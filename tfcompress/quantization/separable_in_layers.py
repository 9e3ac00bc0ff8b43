"""`keras.layers.SeparableConv2D` as a depthwise and a pointwise layer.

TFLite has no separable convolution: the converter emits a
DEPTHWISE_CONV_2D and a 1x1 CONV_2D, and in an int8 file the tensor
between them has a scale of its own. `SeparableConv2DInLayers` is the same
layer (same config, same weights) computing through a `DepthwiseConv2D`
and a 1x1 `Conv2D` sublayer, so that `quantize_model` can inline it
(`QuantizeRule.inline(twin=...)`) and round both kernels and the tensor
between them, as the file does.
"""

import keras


@keras.saving.register_keras_serializable(package="tfcompress")
class SeparableConv2DInLayers(keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` computed by two sublayers.

    Its weights are those of `SeparableConv2D`, in the same order
    (depthwise kernel, pointwise kernel, bias), held by the sublayers
    `depthwise` (a `DepthwiseConv2D`, strides and dilation included) and
    `pointwise` (a 1x1 `Conv2D` with the bias and the activation).

    Args:
        **kwargs: `keras.layers.SeparableConv2D` arguments.

    Example:

    ```python
    layer = SeparableConv2DInLayers(8, 3, padding="same")
    y = layer(np.ones((1, 6, 6, 4), "float32"))  # (1, 6, 6, 8)
    ```
    """

    def build(self, input_shape):
        if self.data_format != "channels_last":
            raise ValueError(
                "SeparableConv2DInLayers computes channels-last only. "
                f"Received: data_format={self.data_format!r}"
            )
        config = self.get_config()
        self.depthwise = keras.layers.DepthwiseConv2D(
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            depth_multiplier=self.depth_multiplier,
            dilation_rate=self.dilation_rate,
            use_bias=False,
            depthwise_initializer=config["depthwise_initializer"],
            depthwise_regularizer=config["depthwise_regularizer"],
            depthwise_constraint=config["depthwise_constraint"],
            name="depthwise",
            dtype=self.dtype_policy,
        )
        self.pointwise = keras.layers.Conv2D(
            self.filters,
            1,
            activation=self.activation,
            use_bias=self.use_bias,
            kernel_initializer=config["pointwise_initializer"],
            kernel_regularizer=config["pointwise_regularizer"],
            kernel_constraint=config["pointwise_constraint"],
            bias_initializer=config["bias_initializer"],
            bias_regularizer=config["bias_regularizer"],
            bias_constraint=config["bias_constraint"],
            name="pointwise",
            dtype=self.dtype_policy,
        )
        self.depthwise.build(input_shape)
        self.pointwise.build(
            self.depthwise.compute_output_shape(input_shape)
        )
        self.built = True

    def call(self, inputs):
        return self.pointwise(self.depthwise(inputs))
