"""Recurrent layers for LiteRT: unrolled over their timesteps for the export.

A Keras 3 recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `ConvLSTM*`,
`RNN(cell)`, also inside `Bidirectional`) runs its timesteps in a
`tf.while_loop` over tensor lists. The TFLite converter cannot lower those
lists to builtin ops for a dynamic batch, so the file needs Flex ops
(`FlexTensorListReserve`, ...) that plain LiteRT cannot run. Unrolled
(`unroll=True`), the same layer is one cell step per timestep, built from
ops every LiteRT build has (`FULLY_CONNECTED`, `LOGISTIC`, `TANH`, `MUL`,
`ADD`, `SPLIT`), with float, hybrid (dynamic range) and int8 kernels, and
XNNPACK runs them.

Measured on a trained Embedding + LSTM(24) classifier of 16 timesteps
(`benchmarks/recurrent_export.py`; TF 2.21, LiteRT CPU, one thread, one
example per `invoke()`), against the two other routes to builtin ops:

- The converter's fused `UNIDIRECTIONAL_SEQUENCE_LSTM`, which it makes from
  a function marked `api_implements="lstm_..."` with the `time_major`
  attribute and the signature `(inputs, init_h, init_c, kernel,
  recurrent_kernel, bias) -> (last_output, outputs, h, c, runtime)`, as
  tf.keras 2's LSTM generated (Keras 3's does not). A function generated at
  export time from the layer's weights is fused, but only with a fixed
  batch (the fusion checks that the initial states have static shapes),
  for LSTM only (LiteRT has no fused GRU), without masks. With constant
  zero initial states (tf.keras 2's) the file carries the final state over
  to the next `invoke()` (the states become variable tensors): 73 % top-1
  agreement, relative error 0.78, unless the app resets the interpreter's
  variables before each call; initial states computed in the graph avoid
  that. The fused files were 2.6 to 2.9 (float) and 6.7 to 7.7 (int8)
  times smaller than the unrolled ones, and 1.3 to 1.5 (float) and about
  11.5 (int8) times slower (XNNPACK runs the unrolled ops). Their int8 error was 0.34 % (unrolled:
  0.63 %), but 110 % on a barely trained model whose unrolled int8 file
  was at 11 %.
- The `tf.while_loop` itself, which the converter lowers to a builtin
  `WHILE` once the batch is fixed: float and dynamic range files ran
  correctly for sequences of any length, 2.3 to 2.9 times smaller and 2.2
  to 2.6 times slower than unrolled; the int8 conversion crashed the
  process (segmentation fault).

So recurrent layers are unrolled for the export: the one route that gives
correct files for every recurrent layer, mask, batch size and
quantization mode, and the fastest. It needs the number of timesteps, and
the file grows with it: about 2.75 KB of graph per timestep for this LSTM
(44 KB at 8 timesteps, 198 KB at 64), on top of the weights, which are
stored once.
"""

import contextlib

import keras

from tfcompress.graph import layer_tree

# Keras's message when an unrolled layer meets sequences of unknown length.
_KERAS_UNKNOWN_TIMESTEPS = "Cannot unroll a RNN if the time dimension"
# A layer whose input shape cannot be read before the export traces it.
_UNREAD = object()


def layers_to_unroll(model, select_tf_ops=False):
    """The recurrent layers of `model` that the export unrolls.

    Every `keras.layers.RNN` (LSTM, GRU, SimpleRNN, ConvLSTM, RNN of a
    cell) under `model` that is not unrolled already, at any depth
    (inside nested models, `Bidirectional` and other layers). A layer that
    reads sequences of unknown length cannot be unrolled: with
    `select_tf_ops=True` it keeps its loop (Flex ops), otherwise it is an
    error.

    Args:
        model: A built Keras model.
        select_tf_ops: Whether the export allows TensorFlow (Flex) ops.
            Defaults to `False`.

    Returns:
        A list of the layers, in model order.

    Raises:
        ValueError: If a recurrent layer reads sequences of unknown length
            and `select_tf_ops` is `False`; the message names the layers.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((20,), dtype="int32"),
        keras.layers.Embedding(1000, 16),
        keras.layers.LSTM(32),
        keras.layers.Dense(2),
    ])
    [layer.name for layer in layers_to_unroll(model)]  # ["lstm"]
    ```
    """
    found, unknown = [], []
    for entry in layer_tree.walk_layers(model):
        layer = entry.layer
        if not isinstance(layer, keras.layers.RNN) or layer.unroll:
            continue
        timesteps = _timesteps(layer, entry.ancestors)
        if timesteps is None:
            unknown.append(entry)
            continue
        found.append(layer)
    if unknown and not select_tf_ops:
        raise ValueError(unknown_timesteps_message(model, unknown))
    return found


