"""Pruning masks on kernel variables, applied as the kernels' constraints.

`masks.py` decides, in numpy, which entries of a weight become zero; this
module keeps that decision on a live kernel: a mask variable beside the
kernel, multiplied into it after every optimizer update, so pruned entries
stay zero through training whatever the optimizer pushes into them. The
`MagnitudePruning` callback decides when and how much; a custom training
loop can use `KernelMask` directly.
"""

import numbers

import keras
import numpy as np

from tfcompress.pruning import masks as mask_maths


class _MaskConstraint(keras.constraints.Constraint):
    """Multiplies a kernel by its mask, after the kernel's own constraint.

    Keras optimizers apply a variable's `constraint` right after each
    update, inside the compiled train step, so pruned weights are zero again
    before the next forward pass whatever the optimizer's momentum or
    Adam moments push into them. Never serialized: the layer's config keeps
    its own `kernel_constraint`.
    """

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return w * keras.ops.cast(self.mask, w.dtype)


class KernelMask:
    """A pruning mask for one kernel variable, held in a variable beside it.

    The mask starts as all ones (nothing pruned). `attach()` installs it as
    the kernel's constraint, which Keras optimizers apply after every
    update, so pruned entries stay exactly zero during training; the
    kernel's own constraint, if any, still runs first. `update()` prunes
    more entries (the mask only grows), `release()` gives the kernel its
    own constraint back, leaving the zeros in the kernel.

    A train function traces the constraints when it is first called: attach
    the mask before the first training step (or retrace). Under a
    `tf.distribute` strategy, create the `KernelMask` inside
    `strategy.scope()`, so that each replica's update reads a mask on its
    own device.

    Args:
        kernel: The `keras.Variable` to prune, e.g. `layer.kernel`.

    Attributes:
        kernel: The kernel variable.
        mask: The mask, a non-trainable float32 `keras.Variable` of the
            kernel's shape: 1 keeps an entry, 0 prunes it.

    Example:

    >>> layer = keras.layers.Dense(2, use_bias=False)
    >>> layer.build((None, 3))
    >>> _ = layer.kernel.assign([[0.1, -2.0], [0.5, 0.05], [-1.0, 0.3]])
    >>> mask = KernelMask(layer.kernel)
    >>> mask.attach()
    >>> mask.update(sparsity=0.5)  # the 3 smallest |w| of 6
    array([[0., 1.],
           [1., 0.],
           [1., 0.]], dtype=float32)
    >>> # An optimizer step moves every entry; the mask zeroes 3 again.
    >>> sgd = keras.optimizers.SGD(1.0)
    >>> sgd.apply([keras.ops.ones((3, 2))], [layer.kernel])
    >>> int(np.count_nonzero(keras.ops.convert_to_numpy(layer.kernel)))
    3
    >>> mask.release()  # the zeros stay in the kernel
    """

    def __init__(self, kernel):
        if not isinstance(kernel, keras.Variable):
            raise ValueError(
                "`kernel` must be a keras.Variable, such as `layer.kernel`. "
                f"Received: kernel of type {type(kernel).__name__}"
            )
        self.kernel = kernel
        self.mask = keras.Variable(
            np.ones(kernel.shape, dtype="float32"),
            trainable=False,
            name="pruning_mask",
        )

    @property
    def attached(self):
        """Whether this mask is the kernel's constraint now."""
        constraint = self.kernel.constraint
        return (
            isinstance(constraint, _MaskConstraint)
            and constraint.mask is self.mask
        )

    def attach(self):
        """Makes the mask the kernel's constraint, around its own one.

        A pruning mask already on the kernel (one left by an interrupted
        `fit`) is released first.
        """
        release_mask(self.kernel)
        self.kernel.constraint = _MaskConstraint(
            self.mask, self.kernel.constraint
        )

    def release(self):
        """Gives the kernel back its own constraint; the zeros stay."""
        release_mask(self.kernel)

    def update(
        self, sparsity=None, m_by_n=None, channel_axis=-2, gradient=None
    ):
        """Prunes the least important entries and zeroes them in the kernel.

        Entries already pruned stay pruned (they count as least important),
        so the mask only grows.

        Args:
            sparsity: Target fraction of zeros, in `[0, 1]`: exactly
                `round(sparsity * size)` entries are pruned (see
                `magnitude_mask`). Pass this or `m_by_n`.
            m_by_n: `(m, n)` for N:M sparsity: `m` zeros in every `n`
                consecutive input channels (see `m_by_n_mask`).
            channel_axis: With `m_by_n`, the kernel's input-channel axis.
                Defaults to `-2` (a convolution kernel `(..., in, out)`).
            gradient: Optional array of the loss gradient, of the kernel's
                shape: entries are then ranked by `|w * dL/dw|` instead of
                `|w|`.

        Returns:
            The new mask, a float32 NumPy array.

        Raises:
            ValueError: if neither or both of `sparsity` and `m_by_n` are
                given, or either is invalid.
        """
        if (sparsity is None) == (m_by_n is None):
            raise ValueError(
                "Pass exactly one of `sparsity` (a fraction of zeros) and "
                f"`m_by_n`. Received: sparsity={sparsity!r}, "
                f"m_by_n={m_by_n!r}"
            )
        if sparsity is not None and not (
            isinstance(sparsity, numbers.Real)
            and not isinstance(sparsity, bool)
            and 0.0 <= sparsity <= 1.0
        ):
            raise ValueError(
                "`sparsity` must be a number in [0, 1]. "
                f"Received: sparsity={sparsity!r}"
            )
        values = keras.ops.convert_to_numpy(self.kernel)
        current = keras.ops.convert_to_numpy(self.mask)
        scores = mask_maths.importance_scores(values, gradient)
        if m_by_n is not None:
            mask = mask_maths.m_by_n_mask(scores, m_by_n, channel_axis, current)
        else:
            mask = mask_maths.magnitude_mask(scores, sparsity, current)
        self.mask.assign(mask)
        self.kernel.assign(values * mask)
        return mask

    def restore_from_zeros(self):
        """On resuming training: takes a fresh mask from the kernel's zeros.

        A mask prunes nothing when it is new (a new callback or process),
        while a kernel pruned earlier holds its pruned entries as zeros, in
        a checkpoint or a saved model. This sets such a mask to the
        kernel's nonzero entries; a mask that already prunes something is
        left as it is.

        Returns:
            Whether the mask was changed.
        """
        if not np.all(keras.ops.convert_to_numpy(self.mask) == 1):
            return False
        values = keras.ops.convert_to_numpy(self.kernel)
        self.mask.assign((values != 0).astype("float32"))
        return True


def release_mask(variable):
    """Gives `variable` back its own constraint if a pruning mask is on it.

    Args:
        variable: A `keras.Variable`, masked or not.

    Returns:
        Whether a mask was released.

    Example:

    ```python
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            tfcompress.pruning.release_mask(layer.kernel)
    ```
    """
    if isinstance(variable.constraint, _MaskConstraint):
        variable.constraint = variable.constraint.inner
        return True
    return False


def is_masked(variable):
    """Whether a pruning mask is among `variable`'s constraints now.

    Constraints that wrap another (a mask, weight clustering) keep it as
    `inner`; the whole chain is searched.
    """
    constraint = variable.constraint
    while constraint is not None:
        if isinstance(constraint, _MaskConstraint):
            return True
        constraint = getattr(constraint, "inner", None)
    return False
