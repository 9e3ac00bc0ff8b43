"""Per-layer channel sparsity search under a budget (AMC-style)."""

import keras
import numpy as np
import optuna
import pytest

from tfcompress.models import plain_cnn
from tfcompress.search import Budget
from tfcompress.search import ChannelSearchReport
from tfcompress.search import SearchTrial
from tfcompress.search import measure_cost
from tfcompress.search import search_channel_sparsity

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_budget_limits_and_errors():
    reference = measure_cost(
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    )
    assert reference.params == 15 and reference.macs == 12
    assert Budget(macs_ratio=0.5).limits(reference) == {"macs": 6.0}
    assert Budget(params=10, macs_ratio=1.0).limits(reference) == {
        "macs": 12.0,
        "params": 10,
    }
    assert str(Budget(macs_ratio=0.5, params=10)) == "macs <= 0.5x, params <= 10"
    with pytest.raises(ValueError, match="at least one limit"):
        Budget()
    with pytest.raises(ValueError, match="not both"):
        Budget(macs=10, macs_ratio=0.5)
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\]"):
        Budget(macs_ratio=1.5)
    with pytest.raises(ValueError, match="positive int"):
        Budget(params=-3)


def test_every_candidate_fits_the_budget_and_the_best_is_returned(trained, tmp_path):
    model, data, validation = trained
    weights = [w.copy() for w in model.get_weights()]
    pruned, report = search_channel_sparsity(
        model,
        budget=Budget(macs_ratio=0.5),
        data=data,
        validation_data=validation,
        trials=2,
        fine_tune_epochs=1,
        verbose=0,
    )
    assert len(report.rows) == 2
    for row in (report.uniform, *report.rows):
        # Fitted to the budget: within it, and not far under it.
        assert 0.4 < row.macs_ratio <= 0.5, row
        assert set(row.sparsity) == set(report.uniform.sparsity)
    # Uniform: one sparsity everywhere (up to the groups' rounding).
    assert len(set(np.round(list(report.uniform.sparsity.values()), 6))) == 1
    # A searched trial is not uniform.
    assert len(set(np.round(list(report.rows[0].sparsity.values()), 6))) > 1
    best_trial = max(r.accuracy for r in report.rows)
    assert report.best_trial_accuracy == best_trial
    # The returned candidate: the best trial if it beat uniform, else uniform.
    if best_trial > report.uniform.accuracy:
        assert report.row(report.best).accuracy == best_trial
        assert report.best != "uniform"
    else:
        assert report.best == "uniform"
    assert report.best_accuracy == max(best_trial, report.uniform.accuracy)
    assert measure_cost(pruned).macs <= 0.5 * measure_cost(model).macs
    assert abs(report.final_accuracy - report.best_accuracy) < 0.05
    assert "uniform" in report.table() and "trial 0" in report.table()
    assert report.to_dict()["gain_over_uniform"] == pytest.approx(
        best_trial - report.uniform.accuracy
    )
    report.plot(tmp_path / "search.png")
    assert (tmp_path / "search.png").stat().st_size > 1000
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # Not modified.


def _trial(name, accuracy, sparsity):
    return SearchTrial(
        name=name,
        sparsity={"conv1": sparsity, "conv2": sparsity},
        macs_ratio=0.5,
        params_ratio=0.5,
        accuracy=accuracy,
        seconds=1.0,
    )


def test_report_when_no_trial_beats_uniform():
    report = ChannelSearchReport(
        model="cnn",
        budget="macs <= 0.5x",
        rows=(_trial("trial 0", 0.80, 0.4), _trial("trial 1", 0.83, 0.3)),
        uniform=_trial("uniform", 0.85, 0.35),
        best="uniform",
        final_accuracy=0.86,
        fine_tune_epochs=1,
        workers=1,
        seconds=3.0,
    )
    assert report.row("uniform") is report.uniform
    assert report.best_accuracy == 0.85
    assert report.best_trial_accuracy == 0.83
    assert report.gain_over_uniform == pytest.approx(-0.02)
    table = report.table()
    assert "uniform *" in table and "trial 1 *" not in table
    assert "No trial beat uniform (0.8500; best trial -0.0200)" in table
    with pytest.raises(KeyError, match="No row named 'trial 7'"):
        report.row("trial 7")


def test_unreachable_budget_says_how_close_it_got(trained):
    model, data, validation = trained
    with pytest.raises(ValueError, match=r"not reachable.*keeps 0\.\d+ of its macs"):
        search_channel_sparsity(
            model,
            budget=Budget(macs_ratio=0.01),
            data=data,
            validation_data=validation,
            max_sparsity=0.5,
            trials=1,
            verbose=0,
        )


def test_bad_arguments_are_named(trained):
    model, data, validation = trained
    with pytest.raises(ValueError, match="must be a tfcompress.search.Budget"):
        search_channel_sparsity(
            model, budget=0.5, data=data, validation_data=validation
        )
    with pytest.raises(ValueError, match="as many labels as examples"):
        search_channel_sparsity(
            model,
            budget=Budget(macs_ratio=0.5),
            data=(data[0], data[1][:3]),
            validation_data=validation,
        )
    uncompiled = plain_cnn((8, 8, 1), num_classes=10)
    with pytest.raises(ValueError, match="is not compiled"):
        search_channel_sparsity(
            uncompiled,
            budget=Budget(macs_ratio=0.5),
            data=data,
            validation_data=validation,
        )


def test_two_workers_share_one_study_and_it_resumes(trained, tmp_path, capfd):
    model, data, validation = trained
    journal = tmp_path / "search.log"
    arguments = dict(
        budget=Budget(macs_ratio=0.6),
        data=(data[0][:128], data[1][:128]),
        validation_data=validation,
        fine_tune_epochs=0,  # Scored right after pruning: the proxy.
        storage=journal,
        study_name="digits",
    )
    _, report = search_channel_sparsity(model, trials=4, workers=2, **arguments)
    assert len(report.rows) == 4
    output = capfd.readouterr().out
    # Both processes ran trials of the one study.
    assert "worker 0: trial" in output and "worker 1: trial" in output
    # Resumed in this process: one more trial, the four kept.
    _, resumed = search_channel_sparsity(model, trials=5, **arguments)
    assert len(resumed.rows) == 5
    assert [r.sparsity for r in resumed.rows[:4]] == [r.sparsity for r in report.rows]
    study = optuna.load_study(
        study_name="digits",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))
        ),
    )
    assert len(study.trials) == 5