@contextlib.contextmanager
def unrolled_recurrent_layers(model, select_tf_ops=False):
    """Unrolls the model's recurrent layers while the block runs.

    Sets `unroll=True` on each layer of `layers_to_unroll` and gives each
    its own setting back when the block ends, also on an error: the model
    is the same model afterwards (its config, its weights, its compiled
    functions). The layers' weights are used as they are, not copied, so
    this works for Sequential, functional and subclassed models alike.

    Args:
        model: A built Keras model.
        select_tf_ops: Whether the export allows TensorFlow (Flex) ops
            (see `layers_to_unroll`). Defaults to `False`.

    Yields:
        The layers unrolled.

    Raises:
        ValueError: If a recurrent layer reads sequences of unknown length
            (see `layers_to_unroll`), also when that is only found while
            the block traces the model (a subclassed model).

    Example:

    ```python
    with unrolled_recurrent_layers(model):
        model.export("model.tflite", format="litert")
    ```
    """
    layers = layers_to_unroll(model, select_tf_ops)
    previous = [(layer, layer.unroll) for layer in layers]
    try:
        for layer in layers:
            layer.unroll = True
        yield layers
    except ValueError as error:
        if _KERAS_UNKNOWN_TIMESTEPS not in str(error):
            raise
        raise ValueError(unknown_timesteps_message(model, ())) from error
    finally:
        for layer, unroll in previous:
            layer.unroll = unroll


def unknown_timesteps_message(model, entries):
    """Says which recurrent layers cannot be unrolled, and what to do.

    Args:
        model: The model being exported.
        entries: `LayerPath`s of the layers that read sequences of unknown
            length, or `()` when they are not known by name.

    Returns:
        The message of the `ValueError`.

    Example:

    ```python
    raise ValueError(unknown_timesteps_message(model, entries))
    ```
    """
    if entries:
        where = ", ".join(
            f"{type(entry.layer).__name__} {entry.path!r}" for entry in entries
        )
        received = (
            f"recurrent layers reading sequences of unknown length: {where}"
        )
    else:
        received = "a recurrent layer reading sequences of unknown length"
    return (
        "LiteRT export unrolls recurrent layers over their timesteps, so "
        "that the file runs with builtin ops only, and that needs a fixed "
        "number of timesteps. Give the model's input a fixed length (e.g. "
        "keras.Input((timesteps, features)), or keras.Input((timesteps,)) "
        "before an Embedding) and pad or cut sequences to it, or pass "
        "select_tf_ops=True to keep the loop as TensorFlow (Flex) ops, which "
        "need the Flex delegate at run time. Received: model "
        f"{getattr(model, 'name', type(model).__name__)!r} with {received}"
    )


def _timesteps(layer, ancestors):
    """The number of timesteps `layer` reads: an int, `None` (unknown), or
    `_UNREAD` when its input shape is not known before the export."""
    shape = _input_shape(layer)
    if shape is _UNREAD and ancestors and isinstance(
        ancestors[-1], keras.layers.Bidirectional
    ):
        # A Bidirectional's own layers are called inside its `call`, so
        # only the wrapper has an input in the graph; they read its input.
        shape = _input_shape(ancestors[-1])
    if shape is _UNREAD:
        return _UNREAD
    return shape[1]


def _input_shape(layer):
    """The shape of the sequences a layer was first called on, or
    `_UNREAD` when it has no call in a graph (a subclassed model's layer,
    a wrapped layer)."""
    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return _UNREAD
    if isinstance(inputs, (list, tuple)):
        inputs = inputs[0]  # Sequences first, then initial states.
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) < 2:
        return _UNREAD
    return tuple(shape)
