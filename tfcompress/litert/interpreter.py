"""Run a `.tflite` file with the LiteRT interpreter, like `model.predict`."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.interpreter import OpResolverType

from tfcompress.argument_validation import integer_at_least
from tfcompress.litert.input_shape import check_input_shape
from tfcompress.litert.input_shape import format_signature
from tfcompress.litert.tensor_values import to_float
from tfcompress.litert.tensor_values import to_input_type
from tfcompress.litert.tflite_file_path import tflite_file_path


class LiteRTModel:
    """A `.tflite` model loaded in the LiteRT interpreter.

    `predict()` accepts float inputs of any batch size and returns float32
    outputs, whatever the file's input and output tensor types: it resizes a
    dynamic batch dimension when the batch size changes, splits inputs into
    chunks for a fixed batch dimension, quantizes inputs for int8, uint8 and
    int16 input tensors and dequantizes such outputs with the tensors' own
    `(scale, zero_point)` (files from `to_tflite(..., input_type="int8")`).

    `predict()` supports models with one input and one output; the raw
    interpreter is available as `interpreter` for anything else.

    Args:
        path: Path to a `.tflite` file, or the `TFLiteExport` that
            `to_tflite()` returned.
        num_threads: Number of CPU threads the interpreter may use, an
            integer >= 1. Defaults to `None`, the runtime's default.
        xnnpack: Whether LiteRT applies its default XNNPACK delegate, as
            the Android and Python interpreters do unless told otherwise
            (`True`), or runs TFLite's builtin kernels only (`False`, what
            a runtime without XNNPACK runs). The two round int8 ops
            differently (requantization, MEAN, LOGISTIC), so comparing them
            on one file shows how much its answers depend on rounding.
            Defaults to `True`.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If `num_threads` is not an integer >= 1.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    export = tfcompress.export.to_tflite(model, "model.tflite")
    litert_model = LiteRTModel("model.tflite")  # or LiteRTModel(export)
    y = litert_model.predict(np.random.rand(10, 4))  # shape (10, 3), float32
    ```
    """

    def __init__(self, path, num_threads=None, xnnpack=True):
        path = tflite_file_path(path)
        if num_threads is not None:
            integer_at_least("num_threads", num_threads, minimum=1)
        if not isinstance(xnnpack, bool):
            raise ValueError(
                f"`xnnpack` must be True or False. Received: xnnpack={xnnpack!r}"
            )
        self.path = path
        self.num_threads = num_threads
        self.xnnpack = xnnpack
        resolver = {}
        if not xnnpack:
            resolver["experimental_op_resolver_type"] = (
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        self._interpreter = Interpreter(
            model_path=path, num_threads=num_threads, **resolver
        )
        self._interpreter.allocate_tensors()

    @property
    def interpreter(self):
        """The underlying `ai_edge_litert.interpreter.Interpreter`."""
        return self._interpreter

    @property
    def input_details(self):
        """The interpreter's input tensor details (list of dicts)."""
        return self._interpreter.get_input_details()

    @property
    def output_details(self):
        """The interpreter's output tensor details (list of dicts)."""
        return self._interpreter.get_output_details()

    def predict(self, x, batch_size=32):
        """Runs the model on `x`, batch by batch.

        Args:
            x: Array of shape `(N, *input_shape)`. Any numeric dtype; it is
                cast (or quantized) to the model's input tensor type.
            batch_size: Number of examples per `invoke()`, an integer >= 1.
                Ignored when the model has a fixed batch dimension, which is
                then used instead. Defaults to `32`.

        Returns:
            A float32 array of shape `(N, *output_shape)`.
        """
        integer_at_least("batch_size", batch_size, minimum=1)
        input_details = self.input_details
        output_details = self.output_details
        if len(input_details) != 1 or len(output_details) != 1:
            raise ValueError(
                "`LiteRTModel.predict()` supports models with one input and "
                "one output. Received: a model with "
                f"{len(input_details)} input(s) and {len(output_details)} "
                f"output(s) at path={self.path!r}. Use `.interpreter` to run "
                "it directly."
            )
        input_detail = input_details[0]
        output_detail = output_details[0]
        signature = [int(d) for d in input_detail["shape_signature"]]
        x = np.asarray(x)
        check_input_shape(x, signature)
        if len(x) == 0:
            raise ValueError(
                "`x` is empty. Received: x.shape="
                f"{tuple(x.shape)}; pass at least one example."
            )

        fixed_batch = signature[0] if signature[0] != -1 else None
        step = fixed_batch or batch_size
        outputs = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            num_valid = len(chunk)
            if fixed_batch is not None and num_valid < fixed_batch:
                # Pad the last chunk up to the fixed batch, drop it after.
                padding = np.zeros(
                    (fixed_batch - num_valid,) + chunk.shape[1:], chunk.dtype
                )
                chunk = np.concatenate([chunk, padding])
            chunk = to_input_type(chunk, input_detail)
            self._ensure_input_shape(input_detail["index"], chunk.shape)
            self._interpreter.set_tensor(input_detail["index"], chunk)
            self._interpreter.invoke()
            result = self._interpreter.get_tensor(output_detail["index"])
            outputs.append(to_float(result, output_detail)[:num_valid])
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def _ensure_input_shape(self, index, shape):
        current = self._interpreter.get_input_details()[0]["shape"]
        if tuple(int(d) for d in current) != tuple(shape):
            # Resizing invalidates the tensor plan: only when needed.
            self._interpreter.resize_tensor_input(index, list(shape))
            self._interpreter.allocate_tensors()

    def __repr__(self):
        detail = self.input_details[0] if self.input_details else None
        signature = (
            format_signature(detail["shape_signature"]) if detail else "()"
        )
        dtype = np.dtype(detail["dtype"]).name if detail else "?"
        return (
            f"<LiteRTModel path={self.path!r} input={signature} {dtype}, "
            f"{len(self.output_details)} output(s)>"
        )
