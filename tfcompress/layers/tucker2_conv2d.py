"""Tucker-2 factorized convolution (Kim et al. 2016)."""

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.sublayers import build_in_sequence
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class Tucker2Conv2D(WeightedLayer):
    """A kxk convolution through a small core: 1x1, kxk, then 1x1.

    A Tucker-2 decomposition (Kim et al. 2016) writes a convolution kernel
    `K[h, w, s, t]` (kernel height and width, S input and T output
    channels) as a small core `G[h, w, a, b]` of `r_in` x `r_out` channels
    between two channel projections,
    `K[h, w, s, t] = sum_ab G[h, w, a, b] U_in[s, a] U_out[t, b]`, and
    computes it as a sequence:

    1. a 1x1 convolution from S to `r_in` channels (`U_in`),
    2. a kxk convolution from `r_in` to `r_out` channels (the core, with
       the strides and padding),
    3. a 1x1 convolution from `r_out` to T channels (`U_out`), with the
       bias and activation.

    Unlike CP (`CPConv2D`), the kxk window stays a full convolution, so the
    spatial structure of the kernel is kept. MACs per output position drop
    from `k * k * S * T` to `k * k * r_in * r_out + r_out * T`, plus
    `S * r_in` per input position for the first projection. Train it from
    scratch, or fill it from a trained kernel's Tucker-2 factors with
    `Tucker2Conv2D.from_factors`.

    Args:
        filters: Positive integer, number of output channels T.
        kernel_size: Integer or tuple of 2 integers, kernel height and width.
        ranks: Integer or tuple of 2 integers `(r_in, r_out)`, the channels
            of the core's input and output. An integer sets both.
        strides: Integer or tuple of 2 integers, strides of the core.
            Defaults to `1`.
        padding: `"valid"` or `"same"`, padding of the core, as for
            `Conv2D`. Defaults to `"valid"`.
        activation: Activation applied to the output. Defaults to `None`.
        use_bias: Whether the output has a bias. Defaults to `True`.
        kernel_initializer: Initializer of the three kernels. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer applied to the three
            kernels.
        bias_regularizer: Optional regularizer applied to the bias.
        activity_regularizer: Optional regularizer applied to the output.
        kernel_constraint: Optional constraint applied to the three
            kernels.
        bias_constraint: Optional constraint applied to the bias.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`, as a
        `Conv2D` with the same arguments gives.

    Example:

    >>> layer = Tucker2Conv2D(64, kernel_size=3, ranks=(8, 16), padding="same")
    >>> tuple(layer(keras.ops.zeros((1, 16, 16, 32))).shape)
    (1, 16, 16, 64)
    >>> layer.count_params()  # a Conv2D would have 3*3*32*64 + 64 = 18496
    2496
    """

    def __init__(
        self,
        filters,
        kernel_size,
        ranks,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.filters = argument_validation.positive_int("filters", filters)
        self.kernel_size = argument_validation.int_pair(
            "kernel_size", kernel_size
        )
        self.ranks = argument_validation.int_pair("ranks", ranks)
        self.strides = argument_validation.int_pair("strides", strides)
        self.padding = argument_validation.padding_mode(padding)

        rank_in, rank_out = self.ranks
        # No bias before the core: zero padding of the projected input then
        # equals the projection of the zero-padded input, so the block is
        # exactly a convolution with the reconstructed kernel.
        self.input_projection = keras.layers.Conv2D(
            rank_in,
            1,
            use_bias=False,
            **self.kernel_arguments(),
            name="input_projection",
        )
        self.core = keras.layers.Conv2D(
            rank_out,
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=False,
            **self.kernel_arguments(),
            name="core",
        )
        self.output_projection = keras.layers.Conv2D(
            self.filters,
            1,
            activation=self.activation,
            **self.kernel_arguments(),
            **self.bias_arguments(),
            name="output_projection",
        )

    @property
    def _stages(self):
        return (self.input_projection, self.core, self.output_projection)

    def build(self, input_shape):
        argument_validation.channels_last("Tucker2Conv2D", input_shape)
        build_in_sequence(self._stages, input_shape)

    def call(self, inputs):
        x = inputs
        for layer in self._stages:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self._stages:
            shape = layer.compute_output_shape(shape)
        return shape

    def factors(self):
        """Returns the Tucker-2 factors `(U_in, core, U_out)` as numpy.

        Shapes `(S, r_in)`, `(kh, kw, r_in, r_out)` and `(T, r_out)`; see
        `full_kernel()` for the kernel they stand for.
        """
        if not self.built:
            raise ValueError(
                "Tucker2Conv2D.factors() needs a built layer: call it on an "
                "input or call `build(input_shape)` first."
            )
        u_in = keras.ops.convert_to_numpy(self.input_projection.kernel)[0, 0]
        core = keras.ops.convert_to_numpy(self.core.kernel)
        u_out = keras.ops.convert_to_numpy(self.output_projection.kernel)
        return u_in, core, u_out[0, 0].T

    def full_kernel(self):
        """The full kernel the factors are equivalent to, as numpy.

        Shape `(kh, kw, S, T)`, with `kernel[h, w, s, t] =
        sum_ab core[h, w, a, b] U_in[s, a] U_out[t, b]`: a `Conv2D` with
        this kernel and the same bias, strides, padding and activation
        computes what this layer computes.
        """
        u_in, core, u_out = self.factors()
        return np.einsum("hwab,sa,tb->hwst", core, u_in, u_out, optimize=True)

    @classmethod
    def from_factors(
        cls,
        input_factor,
        core,
        output_factor,
        bias=None,
        **kwargs,
    ):
        """Makes a built `Tucker2Conv2D` from given Tucker-2 factors.

        Args:
            input_factor: Array `(S, r_in)`, the input-channel factor
                `U_in`.
            core: Array `(kh, kw, r_in, r_out)`, the core kernel.
            output_factor: Array `(T, r_out)`, the output-channel factor
                `U_out`.
            bias: Optional array `(T,)`. When given, `use_bias=True`.
            **kwargs: Other constructor arguments (`strides`, `padding`,
                `activation`, `name`, ...). `filters`, `kernel_size` and
                `ranks` follow from the factors.

        Returns:
            A built `Tucker2Conv2D` whose kernel is
            `einsum("hwab,sa,tb->hwst", core, U_in, U_out)`.
        """
        u_in = np.asarray(input_factor, dtype="float32")
        core = np.asarray(core, dtype="float32")
        u_out = np.asarray(output_factor, dtype="float32")
        if (
            u_in.ndim != 2
            or core.ndim != 4
            or u_out.ndim != 2
            or core.shape[2:] != (u_in.shape[1], u_out.shape[1])
        ):
            raise ValueError(
                "Tucker-2 factors must be `input_factor` (S, r_in), `core` "
                "(kh, kw, r_in, r_out) and `output_factor` (T, r_out). "
                f"Received shapes: input_factor={u_in.shape}, "
                f"core={core.shape}, output_factor={u_out.shape}"
            )
        for name in ("filters", "kernel_size", "ranks"):
            if name in kwargs:
                raise ValueError(
                    f"`{name}` follows from the factors; do not pass it to "
                    f"from_factors. Received: {name}={kwargs[name]!r}"
                )
        if bias is not None:
            bias = np.asarray(bias, dtype="float32")
            if bias.shape != (u_out.shape[0],):
                raise ValueError(
                    f"`bias` must have shape ({u_out.shape[0]},), one value "
                    f"per output channel. Received: bias.shape={bias.shape}"
                )
        layer = cls(
            filters=u_out.shape[0],
            kernel_size=core.shape[:2],
            ranks=core.shape[2:],
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, None, None, u_in.shape[0]))
        layer.input_projection.kernel.assign(u_in[None, None])
        layer.core.kernel.assign(core)
        layer.output_projection.kernel.assign(u_out.T[None, None])
        if bias is not None:
            layer.output_projection.bias.assign(bias)
        return layer

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "ranks": self.ranks,
            "strides": self.strides,
            "padding": self.padding,
        }
        return {**base_config, **config}


register_layer(Tucker2Conv2D, quantize=QuantizeRule.inline())
