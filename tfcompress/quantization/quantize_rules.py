"""How `quantize_model` rewrites each kind of layer: `QuantizeRule`.

A layer class's quantize rule is registered with
`tfcompress.graph.register_layer(..., quantize=QuantizeRule.<kind>(...))`;
the rules of Keras's layers are in `tfcompress.keras_layers`. The kinds
follow what the TFLite converter does with each op:

- `kernel(twin)`: a layer whose kernel TFLite stores as int8 (Conv2D,
  Dense): replaced by `twin`, the same layer computing with its kernel
  rounded per output channel. A batch norm and a ReLU right after it fuse
  into its op, so no activation rounding sits between them.
- `rounded_kernels({attribute: output_axis})`: the same for a layer of
  your own, through the `RoundedKernels` wrapper (no twin class to write).
- `batch_norm()`: folded into the conv before it; a ReLU after it fuses.
- `add()`: an addition; a ReLU after it fuses into it.
- `relu(applies)`: a ReLU / ReLU6, which TFLite fuses into the op before.
- `keeps_input_scale()`: max pooling, reshapes, padding, ...: the int8
  output has the input's scale, so no rounding after it.
- `input_scale()`: an op whose int8 output keeps its input's scale but
  falls between its levels (average pooling rounds its means to them):
  rounded again on the input's range, by the input's own quantizer.
- `own_scale()`: an op whose int8 output gets a scale of its own
  (average pooling, concatenation, GELU): rounded after it. Layers
  without weights and without a rule are treated so.
- `concatenation()`: an op whose int8 output gets a scale of its own
  that TFLite also imposes on its inputs: the converter requantizes each
  input, or, for an input that comes through ops keeping their input's
  scale (max pooling, reshapes), the tensor before them, which changes
  what their other readers see. Inputs of that kind are rounded again on
  their own range, so that the converter requantizes right before it.
- `inline()`: a composite layer quantized through its sublayers (it is
  inlined into the flat graph first).
- `keep_float(reason)`: left in float32 on purpose, e.g. no int8 kernel in
  TFLite; the report gives the reason.
- `fixed_range(min, max)`: an op whose int8 output has a range fixed by
  TFLite (softmax: `[0, 255/256]`, scale 1/256): rounded on that range.
- `lookup(twin)`: a table lookup (Embedding): replaced by `twin`, the same
  layer reading its table rounded per tensor; TFLite's GATHER output keeps
  the table's scale, so no rounding after it.
- `folds_into_kernel()`: a per-channel scale by a constant (ConvNeXt's
  `LayerScale`) that the converter folds into the conv / dense before it,
  as it folds a batch norm: no rounding between them.
- `lowered(twin)`: a layer TFLite lowers to several integer ops (layer
  normalization): replaced by `twin`, the same layer rounding each
  intermediate tensor and constant where TFLite does.
- `per_layer(choose)`: the rule depends on the layer's config
  (`Activation("relu")` fuses, `Activation("linear")` keeps its input's
  scale): `choose(layer)` returns the rule.

A layer with weights and no rule is left float and reported.
"""

import dataclasses

# TFLite's int8 softmax output: scale 1/256, zero point -128.
SOFTMAX_RANGE = (0.0, 255.0 / 256.0)
# TFLite's int8 LOGISTIC output: scale 1/256, zero point -128.
SIGMOID_RANGE = (0.0, 255.0 / 256.0)
# TFLite's int8 TANH output: scale 1/128, zero point 0.
TANH_RANGE = (-1.0, 127.0 / 128.0)

KINDS = (
    "kernel",
    "rounded_kernels",
    "batch_norm",
    "add",
    "relu",
    "keeps_input_scale",
    "input_scale",
    "own_scale",
    "concatenation",
    "inline",
    "keep_float",
    "fixed_range",
    "lookup",
    "folds_into_kernel",
    "lowered",
    "per_layer",
)


