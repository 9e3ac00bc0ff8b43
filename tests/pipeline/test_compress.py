"""`tfcompress.compress`: the whole pipeline in one call, on digits."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.litert import inspect_tflite
from tfcompress.search import Budget

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def trained(digits):
    """A tiny CNN (two channel groups), trained briefly on digits."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", name="conv1"),
            keras.layers.BatchNormalization(momentum=0.9, name="bn1"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", name="conv2"),
            keras.layers.BatchNormalization(momentum=0.9, name="bn2"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), LOSS)
    model.fit(x_train, y_train, epochs=4, batch_size=32, verbose=0)
    return model, (x_train, y_train), (x_test, y_test)


def test_pipeline_rows_carry_measured_numbers(trained, tmp_path, capsys):
    model, data, validation = trained
    weights = [w.copy() for w in model.get_weights()]
    result, report = tfcompress.compress(
        model,
        data,
        validation_data=validation,
        budget=Budget(macs_ratio=0.5),
        path=tmp_path / "digits_int8.tflite",
        epochs=2,
        qat_epochs=1,
        verbose=1,
    )
    names = [row.name for row in report.rows]
    assert names == ["original", "search", "prune", "distill", "qat", "int8", "verify"]
    # A progress line per step (Keras's verbose convention).
    output = capsys.readouterr().out
    for name in names:
        assert f"compress {name}:" in output
    original = report.row("original")
    assert original.latency_ratio == 1.0 and original.size_bytes > 0
    for row in report.rows:
        assert row.size_bytes > 0 and row.macs > 0 and row.latency_ms > 0
    for name in ("prune", "distill", "qat", "int8", "verify"):
        assert 0.4 < report.row(name).macs / original.macs <= 0.5
    # The int8 file: smaller than the float one, every op integer, and its
    # accuracy in LiteRT near the original's.
    int8 = report.row("int8")
    assert int8.file_format == "int8" and int8.accuracy_in == "litert"
    assert int8.size_bytes < 0.5 * original.size_bytes
    assert report.row("distill").accuracy > report.row("prune").accuracy
    assert int8.accuracy > original.accuracy - 0.1, report.table()
    assert report.top1_agreement > 0.95
    assert report.budget_met
    # Read back from the file: every conv / dense has int8 kernels and
    # int8 outputs.
    inspection = inspect_tflite(result.export.path)
    weighted = [
        op for op in inspection.ops if op.name in ("CONV_2D", "FULLY_CONNECTED")
    ]
    assert len(weighted) == 3
    assert {op.inputs[1].dtype for op in weighted} == {"int8"}
    assert {op.outputs[0].dtype for op in weighted} == {"int8"}
    assert result.export.path == str(tmp_path / "digits_int8.tflite")
    assert report.to_dict()["accuracy_lost"] == pytest.approx(
        original.accuracy - report.row("verify").accuracy
    )
    assert "verify" in report.table() and "Budget met" in report.table()
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # Not modified.
    assert model.trainable and all(layer.trainable for layer in model.layers)


def test_errors_name_the_argument(trained):
    model, data, validation = trained
    x, y = data
    with pytest.raises(ValueError, match="`data` is empty"):
        tfcompress.compress(model, (x[:0], y[:0]), budget=Budget(macs_ratio=0.5))
    with pytest.raises(ValueError, match="as many labels as examples"):
        tfcompress.compress(model, (x, y[:5]), budget=Budget(macs_ratio=0.5))
    with pytest.raises(ValueError, match="must be a tfcompress.search.Budget"):
        tfcompress.compress(model, data, budget=0.5)
    with pytest.raises(ValueError, match="Step 'verify' needs step 'int8'"):
        tfcompress.compress(
            model, data, budget=Budget(macs_ratio=0.5), steps=["qat", "verify"]
        )
    with pytest.raises(ValueError, match=r"`steps` must be a list"):
        tfcompress.compress(model, data, budget=Budget(macs_ratio=0.5), steps="all")
    with pytest.raises(ValueError, match=r"Received: verbose='loud'"):
        tfcompress.compress(model, data, budget=Budget(macs_ratio=0.5), verbose="loud")
    with pytest.raises(ValueError, match=r"not reachable.*keeps 0\.\d+ of its macs"):
        tfcompress.compress(
            model,
            data,
            validation_data=validation,
            budget=Budget(macs_ratio=0.01),
            max_sparsity=0.5,
            verbose=0,
        )


def test_searched_sparsity_is_what_the_search_returns(trained):
    model, data, validation = trained
    result, report = tfcompress.compress(
        model,
        data,
        validation_data=validation,
        budget=Budget(macs_ratio=0.5),
        steps=("search", "prune"),
        trials=2,
        search_epochs=0,  # Scored right after pruning: the cheap proxy.
        verbose=0,
    )
    search = report.row("search")
    # The note names what was kept: a trial, or uniform when none beat it.
    assert "2 trials, best " in search.note, search.note
    assert search.note.endswith(" kept"), search.note
    kept = search.note.rsplit("; ", 1)[1].removesuffix(" kept")
    assert kept == "uniform" or kept.startswith("trial "), search.note
    assert report.row("prune").macs <= 0.5 * report.row("original").macs
