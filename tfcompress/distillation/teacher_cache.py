"""Teacher outputs computed once, for data that fits in memory."""

import keras
import numpy as np

from tfcompress.graph import keras_internals

INPUTS = "inputs"
TEACHER_OUTPUTS = "teacher_outputs"
# The key of the final outputs among Keras's Distiller's features.
FINAL_OUTPUT = "final_output"


def cache_teacher_outputs(teacher, x, batch_size=256):
    """Runs the teacher once over `x` and packs its outputs with `x`.

    The teacher of a distillation is frozen, so its outputs on a fixed
    training set are the same every epoch. Pass the returned dict as the
    `x` of `tfcompress.distillation.Distiller.fit` (with the same `y`): the
    Distiller then reads the teacher's outputs from each batch instead of
    running the teacher, which saves the teacher's forward pass at every
    step. Only for a training set without random augmentation (an
    augmented image has no cached output) that fits in memory beside the
    outputs (`n * classes` floats for logits).

    The result is a plain dict of arrays, `{"inputs": x, "teacher_outputs":
    outputs}`, so `fit` slices and shuffles inputs and outputs together;
    build a `tf.data.Dataset` from it the same way if you prefer. The
    Distiller recognises a dict with exactly these two keys.

    Args:
        teacher: The teacher `keras.Model`, or the Distiller itself
            (`keras.distillation.Distiller` or tfcompress's): then the
            outputs of every teacher layer that its `FeatureDistillation`
            losses read are cached too, which is required for those losses.
        x: The training inputs: an array, or a list or dict of arrays for a
            model with several inputs. Not a dataset or generator.
        batch_size: Batch size of the teacher's forward passes. Defaults to
            `256`.

    Returns:
        A dict `{"inputs": x, "teacher_outputs": outputs}`, the outputs as
        NumPy arrays with the structure the teacher returns (a dict of
        layer outputs when a Distiller with feature losses is passed).

    Raises:
        ValueError: if `teacher` is not a model, `x` is not arrays, or
            `batch_size` is not a positive integer.

    Example:

    ```python
    distiller = tfcompress.distillation.Distiller(
        teacher, student,
        keras.distillation.LogitsDistillation(
            temperature=4.0, loss=keras.losses.KLDivergence()))
    distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    cached = tfcompress.distillation.cache_teacher_outputs(teacher, x_train)
    distiller.fit(cached, y_train, epochs=10)  # the teacher never runs
    ```
    """
    if not isinstance(teacher, keras.Model):
        raise ValueError(
            "`teacher` must be a keras.Model or a keras.distillation."
            f"Distiller. Received: teacher={teacher!r}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    leaves = keras.tree.flatten(x)
    if not leaves or not all(
        isinstance(leaf, np.ndarray) or keras.ops.is_tensor(leaf)
        for leaf in leaves
    ):
        raise ValueError(
            "`x` must be an array, or a list or dict of arrays, that fits in "
            "memory; for a dataset, run the teacher over it yourself and add "
            "its outputs under the key 'teacher_outputs'. "
            f"Received: x of type {type(x).__name__}"
        )
    model = teacher
    if isinstance(teacher, keras.distillation.Distiller):
        extractor, _ = keras_internals.distiller_feature_extractors(teacher)
        model = extractor if extractor is not None else teacher.teacher
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    return {INPUTS: x, TEACHER_OUTPUTS: outputs}


def unpack(x):
    """Splits data made by `cache_teacher_outputs` into `(inputs, outputs)`.

    Returns `(x, None)` for any other data.
    """
    if isinstance(x, dict) and set(x) == {INPUTS, TEACHER_OUTPUTS}:
        return x[INPUTS], x[TEACHER_OUTPUTS]
    return x, None


def as_teacher_features(outputs, feature_extractor):
    """Cached outputs in the form of Keras's Distiller's teacher features.

    That is `{"final_output": outputs, <layer name>: features, ...}`.
    """
    if isinstance(outputs, dict) and FINAL_OUTPUT in outputs:
        features = outputs
    else:
        features = {FINAL_OUTPUT: outputs}
    if feature_extractor is not None:
        needed = [
            key for key in feature_extractor.output if key != FINAL_OUTPUT
        ]
        missing = [key for key in needed if key not in features]
        if missing:
            raise ValueError(
                "The cached teacher outputs lack the teacher layers "
                f"{missing} that the FeatureDistillation losses read. Cache "
                "them with `cache_teacher_outputs(distiller, x)`, passing "
                "the Distiller rather than the teacher. Received cached "
                f"keys: {sorted(features)}"
            )
    return features
