"""`TFLiteExport`: what `to_tflite` wrote, and what the file computes in."""

import dataclasses

from tfcompress.litert.byte_size import format_size
from tfcompress.litert.precision import Precision
from tfcompress.litert.value_compression import ValueCompression


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What `to_tflite()` wrote.

    A `TFLiteExport` is an `os.PathLike` (its path is `.path`), so every
    function that takes a `.tflite` file takes it as well as a path.

    Attributes:
        path: Path of the `.tflite` file.
        quantization: The quantization mode requested, one of `"none"`,
            `"float16"`, `"dynamic"`, `"int8"`, `"int16x8"`.
        size_bytes: Size of the file in bytes.
        gzipped_size_bytes: Size of the file after gzip (level 9), a proxy for
            the download size of an app that ships the model compressed.
            Pruned (sparse) weights shrink here even when the raw file does
            not.
        calibration: How activation ranges were chosen (`"minmax"`,
            `"percentile"`, `"mse"`) for `"int8"` and `"int16x8"`; `None`
            for the other modes.
        keep_float: Names of the layers left in float32 (`keep_float`).
        precision: What the file's weighted ops compute in, read back from
            the written file: a `Precision` report (`.headline`,
            `.num_integer_ops`, `.num_weighted_ops`,
            `.weight_bytes_by_dtype`, `.rows` of the ops not in integer);
            `None` for `"none"`.
        value_compression: The file's constants entropy-coded, a
            `tfcompress.litert.ValueCompression`: `.huffman_bytes` (the
            weights Huffman-coded, each tensor with its own code and code
            table), `.entropy_bytes`, and `.huffman_file_bytes`, the file's
            size with its weights so stored (Deep Compression's last
            stage: what pruned and clustered int8 kernels come to).
    """

    path: str
    quantization: str
    size_bytes: int
    gzipped_size_bytes: int
    calibration: str | None = None
    keep_float: tuple = ()
    precision: Precision | None = None
    value_compression: ValueCompression | None = None

    @property
    def huffman_size_bytes(self):
        """The file's size with its weights Huffman-coded, or `None`."""
        if self.value_compression is None:
            return None
        return self.value_compression.huffman_file_bytes

    def __fspath__(self):
        return self.path

    def __str__(self):
        details = [self.quantization]
        precision = self.precision
        unrequested = ()
        if precision is not None:
            unrequested = precision.unrequested_float_ops
        if unrequested and self.quantization in ("int8", "int16x8"):
            # The file does not compute what was asked: never print a bare
            # "int8" for it.
            details = [
                f"{self.quantization} requested; {len(unrequested)} of "
                f"{precision.num_weighted_ops} weighted ops float"
            ]
        if self.calibration not in (None, "minmax"):
            details.append(f"{self.calibration} calibration")
        if self.keep_float:
            details.append(f"float32: {', '.join(self.keep_float)}")
        sizes = [format_size(self.size_bytes)]
        if self.value_compression is not None:
            sizes.append(
                f"{format_size(self.huffman_size_bytes)} with Huffman-coded "
                "weights"
            )
        sizes.append(f"{format_size(self.gzipped_size_bytes)} gzipped")
        return f"{self.path} ({'; '.join(details)}): {', '.join(sizes)}"
