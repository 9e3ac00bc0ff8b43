"""Channel search with decomposition as a per-layer choice (`decompose=`)."""

import keras
import pytest

from tfcompress.decomposition import decompose
from tfcompress.models import plain_cnn
from tfcompress.search import Budget
from tfcompress.search import measure_cost
from tfcompress.search import search_channel_sparsity

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# What `decompose(method="auto")` turns a Dense / kxk Conv2D into.
DECOMPOSED = ("LowRankDense", "LowRankConv2D", "Tucker2Conv2D")


@pytest.fixture(scope="module")
def trained(digits):
    """A tiny CNN (conv1, conv2, fc, logits), briefly trained."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = plain_cnn((8, 8, 1), num_classes=10, filters=(8, 16), dense_units=32)
    model.compile(keras.optimizers.Adam(3e-3), LOSS, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    return model, (x_train[:256], y_train[:256]), (x_test, y_test)


def test_search_picks_ranks_and_every_candidate_fits(trained):
    model, data, validation = trained
    budget = 0.6
    reference = measure_cost(model)
    compressed, report = search_channel_sparsity(
        model,
        budget=Budget(macs_ratio=budget),
        data=data,
        validation_data=validation,
        trials=3,
        fine_tune_epochs=1,
        decompose="auto",
        verbose=0,
    )
    assert len(report.rows) == 3
    assert report.uniform.ranks == {}  # The baseline: pruning only.
    for row in (report.uniform, *report.rows):
        assert row.macs_ratio <= budget, row
        assert set(row.ranks) <= {"conv1", "conv2", "fc", "logits"}
        assert all(f in (0.99, 0.95, 0.9, 0.8, 0.6) for f in row.ranks.values())
    decomposing = [row for row in report.rows if row.ranks]
    assert decomposing, report.table()
    unpruned = []
    for row in decomposing:
        alone, _ = decompose(model, rank=row.ranks, verbose=0)
        if measure_cost(alone).macs <= budget * reference.macs:
            # The decomposition alone fits: the least pruning is none.
            assert set(row.sparsity.values()) == {0.0}, row
            assert row.macs_ratio == measure_cost(alone).macs / reference.macs
            unpruned.append(row)
    assert unpruned, report.table()  # Seed 0 samples one such trial.
    for name in {name for row in report.rows for name in row.ranks}:
        assert f"{name} energy" in report.table()
    # The returned model is built as the best trial was: pruned, then
    # decomposed, fine-tuned with the original's compile settings.
    best = report.row(report.best)
    kinds = {layer.name: type(layer).__name__ for layer in compressed.layers}
    for name in ("conv1", "conv2", "fc", "logits"):
        assert (kinds[name] in DECOMPOSED) == (name in best.ranks), (kinds, best)
    assert measure_cost(compressed).macs == pytest.approx(
        best.macs_ratio * reference.macs
    )
    assert compressed.compiled and type(compressed.loss) is type(LOSS)
    assert abs(report.final_accuracy - best.accuracy) < 0.05


def test_bad_decompose_values_are_named(trained):
    model, data, validation = trained
    arguments = dict(
        budget=Budget(macs_ratio=0.5),
        data=data,
        validation_data=validation,
        trials=1,
        verbose=0,
    )
    with pytest.raises(
        ValueError, match=r"names layer 'pool1', which cannot be decomposed.*MaxPooling2D"
    ):
        search_channel_sparsity(model, decompose=["fc", "pool1"], **arguments)
    with pytest.raises(ValueError, match=r"`decompose` matched no layer.*'nothere'"):
        search_channel_sparsity(model, decompose="nothere", **arguments)
    with pytest.raises(ValueError, match=r'`decompose` must be "auto".*True'):
        search_channel_sparsity(model, decompose=True, **arguments)
