"""Budgets in LiteRT units: `.tflite` bytes and measured latency."""

import os
import re

import keras
import numpy as np
import pytest

from tfcompress.export import to_tflite
from tfcompress.litert import compare_latency
from tfcompress.pruning import prune_channels
from tfcompress.search import Budget
from tfcompress.search import Cost
from tfcompress.search import fit_channel_sparsity


@pytest.fixture(scope="module")
def mlp():
    """Wide enough that LiteRT's time is the matrix products, not overhead."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(512, activation="relu", name="hidden1"),
            keras.layers.Dense(512, activation="relu", name="hidden2"),
            keras.layers.Dense(10, name="logits"),
        ]
    )


def file_bytes_as_seconds(path):
    """A deterministic `latency_fn`: the file's size, as nanoseconds."""
    return os.path.getsize(path) * 1e-9


def test_litert_budget_fields_and_errors():
    budget = Budget(latency_ratio=0.33, tflite_bytes=10_000)
    assert budget.needs_litert and budget.needs_latency
    assert not Budget(macs_ratio=0.5).needs_litert
    assert str(budget) == "tflite_bytes <= 10,000, latency <= 0.33x"
    assert str(Budget(latency_ms=1.5)) == "latency <= 1.5 ms"
    reference = Cost(100, 10, tflite_bytes=20_000, latency_ms=2.0, latency_ratio=1.0)
    within = Cost(50, 5, tflite_bytes=9_000, latency_ms=0.6, latency_ratio=0.3)
    slow = Cost(50, 5, tflite_bytes=9_000, latency_ms=0.8, latency_ratio=0.4)
    assert budget.allows(within, reference)
    assert not budget.allows(slow, reference)
    assert budget.slack(slow, reference) == pytest.approx(0.33 / 0.4)
    with pytest.raises(ValueError, match="cost was not measured"):
        budget.allows(Cost(50, 5), reference)
    with pytest.raises(ValueError, match="not both"):
        Budget(latency_ms=1.0, latency_ratio=0.5)
    with pytest.raises(ValueError, match=r"`latency_ratio` must be a fraction"):
        Budget(latency_ratio=0.0)
    with pytest.raises(ValueError, match=r"latency_ms must|`latency_ms` must"):
        Budget(latency_ms=-2)
    with pytest.raises(ValueError, match="`tflite_bytes` must be a positive int"):
        Budget(tflite_bytes=1.5)
    with pytest.raises(ValueError, match=r"Received: tflite_bytes_ratio=nan"):
        Budget(tflite_bytes_ratio=float("nan"))


def test_latency_budget_is_met_as_measured(mlp, tmp_path):
    sparsity, cost, reference = fit_channel_sparsity(
        mlp, budget=Budget(latency_ratio=0.5), num_threads=1
    )
    assert reference.latency_ratio == 1.0 and reference.latency_ms > 0
    # Within the budget as the fit measured it, and not far under it.
    assert 0.2 < cost.latency_ratio <= 0.5, cost
    assert set(sparsity) == {"hidden1", "hidden2"}
    # Measured again, side by side with the dense float file: it holds (up
    # to the timing noise of a shared machine).
    pruned, _ = prune_channels(mlp, sparsity=sparsity, verbose=0)
    dense = to_tflite(mlp, tmp_path / "dense.tflite", verbose=0)
    small = to_tflite(pruned, tmp_path / "pruned.tflite", verbose=0)
    ms = compare_latency([dense, small], num_runs=300, rounds=3)
    assert ms[small.path] / ms[dense.path] < 0.5 * 1.3, ms


def test_int8_candidates(mlp):
    x = np.random.default_rng(0).standard_normal((16, 64)).astype("float32")
    # The int8 file alone is about a quarter of the float file's bytes, so
    # a 0.3x size budget needs no pruning.
    sparsity, cost, reference = fit_channel_sparsity(
        mlp,
        budget=Budget(tflite_bytes_ratio=0.3),
        data=x,
        quantization="int8",
    )
    assert set(sparsity.values()) == {0.0}
    assert 0.2 < cost.tflite_bytes / reference.tflite_bytes <= 0.3
    assert cost.latency_ms is None  # bytes alone: no timing


def test_unreachable_and_bad_litert_budgets(mlp):
    # A callback times the files (here: their size, so latency and bytes
    # have the same ratio); the error says how close the search got.
    with pytest.raises(ValueError, match=r"not reachable") as error:
        fit_channel_sparsity(
            mlp,
            budget=Budget(latency_ratio=0.01),
            max_sparsity=0.5,
            latency_fn=file_bytes_as_seconds,
        )
    message = str(error.value)
    found = re.search(r"(0\.\d+) of its file bytes, (0\.\d+) of its latency", message)
    assert found and found.group(1) == found.group(2), message
    assert "measured on float32 candidate files, latency_fn" in message
    with pytest.raises(ValueError, match="must be one of"):
        fit_channel_sparsity(mlp, budget=Budget(latency_ratio=0.5), quantization="int4")
    with pytest.raises(ValueError, match="`data` is needed"):
        fit_channel_sparsity(mlp, budget=Budget(tflite_bytes_ratio=0.5), quantization="int8")
    with pytest.raises(ValueError, match="must return a positive number of seconds"):
        fit_channel_sparsity(
            mlp, budget=Budget(latency_ratio=0.5), latency_fn=lambda path: 0
        )
    with pytest.raises(ValueError, match=r"`data` is empty"):
        fit_channel_sparsity(mlp, budget=Budget(macs_ratio=0.5), data=np.zeros((0, 64)))
