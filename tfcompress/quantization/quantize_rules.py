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
- `own_scale()`: an op whose int8 output gets a scale of its own
  (softmax, average pooling, concatenation): rounded after it. Layers
  without weights and without a rule are treated so.
- `inline()`: a composite layer quantized through its sublayers (it is
  inlined into the flat graph first).
- `keep_float(reason)`: left in float32 on purpose, e.g. no int8 kernel in
  TFLite; the report gives the reason.

A layer with weights and no rule is left float and reported.
"""

import dataclasses

KINDS = (
    "kernel",
    "rounded_kernels",
    "batch_norm",
    "add",
    "relu",
    "keeps_input_scale",
    "own_scale",
    "inline",
    "keep_float",
)


@dataclasses.dataclass(frozen=True)
class QuantizeRule:
    """What quantization-aware training does with one layer class.

    Build it with one of the class methods; see the module docstring.

    Attributes:
        kind: One of `KINDS`.
        twin: For `"kernel"`: the layer class computing with a rounded
            kernel (built from the original's config plus `weight_bits`).
        kernels: For `"rounded_kernels"`: `{attribute: output_axis}`.
        reason: For `"keep_float"`: why the layer stays float.
        applies: For `"relu"`: `fn(layer) -> bool`, whether this layer is
            a plain ReLU / ReLU6 that TFLite fuses (e.g. not a leaky one).
        exact: Whether the rule applies to the registered class only, not
            to its subclasses (a subclass may compute something else with
            its kernel).
    """

    kind: str
    twin: type | None = None
    kernels: dict | None = None
    reason: str = ""
    applies: object = None
    exact: bool = False

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
    def own_scale(cls):
        """An op whose int8 output gets a scale of its own."""
        return cls("own_scale")

    @classmethod
    def inline(cls):
        """A composite layer, quantized through its sublayers."""
        return cls("inline")

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
