"""The main job end to end: train, compress, export, run in LiteRT, compare.

`tfcompress demo` trains a small MobileNetV2-style classifier made of
tfcompress layers on scikit-learn's digits, profiles it, prunes a copy to
80% sparsity while fine-tuning, fine-tunes another copy with
quantization-aware training, trains a plain CNN and factorizes it (CP and
SVD), distills the model into a student with 24x fewer MACs (and trains
that student alone for comparison), exports float32, int8 (post-training,
with the converter's and with MSE calibration), QAT int8, pruned int8,
decomposed int8 and student int8 TFLite files, verifies each against its
Keras model in the LiteRT interpreter and prints one table of size,
accuracy and latency.

`run` holds `run_demo`, `steps` each way of compressing, `table` the rows
and their table, `results` the table saved as Markdown, JSON and a PNG
beside the files.
"""

from tfcompress.demo.results import format_markdown
from tfcompress.demo.run import run_demo
from tfcompress.demo.table import DemoRow
from tfcompress.demo.table import format_table

__all__ = ["DemoRow", "format_markdown", "format_table", "run_demo"]
