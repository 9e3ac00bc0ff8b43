import math

import numpy as np
import pytest

from tfcompress.dynamic import calibrate_exits
from tfcompress.dynamic import stage_macs
from tfcompress.dynamic.runner import confidence
from tfcompress.dynamic.thresholds import exit_indices


def _policy_by_hand(with_exits, x, y, thresholds):
    outputs = with_exits.predict(x, verbose=0)
    exits = exit_indices(
        np.stack([confidence(o) for o in outputs[:-1]]), thresholds
    )
    predictions = np.stack([np.argmax(o, -1) for o in outputs])
    accuracy = np.mean(predictions[exits, np.arange(len(y))] == y)
    macs = np.cumsum(stage_macs(with_exits))[exits].mean()
    return accuracy, macs, exits


def test_thresholds_meet_the_accuracy_target_on_validation_data(
    trained, digits
):
    _, with_exits, _, _ = trained
    x_val, y_val = digits[2], digits[3]
    policy = calibrate_exits(with_exits, (x_val, y_val),
                             max_accuracy_drop=0.005)
    assert policy.accuracy >= policy.full_accuracy - 0.005
    accuracy, macs, exits = _policy_by_hand(
        with_exits, x_val, y_val, policy.thresholds
    )
    assert accuracy == pytest.approx(policy.accuracy)
    assert macs == pytest.approx(policy.average_macs)
    rates = np.bincount(exits, minlength=3) / len(exits)
    np.testing.assert_allclose([r.exit_rate for r in policy.rows], rates)
    # Some examples leave early, so the policy is cheaper than the model.
    assert rates[-1] < 1.0
    assert policy.average_macs < policy.full_macs


def test_a_looser_target_saves_more(trained, digits):
    _, with_exits, _, _ = trained
    data = (digits[2], digits[3])
    strict = calibrate_exits(with_exits, data, max_accuracy_drop=0.0)
    loose = calibrate_exits(with_exits, data, max_accuracy_drop=0.05)
    assert strict.accuracy >= strict.full_accuracy
    assert loose.accuracy >= loose.full_accuracy - 0.05
    assert loose.average_macs <= strict.average_macs
    absolute = calibrate_exits(with_exits, data, target_accuracy=0.5)
    assert absolute.accuracy >= 0.5


def test_thresholds_fit_a_macs_budget(trained, digits):
    _, with_exits, _, _ = trained
    data = (digits[2], digits[3])
    per_stage = stage_macs(with_exits)
    budget = per_stage[0] + per_stage[1]  # as if everyone left at exit 1
    policy = calibrate_exits(with_exits, data, macs_budget=budget)
    assert policy.average_macs <= budget
    accuracy, macs, _ = _policy_by_hand(with_exits, *data, policy.thresholds)
    assert macs <= budget and accuracy == pytest.approx(policy.accuracy)
    assert any(math.isfinite(t) for t in policy.thresholds)


def test_bad_targets_are_refused(trained, digits):
    _, with_exits, _, _ = trained
    data = (digits[2][:20], digits[3][:20])
    with pytest.raises(ValueError, match="at most one"):
        calibrate_exits(with_exits, data, max_accuracy_drop=0.01,
                        macs_budget=10)
    with pytest.raises(ValueError, match="target_accuracy=1.5"):
        calibrate_exits(with_exits, data, target_accuracy=1.5)
    with pytest.raises(ValueError, match="below what the first exit costs"):
        calibrate_exits(with_exits, data, macs_budget=1)
