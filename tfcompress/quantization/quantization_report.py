"""What `quantize_model` did to each layer: `QuantizationReport`."""

import dataclasses

from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

INT8 = "int8"
FLOAT = "float"
NOT_SELECTED = "not selected by filters"


@dataclasses.dataclass(frozen=True)
class QuantizationRow(Row):
    """One layer with weights, and whether its kernels are rounded.

    Attributes:
        name: Path of the layer in the input model, e.g. `"block1/expand"`.
        layer_type: Class name of the layer.
        status: `"int8"` (its kernels are rounded to the int8 grid in the
            forward pass, per output channel) or `"float"` (its kernels are
            not rounded in training).
        reason: Why a `"float"` layer is left in float; empty for
            `"int8"`. A layer without an int8 rewrite (e.g.
            `LayerNormalization`) stays float in the `.tflite` file too. A
            layer `"not selected by filters"` is float in training only:
            its inputs and outputs carry int8 ranges, so the converter
            stores its kernels in int8 all the same, with the per-channel
            scales `quantize_model` would have simulated.
    """

    name: str
    layer_type: str
    status: str
    reason: str = ""


@dataclasses.dataclass(frozen=True, repr=False)
class QuantizationReport(Report):
    """What `quantize_model` did to each layer.

    `str(report)` (or `report.table()`) lists the layers; `report.row(path)`
    is one layer's row; `to_dict()` adds `quantized` and `float_layers`.
    Batch normalization layers, which the converter folds into the layer
    before them, have no row.

    Attributes:
        model_name: Name of the input model.
        rows: One `QuantizationRow` per layer with weights, in the order
            of the model's graph.
        output_quantizers: Number of `ActivationQuantizer`s inserted (one per
            tensor that gets its own int8 scale in TFLite).
        weight_bits: Bits simulated for kernels.
        activation_bits: Bits simulated for activations.
        sparse_kernels: `(path, sparsity)` of each kernel whose zeros are
            held through training (`preserve_sparsity=True`), paths in the
            quantization-aware model.
        per_channel_weights: Whether kernels get one int8 scale per output
            channel (`True`) or one per kernel.
    """

    model_name: str
    rows: tuple
    output_quantizers: int
    weight_bits: int
    activation_bits: int
    sparse_kernels: tuple = ()
    per_channel_weights: bool = True

    summary = ("quantized", "float_layers")

    @property
    def quantized(self):
        """Paths of the layers whose kernels are rounded to int8."""
        return tuple(row.name for row in self.rows if row.status == INT8)

    @property
    def float_layers(self):
        """`(path, reason)` for each layer with weights left in float."""
        return tuple(
            (row.name, row.reason) for row in self.rows if row.status == FLOAT
        )

    def table(self):
        """Returns the layers as a fixed-width text table."""
        lines = [
            f"quantize_model: {len(self.quantized)} layers with "
            f"{self.weight_bits}-bit kernels"
            f"{'' if self.per_channel_weights else ' (one scale per kernel)'}, "
            f"{self.output_quantizers} "
            f"{self.activation_bits}-bit activation quantizers",
        ]
        if self.sparse_kernels:
            held = ", ".join(
                f"{path} {sparsity:.1%}" for path, sparsity in self.sparse_kernels
            )
            lines.append(f"zeros held through training: {held}")
        table = format_table(
            ("Mode", "Layer (type)", "Reason"),
            [
                (row.status, f"{row.name} ({row.layer_type})", row.reason)
                for row in self.rows
            ],
            right_aligned=(False, False, False),
        )
        lines += [f"  {line}" for line in table]
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"<QuantizationReport model_name={self.model_name!r} "
            f"quantized={len(self.quantized)} "
            f"float_layers={len(self.float_layers)}>"
        )