@dataclasses.dataclass(frozen=True)
class QuantizeRule:
    """What quantization-aware training does with one layer class.

    Build it with one of the class methods; see the module docstring.

    Attributes:
        kind: One of `KINDS`.
        twin: For `"kernel"` and `"lookup"`: the layer class computing
            with a rounded kernel or table (built from the original's
            config plus `weight_bits`); for `"lowered"`: the layer class
            rounding its intermediates (config plus `weight_bits` and
            `activation_bits`); for `"inline"`, optionally, the subclass
            whose `call()` is inlined in the layer's place (same config and
            weights), e.g. one computing in ops TFLite quantizes.
        kernels: For `"rounded_kernels"`: `{attribute: output_axis}`.
        reason: For `"keep_float"`: why the layer stays float.
        applies: For `"relu"`: `fn(layer) -> bool`, whether this layer is
            a plain ReLU / ReLU6 that TFLite fuses (e.g. not a leaky one).
        exact: Whether the rule applies to the registered class only, not
            to its subclasses (a subclass may compute something else with
            its kernel).
        output_range: For `"fixed_range"`: `(min, max)` of the output.
        choose: For `"per_layer"`: `fn(layer) -> QuantizeRule`.
    """

    kind: str
    twin: type | None = None
    kernels: dict | None = None
    reason: str = ""
    applies: object = None
    exact: bool = False
    output_range: tuple | None = None
    choose: object = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"`kind` must be one of {KINDS}. Received: kind={self.kind!r}"
            )

    @classmethod
    def kernel(cls, twin):
        """Kernel rounded per output channel, through the `twin` class."""
        return cls("kernel", twin=twin, exact=True)

    @classmethod
    def rounded_kernels(cls, kernels):
        """Kernels of a layer of your own, rounded per output channel.

        Args:
            kernels: `{attribute: output_axis}`, e.g. `{"kernel": -1}`: the
                layer's `call()` must read each kernel as `self.<attribute>`.
                The axis `None` rounds a weight per tensor, as TFLite stores
                the constant operand of an element-wise op (ADD, MUL).
        """
        if not isinstance(kernels, dict) or not kernels:
            raise ValueError(
                "`kernels` must be a non-empty dict {attribute: "
                f"output_channel_axis}}. Received: kernels={kernels!r}"
            )
        return cls("rounded_kernels", kernels=dict(kernels))

    @classmethod
    def batch_norm(cls):
        """Batch normalization, folded into the op before it."""
        return cls("batch_norm", exact=True)

    @classmethod
    def add(cls):
        """An addition; a ReLU right after it fuses into it."""
        return cls("add")

    @classmethod
    def relu(cls, applies=None):
        """A ReLU / ReLU6 that TFLite fuses into the op before it."""
        return cls("relu", applies=applies)

    @classmethod
    def keeps_input_scale(cls):
        """An op whose int8 output keeps its input's scale."""
        return cls("keeps_input_scale")

    @classmethod
    def input_scale(cls):
        """An op whose int8 output is rounded to its input's scale."""
        return cls("input_scale")

    @classmethod
    def concatenation(cls):
        """A concatenation: own output scale, imposed on its inputs."""
        return cls("concatenation")

    @classmethod
    def own_scale(cls):
        """An op whose int8 output gets a scale of its own."""
        return cls("own_scale")

    @classmethod
    def inline(cls, twin=None):
        """A composite layer, quantized through its sublayers.

        Args:
            twin: Optional layer class whose `call()` is inlined instead,
                built from the layer's config and given its weights (a
                subclass, or a class taking the same config), e.g. one
                that computes in ops TFLite can quantize where the layer
                itself would use a fused op or a loop. Defaults to `None`:
                the layer's own `call()`.
        """
        return cls("inline", twin=twin)

    @classmethod
    def keep_float(cls, reason):
        """Left in float32 on purpose; `reason` goes into the report."""
        if not isinstance(reason, str) or not reason:
            raise ValueError(
                "`reason` must say why the layer stays float. "
                f"Received: reason={reason!r}"
            )
        return cls("keep_float", reason=reason)

    def is_relu(self, layer):
        """Whether `layer` is a ReLU TFLite fuses into the op before it."""
        return self.kind == "relu" and (
            self.applies is None or bool(self.applies(layer))
        )

    # Kinds added for transformer and text layers.

    @classmethod
    def fixed_range(cls, minimum, maximum):
        """An op whose int8 output range TFLite fixes (softmax).

        Args:
            minimum: The smallest value of the range.
            maximum: The largest value of the range, above `minimum`.
        """
        if not minimum < maximum:
            raise ValueError(
                "`fixed_range` needs minimum < maximum. Received: "
                f"minimum={minimum!r}, maximum={maximum!r}"
            )
        return cls("fixed_range", output_range=(float(minimum), float(maximum)))

    @classmethod
    def lookup(cls, twin):
        """A table lookup, through `twin` reading its table rounded."""
        return cls("lookup", twin=twin, exact=True)

    @classmethod
    def folds_into_kernel(cls):
        """A per-channel constant scale folded into the kernel op before."""
        return cls("folds_into_kernel")

    @classmethod
    def lowered(cls, twin):
        """A layer lowered to several int8 ops, through `twin` rounding
        each of their outputs."""
        return cls("lowered", twin=twin, exact=True)

    @classmethod
    def per_layer(cls, choose):
        """A rule chosen per layer: `choose(layer)` returns the rule."""
        if not callable(choose):
            raise ValueError(
                "`choose` must be a function layer -> QuantizeRule. "
                f"Received: choose={choose!r}"
            )
        return cls("per_layer", choose=choose)

    def resolve(self, layer):
        """The rule that applies to `layer` (`choose(layer)` if per layer)."""
        if self.kind != "per_layer":
            return self
        rule = self.choose(layer)
        if not isinstance(rule, QuantizeRule) or rule.kind == "per_layer":
            raise ValueError(
                "A per_layer rule must choose a QuantizeRule of another "
                f"kind. Received: {rule!r} for layer "
                f"{getattr(layer, 'name', layer)!r}"
            )
        return rule
