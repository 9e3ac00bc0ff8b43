"""Keeping a pruned model's zeros through further training.

A pruned model carries its masks as zeros in its kernels (see
`MagnitudePruning`). Training it again (quantization-aware training,
clustering, plain fine-tuning) would fill them: `hold_zeros` turns each
kernel's zeros back into a `KernelMask` on the kernel, so every later
optimizer update leaves them zero, magnitude and N:M patterns alike.
"""

import dataclasses

import keras
import numpy as np

from tfcompress.pruning.kernel_masks import KernelMask
from tfcompress.pruning.kernel_masks import is_masked
from tfcompress.pruning.targets import all_prunable_weights


@dataclasses.dataclass(frozen=True)
class HeldZeros:
    """One kernel whose zeros a mask holds.

    Attributes:
        path: Path of the kernel (as `MagnitudePruning` names it).
        zeros: Number of zero entries held.
        size: Number of entries.
        newly_attached: Whether this call attached the mask (a train
            function traced before must be traced again to apply it).
    """

    path: str
    zeros: int
    size: int
    newly_attached: bool

    @property
    def sparsity(self):
        """Fraction of zeros held."""
        return self.zeros / self.size


def hold_zeros(model):
    """Attaches a pruning mask made of its zeros to every sparse kernel.

    Every prunable kernel under `model` (see
    `tfcompress.pruning.sparsity_report`) with at least one entry exactly
    zero gets a `KernelMask` holding those zeros, as its constraint; a kernel
    already masked keeps its mask. A dense kernel (no exact zero: a trained
    float weight is never exactly zero by chance) is left alone, and so is
    a kernel that is zero everywhere (zero-initialized, never trained: it
    was not pruned, and a mask would freeze it at zero for good). The masks
    are not saved with the model; call this again after loading it.

    A train function traces the constraints when first called: attach the
    masks before the first `fit`, or retrace (`make_train_function(
    force=True)`) when an entry has `newly_attached`.

    Args:
        model: A built Keras model.

    Returns:
        A tuple of `HeldZeros`, one per masked kernel, in layer order.

    Example:

    ```python
    tfcompress.pruning.hold_zeros(pruned_model)
    pruned_model.fit(x, y)  # the zeros stay zero
    ```
    """
    held = []
    for weight in all_prunable_weights(model):
        variable = weight.variable
        values = keras.ops.convert_to_numpy(variable)
        zeros = int(values.size - np.count_nonzero(values))
        # All zeros is an untrained zero-initialized kernel, not a pruned
        # one: holding it would stop it from ever learning.
        if zeros == 0 or zeros == values.size:
            continue
        new = not is_masked(variable)
        if new:
            mask = KernelMask(variable)
            mask.restore_from_zeros()
            mask.attach()
        held.append(HeldZeros(weight.path, zeros, int(values.size), new))
    return tuple(held)
