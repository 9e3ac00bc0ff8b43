"""The TFLite converter as `to_tflite` drives it: settings per mode, and
the conversion through Keras's LiteRT exporter."""

import warnings

import tensorflow as tf

from tfcompress.export.recurrent_unrolling import unrolled_recurrent_layers

QUANTIZATION_MODES = ("none", "float16", "dynamic", "int8", "int16x8")
# Modes calibrated on sample data: weights and activations integer.
INTEGER_MODES = ("int8", "int16x8")


def converter_settings(quantization, select_tf_ops):
    """Returns the `tf.lite.TFLiteConverter` settings for a mode.

    Args:
        quantization: One of `QUANTIZATION_MODES`.
        select_tf_ops: Whether to allow TensorFlow (Flex) ops.

    Returns:
        A dict of converter attributes (`optimizations`, `target_spec`),
        as Keras's exporter takes them.

    Example:

    ```python
    converter_settings("float16", select_tf_ops=False)
    # {'optimizations': [Optimize.DEFAULT], 'target_spec':
    #  {'supported_ops': [OpsSet.TFLITE_BUILTINS],
    #   'supported_types': [tf.float16]}}
    ```
    """
    if quantization == "int8":
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif quantization == "int16x8":
        ops_set = tf.lite.OpsSet
        ops = [
            ops_set.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    else:
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # Keras enables SELECT_TF_OPS (Flex) by default, which makes a file that
    # plain LiteRT builds (Android without the Flex delegate, microcontrollers)
    # cannot run. Builtins only unless the user opts in.
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    target_spec = {"supported_ops": ops}
    settings = {}
    if quantization != "none":
        settings["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        target_spec["supported_types"] = [tf.float16]
    settings["target_spec"] = target_spec
    return settings


def convert(model, path, settings, select_tf_ops):
    """Converts `model` to a `.tflite` file with Keras's LiteRT exporter.

    Recurrent layers are unrolled for the conversion (see
    `tfcompress.export.recurrent_unrolling`), so that they become builtin
    ops; the model is left as it was.

    Args:
        model: A built Keras model.
        path: The file to write.
        settings: Converter attributes (see `converter_settings`).
        select_tf_ops: Whether the settings allow Flex ops; without them,
            a model that needs one gets an error saying how to allow them.

    Raises:
        RuntimeError: If the model needs Flex ops and `select_tf_ops` is
            `False`; the converter's error is kept in the message.
        ValueError: If a recurrent layer reads sequences of unknown length
            and `select_tf_ops` is `False`.

    Example:

    ```python
    convert(model, "model.tflite", converter_settings("none", False), False)
    ```
    """
    with warnings.catch_warnings():
        # For multi-input models the calibrator builds a `tf.lite.Interpreter`
        # internally, which warns that the class is deprecated: nothing the
        # user can act on.
        warnings.filterwarnings(
            "ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated"
        )
        try:
            with unrolled_recurrent_layers(model, select_tf_ops):
                model.export(path, format="litert", verbose=False, **settings)
        except Exception as error:
            message = str(error)
            needs_flex = (
                "ERROR_NEEDS_FLEX_OPS" in message or "TF Select ops" in message
            )
            if needs_flex and not select_tf_ops:
                raise RuntimeError(
                    "The model uses TensorFlow ops that have no TFLite "
                    "builtin kernel (see the converter error below). Replace "
                    "them, or pass select_tf_ops=True to allow them (the "
                    "file then needs the Flex delegate at run time). "
                    f"Converter error: {error}"
                ) from error
            raise
