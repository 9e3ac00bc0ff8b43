import math

import numpy as np
import pytest

from tfcompress.dynamic import SegmentLatency
from tfcompress.dynamic import StageLatency
from tfcompress.dynamic import calibrate_exits
from tfcompress.dynamic import measure_stage_latency
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


def _latency(seconds, macs=None):
    """A `StageLatency` of a 2-exit model from `{(start, end): seconds}`."""
    rows = tuple(
        SegmentLatency(name=f"{start}->{end}", start=start, end=end,
                       macs=(macs or {}).get((start, end), 1),
                       seconds=value)
        for (start, end), value in seconds.items()
    )
    return StageLatency(rows=rows, num_exits=2, quantization="none",
                        examples=1, rounds=1)


# Segment latencies of a 2-exit model whose exit_0 head is slow: reaching
# exit_0 (12) costs more than reaching exit_1 directly (11). On digits
# every example can leave at either exit within 2 points, so exit_1 alone
# is the fastest policy.
SEGMENTS = {
    (-1, 0): 12.0, (-1, 1): 11.0, (-1, 2): 30.0,
    (0, 1): 10.0, (0, 2): 29.0, (1, 2): 20.0,
}


def test_latency_keeps_only_the_exits_that_pay(trained, digits):
    _, with_exits, _, _ = trained
    data = (digits[2], digits[3])
    latency = _latency(SEGMENTS)
    policy = calibrate_exits(with_exits, data, max_accuracy_drop=0.02,
                             latency=latency)
    assert policy.exits == (1,)
    assert policy.thresholds[0] == math.inf
    assert policy.stage_thresholds == (policy.thresholds[1],)
    assert policy.accuracy >= policy.full_accuracy - 0.02
    # Expected latency by hand: 11 for everyone, 20 more for the rest.
    outputs = with_exits.predict(digits[2], verbose=0)
    leave = confidence(outputs[1]) >= policy.thresholds[1]
    assert policy.average_seconds == pytest.approx(
        11.0 + 20.0 * np.mean(~leave)
    )
    assert policy.full_seconds == 30.0
    assert policy.latency_ratio < 1.0
    # A dropped exit shows what leaving there would cost were it kept.
    assert [row.seconds for row in policy.rows] == [12.0, 11.0, 31.0]
    # When every exit costs more than it saves, none is kept.
    slow = {**SEGMENTS, (-1, 0): 40.0, (-1, 1): 40.0}
    none = calibrate_exits(with_exits, data, max_accuracy_drop=0.02,
                           latency=_latency(slow))
    assert none.exits == () and none.average_seconds == 30.0
    assert none.accuracy == none.full_accuracy
    with pytest.raises(ValueError, match="Give one"):
        calibrate_exits(with_exits, data, macs_budget=10**9, latency=latency)
    with pytest.raises(ValueError, match="this model"):
        calibrate_exits(with_exits, data, latency=StageLatency(
            rows=(), num_exits=3, quantization="none", examples=1, rounds=1))


def test_measured_segments_cover_every_pair_of_cuts(trained, digits):
    _, with_exits, _, _ = trained
    latency = measure_stage_latency(with_exits, digits[2][:40], examples=20,
                                    rounds=2, verbose=0)
    pairs = [(row.start, row.end) for row in latency.rows]
    assert sorted(pairs) == sorted(SEGMENTS)
    macs = stage_macs(with_exits)
    # The model without exits costs the backbone's MACs; stopping at the
    # last exit costs stages 0 and 1 minus exit_0's head.
    assert latency.segment(-1, 2).macs == calibrate_exits(
        with_exits, (digits[2], digits[3])).full_macs
    assert latency.segment(-1, 0).macs == macs[0]
    assert latency.segment(1, 2).macs == macs[2]
    assert all(row.seconds > 0 for row in latency.rows)
    policy = calibrate_exits(with_exits, (digits[2], digits[3]),
                             max_accuracy_drop=0.02, latency=latency)
    assert policy.accuracy >= policy.full_accuracy - 0.02
    # Keeping no exit is one of the subsets tried (up to float rounding
    # of the mean).
    assert policy.average_seconds <= latency.full_seconds * (1 + 1e-9)
