"""Compression under a budget: per-layer search (AMC- and HAQ-style).

- `Budget`: what the compressed model may cost (MACs, parameters, the
  `.tflite` file's bytes, LiteRT latency), absolute or as a fraction of
  the original; `measure_cost`, and `LiteRTCostMeter` for the file's.
- `fit_channel_sparsity`: uniform (or given) sparsities scaled until the
  model just fits the budget.
- `search_channel_sparsity`: each channel group's sparsity (and, with
  `decompose=`, each layer's decomposition rank), searched by Optuna's TPE
  so that the compressed model fits the budget with the best accuracy
  after a short fine-tune, against uniform sparsity at the same budget.
  Studies persist in a journal file or database, resume, and run in
  several worker processes.
- `search_precision`: each weighted op's precision (int8, int16
  activations, int4 weights, float32) on a float `.tflite` file, applied
  by ai-edge-quantizer (`pip install "tfcompress[mixed-precision]"`),
  searched by Optuna's multi-objective TPE under a `Budget` on the file
  (bytes, LiteRT latency), every candidate measured in LiteRT;
  `quantize_per_op` writes one given assignment.
- `search_architecture`: hardware-aware architecture search over a
  `SearchSpace` of tfcompress blocks (MnasNet's reward on Optuna's TPE,
  or multi-objective), each candidate trained briefly and timed in
  LiteRT; the found model is a plain `.keras` file of our layers.
"""

try:
    import optuna  # noqa: F401
except ImportError as error:
    raise ImportError(
        "tfcompress.search runs its searches on Optuna, which is not "
        'installed. Install it with: pip install "tfcompress[search]"'
    ) from error

from tfcompress.search.architecture import ArchitectureSearchReport  # noqa: E402
from tfcompress.search.architecture import ArchitectureTrial  # noqa: E402
from tfcompress.search.architecture import SearchSpace  # noqa: E402
from tfcompress.search.architecture import Stage  # noqa: E402
from tfcompress.search.architecture import mnasnet_reward  # noqa: E402
from tfcompress.search.architecture import search_architecture  # noqa: E402
from tfcompress.search.budget import Budget  # noqa: E402
from tfcompress.search.budget import Cost  # noqa: E402
from tfcompress.search.budget import measure_cost  # noqa: E402
from tfcompress.search.channel_search import fit_channel_sparsity  # noqa: E402
from tfcompress.search.channel_search import search_channel_sparsity  # noqa: E402
from tfcompress.search.litert_cost import LiteRTCostMeter  # noqa: E402
from tfcompress.search.search_report import ChannelSearchReport  # noqa: E402
from tfcompress.search.search_report import SearchTrial  # noqa: E402
from tfcompress.search.precision_recipe import quantize_per_op  # noqa: E402
from tfcompress.search.precision_recipe import weighted_ops  # noqa: E402
from tfcompress.search.precision_report import PrecisionSearchReport  # noqa: E402
from tfcompress.search.precision_report import PrecisionTrial  # noqa: E402
from tfcompress.search.precision_search import search_precision  # noqa: E402
from tfcompress.search.study_storage import storage_from  # noqa: E402

__all__ = [
    "ArchitectureSearchReport",
    "ArchitectureTrial",
    "Budget",
    "ChannelSearchReport",
    "Cost",
    "LiteRTCostMeter",
    "SearchSpace",
    "SearchTrial",
    "Stage",
    "PrecisionSearchReport",
    "PrecisionTrial",
    "fit_channel_sparsity",
    "measure_cost",
    "mnasnet_reward",
    "quantize_per_op",
    "search_architecture",
    "search_channel_sparsity",
    "search_precision",
    "storage_from",
    "weighted_ops",
]
