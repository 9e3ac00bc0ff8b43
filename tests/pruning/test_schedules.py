import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcompress.pruning import ConstantSparsity
from tfcompress.pruning import PolynomialDecay

STEPS = list(range(0, 1300, 7)) + [100, 200, 1000, 1100]


def tfmot_should_prune(step, begin_step, end_step, frequency):
    """tfmot's PruningSchedule._should_prune_in_step, with TF ops."""
    in_range = tf.math.logical_and(
        tf.math.greater_equal(step, begin_step),
        tf.math.logical_or(
            tf.math.less_equal(step, end_step), tf.math.less(end_step, 0)
        ),
    )
    turn = tf.math.equal(tf.math.floormod(step - begin_step, frequency), 0)
    return bool(tf.math.logical_and(in_range, turn))


def tfmot_polynomial_sparsity(step, initial, final, begin, end, power):
    """tfmot's PolynomialDecay.__call__ sparsity, with TF float32 ops."""
    p = tf.math.minimum(
        1.0,
        tf.math.maximum(
            0.0, tf.math.divide(tf.cast(step - begin, tf.float32), end - begin)
        ),
    )
    return float(
        tf.math.add(
            tf.math.multiply(initial - final, tf.math.pow(1 - p, power)), final
        )
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=1000),
        dict(initial_sparsity=0.3, final_sparsity=0.9, begin_step=120, end_step=1070, power=2, frequency=35),
        dict(initial_sparsity=0.5, final_sparsity=0.5, begin_step=10, end_step=11, power=1, frequency=1),
    ],
)
def test_polynomial_decay_equals_tfmot_at_every_step(kwargs):
    schedule = PolynomialDecay(**kwargs)
    full = {"power": 3, "frequency": 100, **kwargs}
    for step in STEPS:
        should_prune, sparsity = schedule(step)
        assert should_prune == tfmot_should_prune(
            step, full["begin_step"], full["end_step"], full["frequency"]
        ), step
        assert sparsity == tfmot_polynomial_sparsity(
            step,
            full["initial_sparsity"],
            full["final_sparsity"],
            full["begin_step"],
            full["end_step"],
            full["power"],
        ), step


@pytest.mark.parametrize("end_step", [-1, 600])
def test_constant_sparsity_equals_tfmot_at_every_step(end_step):
    schedule = ConstantSparsity(0.9, begin_step=50, end_step=end_step, frequency=25)
    for step in STEPS:
        should_prune, sparsity = schedule(step)
        assert should_prune == tfmot_should_prune(step, 50, end_step, 25), step
        assert sparsity == float(tf.constant(0.9, tf.float32))


def test_polynomial_decay_reaches_its_endpoints():
    schedule = PolynomialDecay(0.2, 0.9, begin_step=100, end_step=500, frequency=50)
    assert schedule(0) == (False, pytest.approx(0.2))
    assert schedule(100) == (True, pytest.approx(0.2))
    assert schedule(300)[1] == pytest.approx(0.9 - 0.7 * 0.5**3)
    assert schedule(500) == (True, pytest.approx(0.9))
    assert schedule(550) == (False, pytest.approx(0.9))


def test_matches_the_real_tfmot_when_installed():
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    ours = PolynomialDecay(0.1, 0.85, begin_step=30, end_step=930, frequency=40)
    theirs = tfmot.sparsity.keras.PolynomialDecay(0.1, 0.85, begin_step=30, end_step=930, frequency=40)
    for step in STEPS:
        should_prune, sparsity = theirs(tf.constant(step, tf.int64))
        assert ours(step) == (bool(should_prune), float(sparsity))


def test_accepts_tensor_steps():
    schedule = ConstantSparsity(0.5, begin_step=0, frequency=10)
    step = keras.Variable(20, dtype="int64")
    assert schedule(step) == (True, 0.5)
    assert schedule(np.int64(25)) == (False, 0.5)


@pytest.mark.parametrize("schedule", [ConstantSparsity(0.7, 10, 200, 5), PolynomialDecay(0.1, 0.8, 0, 900, power=2, frequency=30)])
def test_config_is_exactly_the_constructor_arguments(schedule):
    config = schedule.get_config()
    assert type(schedule)(**config) == schedule
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored == schedule and restored is not schedule


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ConstantSparsity(1.0, 0), r"`target_sparsity` must be a fraction of weights in \[0, 1\). Received: target_sparsity=1.0"),
        (lambda: ConstantSparsity(-0.1, 0), "target_sparsity=-0.1"),
        (lambda: PolynomialDecay(0.0, 1.2, 0, 100), "final_sparsity=1.2"),
        (lambda: PolynomialDecay(0.0, 0.5, 200, 100), r"`end_step` must be >= `begin_step` \(200\).*end_step=100"),
        (lambda: PolynomialDecay(0.0, 0.5, 100, 100), r"needs `end_step` > `begin_step`"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, -1), r"needs `end_step` > `begin_step`"),
        (lambda: ConstantSparsity(0.5, 0, frequency=0), "`frequency` must be an integer >= 1. Received: frequency=0"),
        (lambda: ConstantSparsity(0.5, -3), "`begin_step` must be an integer >= 0"),
        (lambda: PolynomialDecay(0.0, 0.5, 0, 100, power=0), "`power` must be a positive number"),
    ],
)
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_invalid_step():
    with pytest.raises(ValueError, match="`step` must be >= 0"):
        ConstantSparsity(0.5, 0)(-1)
