"""CP-factorized convolution (Lebedev et al. 2015)."""

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.registry import register_layer
from tfcompress.layers.sublayers import build_in_sequence
from tfcompress.layers.weighted_layer import WeightedLayer
from tfcompress.quantization.quantize_rules import QuantizeRule


@keras.saving.register_keras_serializable(package="tfcompress")
class CPConv2D(WeightedLayer):
    """A kxk convolution of CP rank R, run as four small convolutions.

    Lebedev et al. (2015) write a convolution kernel `K[h, w, s, t]` (kernel
    height and width, S input and T output channels) as a sum of R
    rank-one terms, `sum_r U_s[s, r] U_h[h, r] U_w[w, r] U_t[t, r]`, and
    compute it as a sequence:

    1. a 1x1 convolution from S to R channels (`U_s`),
    2. a depthwise kx1 convolution on the R channels (`U_h`, vertical
       stride),
    3. a depthwise 1xk convolution on the R channels (`U_w`, horizontal
       stride),
    4. a 1x1 convolution from R to T channels (`U_t`), with the bias.

    Parameters and MACs per output position drop from `k * k * S * T` to
    `R * (S + 2k + T)` (the vertical pass runs on more rows when strided).
    Train it from scratch, or fill it from a trained kernel's CP factors
    with `CPConv2D.from_factors`.

    Args:
        filters: Positive integer, number of output channels T.
        kernel_size: Integer or tuple of 2 integers, kernel height and width.
        rank: Positive integer, the CP rank R.
        strides: Integer or tuple of 2 integers. Defaults to `1`.
        padding: `"valid"` or `"same"`, as for `Conv2D`. Defaults to
            `"valid"`.
        activation: Activation applied to the output. Defaults to `None`.
        use_bias: Whether the output has a bias. Defaults to `True`.
        kernel_initializer: Initializer of the four factors. Defaults to
            `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        kernel_regularizer: Optional regularizer applied to the factors.
        bias_regularizer: Optional regularizer applied to the bias.
        activity_regularizer: Optional regularizer applied to the output.
        kernel_constraint: Optional constraint applied to the factors.
        bias_constraint: Optional constraint applied to the bias.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)`.

    Output shape:
        4D tensor `(batch_size, new_height, new_width, filters)`, as a
        `Conv2D` with the same arguments gives.

    Example:

    >>> layer = CPConv2D(64, kernel_size=3, rank=8, padding="same")
    >>> tuple(layer(keras.ops.zeros((1, 16, 16, 32))).shape)
    (1, 16, 16, 64)
    >>> layer.count_params()  # a Conv2D would have 3*3*32*64 + 64 = 18496
    880
    """

    def __init__(
        self,
        filters,
        kernel_size,
        rank,
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
        self.rank = argument_validation.positive_int("rank", rank)
        self.strides = argument_validation.int_pair("strides", strides)
        self.padding = argument_validation.padding_mode(padding)

        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        self.input_projection = keras.layers.Conv2D(
            self.rank,
            1,
            use_bias=False,
            **self.kernel_arguments(),
            name="input_projection",
        )
        # Padding the kx1 and 1xk passes separately pads exactly as the kxk
        # kernel would, because each pass only touches its own axis.
        self.vertical = keras.layers.DepthwiseConv2D(
            (kh, 1),
            strides=(sh, 1),
            padding=self.padding,
            use_bias=False,
            **self.kernel_arguments(prefix="depthwise"),
            name="vertical",
        )
        self.horizontal = keras.layers.DepthwiseConv2D(
            (1, kw),
            strides=(1, sw),
            padding=self.padding,
            use_bias=False,
            **self.kernel_arguments(prefix="depthwise"),
            name="horizontal",
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
        return (
            self.input_projection,
            self.vertical,
            self.horizontal,
            self.output_projection,
        )

    def build(self, input_shape):
        argument_validation.channels_last("CPConv2D", input_shape)
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
        """Returns the CP factors `(U_s, U_h, U_w, U_t)` as numpy arrays.

        Shapes `(S, R)`, `(kh, R)`, `(kw, R)` and `(T, R)`; see
        `full_kernel()` for the kxk kernel they stand for.
        """
        if not self.built:
            raise ValueError(
                "CPConv2D.factors() needs a built layer: call it on an input "
                "or call `build(input_shape)` first."
            )
        u_s = keras.ops.convert_to_numpy(self.input_projection.kernel)[0, 0]
        u_h = keras.ops.convert_to_numpy(self.vertical.kernel)[:, 0, :, 0]
        u_w = keras.ops.convert_to_numpy(self.horizontal.kernel)[0, :, :, 0]
        u_t = keras.ops.convert_to_numpy(self.output_projection.kernel)[0, 0]
        return u_s, u_h, u_w, u_t.T

    def full_kernel(self):
        """The full kernel the factors are equivalent to, as numpy.

        Shape `(kh, kw, S, T)`, with `kernel[h, w, s, t] =
        sum_r U_s[s, r] U_h[h, r] U_w[w, r] U_t[t, r]`: a `Conv2D` with this
        kernel and the same bias, strides, padding and activation computes
        what this layer computes.
        """
        return np.einsum("sr,hr,wr,tr->hwst", *self.factors(), optimize=True)

    @classmethod
    def from_factors(
        cls,
        input_factor,
        vertical_factor,
        horizontal_factor,
        output_factor,
        bias=None,
        **kwargs,
    ):
        """Makes a built `CPConv2D` from given CP factors.

        Args:
            input_factor: Array `(S, R)`, the input-channel factor `U_s`.
            vertical_factor: Array `(kh, R)`, the kernel-height factor `U_h`.
            horizontal_factor: Array `(kw, R)`, the kernel-width factor
                `U_w`.
            output_factor: Array `(T, R)`, the output-channel factor `U_t`;
                scale it by the CP weights (lambda) before passing it.
            bias: Optional array `(T,)`. When given, `use_bias=True`.
            **kwargs: Other constructor arguments (`strides`, `padding`,
                `activation`, `name`, ...). `filters`, `kernel_size` and
                `rank` follow from the factors.

        Returns:
            A built `CPConv2D` whose kernel is
            `einsum("sr,hr,wr,tr->hwst", U_s, U_h, U_w, U_t)`.
        """
        factors = {
            "input_factor": np.asarray(input_factor, dtype="float32"),
            "vertical_factor": np.asarray(vertical_factor, dtype="float32"),
            "horizontal_factor": np.asarray(
                horizontal_factor, dtype="float32"
            ),
            "output_factor": np.asarray(output_factor, dtype="float32"),
        }
        shapes = {name: f.shape for name, f in factors.items()}
        ranks = {f.shape[-1] for f in factors.values() if f.ndim == 2}
        if any(f.ndim != 2 for f in factors.values()) or len(ranks) != 1:
            raise ValueError(
                "CP factors must be 2-D arrays with the same number of "
                f"columns (the rank). Received shapes: {shapes}"
            )
        for name in ("filters", "kernel_size", "rank"):
            if name in kwargs:
                raise ValueError(
                    f"`{name}` follows from the factors; do not pass it to "
                    f"from_factors. Received: {name}={kwargs[name]!r}"
                )
        u_s, u_h, u_w, u_t = factors.values()
        if bias is not None:
            bias = np.asarray(bias, dtype="float32")
            if bias.shape != (u_t.shape[0],):
                raise ValueError(
                    f"`bias` must have shape ({u_t.shape[0]},), one value per "
                    f"output channel. Received: bias.shape={bias.shape}"
                )
        layer = cls(
            filters=u_t.shape[0],
            kernel_size=(u_h.shape[0], u_w.shape[0]),
            rank=u_s.shape[1],
            use_bias=bias is not None,
            **kwargs,
        )
        layer.build((None, None, None, u_s.shape[0]))
        layer.input_projection.kernel.assign(u_s[None, None])
        layer.vertical.kernel.assign(u_h[:, None, :, None])
        layer.horizontal.kernel.assign(u_w[None, :, :, None])
        layer.output_projection.kernel.assign(u_t.T[None, None])
        if bias is not None:
            layer.output_projection.bias.assign(bias)
        return layer

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "rank": self.rank,
            "strides": self.strides,
            "padding": self.padding,
        }
        return {**base_config, **config}


# Channel rule (structured pruning): the output projection's filters are
# the output channels; the input projection reads the input's channels.
def _channel_rule(trace, node, layer, in_maps):
    in_map = trace.single(in_maps)
    projection = layer.output_projection
    unit = trace.new_unit(
        layer,
        layer.name,
        layer.filters,
        [(projection.kernel, -1)],
        projection.bias,
    )
    trace.slice(layer, layer.input_projection.kernel, -2, in_map)
    trace.slice(layer, projection.kernel, -1, unit.map)
    trace.slice(layer, projection.bias, 0, unit.map)
    trace.resize(layer, lambda plan: {"filters": plan.count(unit)})
    return [unit.map]


register_layer(
    CPConv2D,
    channels=_channel_rule,
    quantize=QuantizeRule.inline(),
)
