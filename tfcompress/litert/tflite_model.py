"""The parts of a `.tflite` file: its tensors, their quantization, its ops.

`inspect_tflite` reads them (see `tfcompress.litert.inspection`).
"""

import dataclasses

from tfcompress.litert.byte_size import format_size
from tfcompress.report import Row


@dataclasses.dataclass(frozen=True)
class TensorQuantization:
    """Affine quantization of one tensor: `real = scale * (q - zero_point)`.

    Attributes:
        scales: The scales, one per tensor (per-tensor) or one per slice
            along `axis` (per-channel).
        zero_points: The zero points, as many as `scales`.
        axis: The quantized dimension of a per-channel tensor (0 for a
            `CONV_2D` or `FULLY_CONNECTED` kernel, 3 for a
            `DEPTHWISE_CONV_2D` kernel), `None` for a per-tensor one.
    """

    scales: tuple
    zero_points: tuple
    axis: int | None

    @property
    def num_scales(self):
        """The number of scales: 1 per tensor, or 1 per channel."""
        return len(self.scales)

    @property
    def granularity(self):
        """`"per-channel"` or `"per-tensor"`."""
        return "per-tensor" if self.axis is None else "per-channel"

    def to_dict(self):
        """Returns the quantization as a JSON-serializable `dict`."""
        return {
            "granularity": self.granularity,
            "num_scales": self.num_scales,
            "axis": self.axis,
            "scales": list(self.scales),
            "zero_points": list(self.zero_points),
        }

    def __str__(self):
        if self.axis is None:
            return (
                f"per-tensor (scale {self.scales[0]:.4g}, "
                f"zero point {self.zero_points[0]})"
            )
        return f"per-channel ({self.num_scales} scales, axis {self.axis})"


@dataclasses.dataclass(frozen=True)
class TFLiteTensor(Row):
    """One tensor of a `.tflite` file.

    Attributes:
        index: The tensor's index in its subgraph.
        name: The tensor's name.
        dtype: The element type, a NumPy-style name (`"float32"`, `"int8"`,
            `"int32"`, `"float16"`, ...).
        shape: The shape, with `None` for a dimension that is only known at
            run time (usually the batch).
        constant_bytes: Bytes of constant data stored in the file (weights,
            biases, other constants); `0` for a tensor computed at run time.
        quantization: A `TensorQuantization`, or `None` for a tensor that is
            not quantized.
    """

    index: int
    name: str
    dtype: str
    shape: tuple
    constant_bytes: int
    quantization: TensorQuantization | None

    @property
    def is_constant(self):
        """Whether the tensor's values are stored in the file."""
        return self.constant_bytes > 0

    def __str__(self):
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        text = f"{self.dtype}[{dims}]"
        if self.is_constant:
            extra = [format_size(self.constant_bytes)]
            quantization = self.quantization
            if quantization is not None and quantization.axis is not None:
                extra.append(f"{quantization.num_scales} scales")
            text += f" ({', '.join(extra)})"
        return text


@dataclasses.dataclass(frozen=True)
class TFLiteOp(Row):
    """One op of a `.tflite` file.

    Attributes:
        index: The op's position in its subgraph's execution order.
        name: The builtin op name as LiteRT spells it (`"CONV_2D"`,
            `"DEPTHWISE_CONV_2D"`, `"FULLY_CONNECTED"`, `"QUANTIZE"`, ...),
            or the custom code of a custom op (`"FlexErf"` for a Flex op).
        activation: The fused activation (`"NONE"`, `"RELU"`, `"RELU6"`,
            `"RELU_N1_TO_1"`, `"TANH"`, `"SIGN_BIT"`) of an op that can fuse
            one; `None` for an op that cannot; `"unknown"` when the file
            uses options newer than the schema this runtime knows.
        inputs: The input tensors, `TFLiteTensor`s. Optional inputs the op
            does without (such as a missing bias) are left out.
        outputs: The output tensors, `TFLiteTensor`s.
        subgraph: The index of the op's subgraph; `0` is the main graph,
            others are bodies of control flow ops.
    """

    index: int
    name: str
    activation: str | None
    inputs: tuple
    outputs: tuple
    subgraph: int = 0
