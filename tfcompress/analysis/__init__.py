"""Model analysis: a per-layer profile of parameters, MACs and bytes.

`profile(model)` returns a `ProfileReport` with one `LayerProfile` row per
layer; `print(report)` shows it as a table. See
`tfcompress.analysis.layer_costs` for how MACs are counted.
"""

from tfcompress.analysis.profiler import LayerProfile
from tfcompress.analysis.profiler import ProfileReport
from tfcompress.analysis.profiler import profile

__all__ = ["LayerProfile", "ProfileReport", "profile"]
