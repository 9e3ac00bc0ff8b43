"""A plain copy of a pruned model, with its sparsity report."""

import keras

from tfcompress.graph import cloning
from tfcompress.pruning.kernel_masks import release_mask
from tfcompress.pruning.sparsity_report import sparsity_report
from tfcompress.pruning.targets import all_prunable_weights


def strip(model, *, inplace=False):
    """Returns the pruned model as a plain model, and how sparse it is.

    `MagnitudePruning` wraps nothing, so there are no wrapper layers to
    remove (unlike tfmot's `strip_pruning`): the zeros are already in the
    kernels. `strip` makes a copy that carries no pruning mask, also when a
    `fit` was interrupted before the callback could release its masks, and
    reports the sparsity of each kernel. The copy saves, loads and exports
    like any model.

    Args:
        model: A Sequential or functional model (or any model that
            `keras.models.clone_model` can copy), pruned or not.
        inplace: If `True`, release the masks on `model` itself and return
            it, instead of a copy; use it for subclassed models that cannot
            be cloned.

    Returns:
        `(plain_model, report)`: the model and a `SparsityReport`. A copy
        is compiled like `model` (with a fresh optimizer) when `model` is
        compiled, and uncompiled otherwise (see
        `tfcompress.graph.compile_like`).

    Raises:
        ValueError: if the model cannot be cloned (suggests `inplace=True`).

    Example:

    ```python
    plain, report = tfcompress.pruning.strip(model)
    print(report)  # per-kernel zeros and sparsity
    tfcompress.to_tflite(plain, "model.tflite")
    ```
    """
    if not getattr(model, "built", False):
        raise ValueError(
            "The model is not built; build or call it before `strip`."
        )
    if inplace:
        plain = model
    else:
        try:
            plain = keras.models.clone_model(model)
        except Exception as error:  # Keras raises several types here.
            raise ValueError(
                f"Could not copy {type(model).__name__} with "
                f"`keras.models.clone_model` ({error}). Subclassed models "
                "need a `get_config`; or call `strip(model, inplace=True)` "
                "to release the masks on the model itself."
            ) from error
        plain.set_weights(model.get_weights())
        cloning.compile_like(plain, model)
    _release_masks(plain)
    return plain, sparsity_report(plain)


def _release_masks(model):
    for weight in all_prunable_weights(model):
        release_mask(weight.variable)
