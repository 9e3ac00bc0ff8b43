"""The long-running tools take Keras's `verbose`: 0 silent, 1 / 2 / "auto"
progress lines (True / False still mean 1 / 0), anything else an error."""

import keras
import numpy as np
import pytest

from tfcompress.decomposition import decompose
from tfcompress.decomposition import rank_selection
from tfcompress.dynamic import attach_exits
from tfcompress.dynamic import export_stages
from tfcompress.dynamic import train_exits
from tfcompress.export import to_tflite
from tfcompress.pruning import prune_channels
from tfcompress.pruning import sensitivity_analysis


@pytest.fixture(scope="module")
def model():
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="logits"),
        ]
    )


def tools(model, tmp_path):
    x = np.random.default_rng(0).standard_normal((16, 6)).astype("float32")
    y = np.arange(16) % 3
    return {
        "prune_channels": lambda v: prune_channels(
            model, sparsity=0.5, verbose=v
        ),
        "decompose": lambda v: decompose(
            model, method="svd", rank=2, verbose=v
        ),
        "rank_selection": lambda v: rank_selection(
            model, ranks=[2], verbose=v
        ),
        "sensitivity_analysis": lambda v: sensitivity_analysis(
            model, data=(x, y), sparsities=(0.5,), verbose=v
        ),
        "to_tflite": lambda v: to_tflite(
            model, tmp_path / "m.tflite", quantization="float16", verbose=v
        ),
        "train_exits": lambda v: train_exits(
            attach_exits(model, at=["hidden"])[0], x, y, verbose=v
        ),
        "export_stages": lambda v: export_stages(
            attach_exits(model, at=["hidden"])[0], str(tmp_path / "stages"),
            single_file=False, verbose=v,
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "prune_channels",
        "decompose",
        "rank_selection",
        "sensitivity_analysis",
        "to_tflite",
        "train_exits",
        "export_stages",
    ],
)
def test_verbose_convention(model, tmp_path, capsys, name):
    tool = tools(model, tmp_path)[name]
    # Each export converts, each training traces: two calls are enough.
    exports = ("to_tflite", "export_stages", "train_exits")
    silent = (0,) if name in exports else (0, False)
    talking = ("auto",) if name in exports else ("auto", 1, 2, True)
    for verbose in silent:
        tool(verbose)
        assert capsys.readouterr().out == "", verbose
    for verbose in talking:
        tool(verbose)
        assert capsys.readouterr().out.strip(), verbose
    with pytest.raises(ValueError, match=r"Received: verbose='loud'"):
        tool("loud")
