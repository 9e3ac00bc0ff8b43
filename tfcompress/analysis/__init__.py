"""Model analysis: a per-layer profile of parameters, MACs and bytes.

`profile(model)` returns a `ProfileReport` with one `LayerProfile` row per
layer; `print(report)` shows it as a table. See
`tfcompress.analysis.layer_costs` for how MACs are counted.
"""

from tfcompress.analysis.profile import LayerProfile
from tfcompress.analysis.profile import ProfileReport
from tfcompress.analysis.profile import profile

__all__ = ["LayerProfile", "ProfileReport", "profile"]
