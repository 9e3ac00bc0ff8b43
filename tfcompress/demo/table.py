"""The demo's result: one `DemoRow` per model variant, and its table."""

import dataclasses

from tfcompress import report


@dataclasses.dataclass(frozen=True)
class DemoRow(report.Row):
    """One variant of the model in the demo's table."""

    name: str
    params: int
    macs: int
    tflite_bytes: int
    gzipped_bytes: int
    keras_accuracy: float
    litert_accuracy: float
    top1_agreement: float
    latency_ms: float


COLUMNS = (
    ("model", "{.name}", "<"),
    ("params", "{.params:,}", ">"),
    ("MACs", "{.macs:,}", ">"),
    (".tflite bytes", "{.tflite_bytes:,}", ">"),
    ("gzipped", "{.gzipped_bytes:,}", ">"),
    ("Keras acc", "{.keras_accuracy:.2%}", ">"),
    ("LiteRT acc", "{.litert_accuracy:.2%}", ">"),
    ("top-1 agree", "{.top1_agreement:.2%}", ">"),
    ("median latency", "{.latency_ms:.3f} ms", ">"),
)


def format_table(rows):
    """Formats demo rows as a fixed-width text table."""
    return "\n".join(
        report.format_table(
            [title for title, _, _ in COLUMNS],
            [[cell.format(row) for _, cell, _ in COLUMNS] for row in rows],
            right_aligned=[align == ">" for _, _, align in COLUMNS],
        )
    )
