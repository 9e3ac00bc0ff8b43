"""Pipelines composed from tfcompress's tools.

- `compress`: a trained model to an int8 LiteRT file under a budget in
  one call (search, prune, distill, QAT, int8 export, verify), with a
  report of every step measured in LiteRT.
"""

from tfcompress.pipeline.compress_pipeline import STEPS
from tfcompress.pipeline.compress_pipeline import CompressResult
from tfcompress.pipeline.compress_pipeline import compress
from tfcompress.pipeline.compress_report import CompressReport
from tfcompress.pipeline.compress_report import CompressStep

__all__ = ["STEPS", "CompressReport", "CompressResult", "CompressStep", "compress"]
