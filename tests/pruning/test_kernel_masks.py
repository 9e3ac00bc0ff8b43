"""`KernelMask` on real variables and real optimizer updates: the mask is
applied after each update, around the kernel's own constraint; it only
grows; it is restored from the kernel's zeros; `release_mask` undoes it."""

import keras
import numpy as np
import pytest

from tfcompress.pruning import KernelMask
from tfcompress.pruning import release_mask
from tfcompress.pruning.masks import pruned_count


def dense_kernel(units=8, inputs=16, seed=0, constraint=None):
    layer = keras.layers.Dense(units, kernel_constraint=constraint)
    layer.build((None, inputs))
    values = np.random.default_rng(seed).normal(size=(inputs, units))
    layer.kernel.assign(values.astype("float32"))
    return layer.kernel


def numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def test_pruned_entries_stay_zero_through_compiled_training():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(32, activation="relu", name="hidden"),
        keras.layers.Dense(4, name="logits"),
    ])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    kernel = model.get_layer("hidden").kernel
    mask = KernelMask(kernel)
    mask.attach()
    assert mask.attached
    new_mask = mask.update(sparsity=0.75)
    assert int(np.sum(new_mask == 0)) == pruned_count(16 * 32, 0.75)
    np.testing.assert_array_equal(numpy(mask.mask), new_mask)
    zeros = new_mask == 0
    x = np.random.default_rng(1).normal(size=(64, 16)).astype("float32")
    y = np.random.default_rng(2).normal(size=(64, 4)).astype("float32")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    values = numpy(kernel)
    assert np.all(values[zeros] == 0)
    assert np.all(values[~zeros] != 0)  # the others trained
    mask.release()
    assert kernel.constraint is None and not mask.attached


def test_update_only_grows_and_ranks_by_taylor_with_a_gradient():
    kernel = dense_kernel()  # 16 x 8 = 128 entries
    mask = KernelMask(kernel)
    first = mask.update(sparsity=0.25)
    values = numpy(kernel)
    largest = np.unravel_index(np.argmax(np.abs(values)), values.shape)
    assert first[largest] == 1
    # |w * dL/dw| is 1 for every kept entry but the largest weight, which
    # the loss ignores (gradient 0): it goes first, before smaller weights.
    gradient = np.zeros(kernel.shape)
    gradient[first == 1] = 1.0 / np.abs(values[first == 1])
    gradient[largest] = 0.0
    second = mask.update(sparsity=0.5, gradient=gradient)
    assert np.all(second[first == 0] == 0)  # pruned entries stay pruned
    assert int(np.sum(second == 0)) == pruned_count(128, 0.5)
    assert second[largest] == 0
    np.testing.assert_array_equal(numpy(kernel) == 0, second == 0)


def test_m_by_n_update_on_the_input_channel_axis():
    kernel = dense_kernel(units=3, inputs=8)
    mask = KernelMask(kernel).update(m_by_n=(2, 4), channel_axis=0)
    groups = mask.reshape(2, 4, 3)
    assert np.all(groups.sum(axis=1) == 2)  # 2 kept in every 4 inputs


def test_attach_wraps_the_kernels_own_constraint_and_replaces_a_stale_mask():
    kernel = dense_kernel(constraint=keras.constraints.NonNeg())
    stale = KernelMask(kernel)
    stale.attach()
    mask = KernelMask(kernel)
    mask.attach()  # the stale one is released, not nested
    assert mask.attached and not stale.attached
    mask.update(sparsity=0.5)
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.apply([-keras.ops.ones(kernel.shape)], [kernel])
    values, kept = numpy(kernel), numpy(mask.mask) == 1
    assert np.all(values >= 0)  # NonNeg ran
    assert np.all(values[~kept] == 0)  # then the mask
    assert release_mask(kernel) is True
    assert isinstance(kernel.constraint, keras.constraints.NonNeg)
    assert release_mask(kernel) is False  # nothing left to release


def test_restore_from_zeros_only_for_a_fresh_mask():
    kernel = dense_kernel()
    KernelMask(kernel).update(sparsity=0.5)  # an earlier run's zeros
    zeros = numpy(kernel) == 0
    resumed = KernelMask(kernel)
    assert resumed.restore_from_zeros() is True
    np.testing.assert_array_equal(numpy(resumed.mask) == 0, zeros)
    # A mask that prunes something is the truth; the kernel's zeros are not.
    kernel.assign(np.zeros(kernel.shape, dtype="float32"))
    assert resumed.restore_from_zeros() is False
    np.testing.assert_array_equal(numpy(resumed.mask) == 0, zeros)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "Pass exactly one of `sparsity`"),
        ({"sparsity": 0.5, "m_by_n": (2, 4)}, "Pass exactly one of"),
        ({"sparsity": 1.5}, r"in \[0, 1\]. Received: sparsity=1.5"),
        ({"sparsity": True}, "Received: sparsity=True"),
        ({"m_by_n": (4, 2)}, "0 <= m < n"),
    ],
)
def test_update_raises_clear_errors_and_changes_nothing(arguments, message):
    kernel = dense_kernel()
    before = numpy(kernel).copy()
    mask = KernelMask(kernel)
    with pytest.raises(ValueError, match=message):
        mask.update(**arguments)
    np.testing.assert_array_equal(numpy(kernel), before)
    assert np.all(numpy(mask.mask) == 1)


def test_kernel_must_be_a_variable():
    with pytest.raises(ValueError, match="must be a keras.Variable.*ndarray"):
        KernelMask(np.ones((3, 3)))
