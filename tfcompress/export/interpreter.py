"""Run a `.tflite` file with the LiteRT interpreter, like `model.predict`."""

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.interpreter import OpResolverType

from tfcompress.argument_validation import integer_at_least

_QUANTIZED_DTYPES = (np.int8, np.uint8, np.int16)


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
        path: Path to a `.tflite` file.
        num_threads: Number of CPU threads the interpreter may use, an
            integer >= 1. Defaults to `None`, the runtime's default.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    tfcompress.export.to_tflite(model, "model.tflite")
    litert_model = LiteRTModel("model.tflite")
    y = litert_model.predict(np.random.rand(10, 4))  # shape (10, 3), float32
    ```
    """

    def __init__(self, path, num_threads=None):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No `.tflite` file at `path`. Received: path={path!r}"
            )
        if num_threads is not None:
            integer_at_least("num_threads", num_threads, minimum=1)
        self.path = path
        self.num_threads = num_threads
        self._interpreter = Interpreter(
            model_path=path, num_threads=num_threads
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
        _check_input_shape(x, signature)
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
            chunk = _to_input_type(chunk, input_detail)
            self._ensure_input_shape(input_detail["index"], chunk.shape)
            self._interpreter.set_tensor(input_detail["index"], chunk)
            self._interpreter.invoke()
            result = self._interpreter.get_tensor(output_detail["index"])
            outputs.append(_to_float(result, output_detail)[:num_valid])
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
            _format_signature(detail["shape_signature"]) if detail else "()"
        )
        dtype = np.dtype(detail["dtype"]).name if detail else "?"
        return (
            f"<LiteRTModel path={self.path!r} input={signature} {dtype}, "
            f"{len(self.output_details)} output(s)>"
        )


def _format_signature(signature):
    dims = ["None" if int(d) == -1 else str(int(d)) for d in signature]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(dims) + ")"


def _check_input_shape(x, signature):
    """Checks `x`'s per-example shape against the input shape signature."""
    expected = signature[1:]
    received = list(x.shape[1:])
    matches = x.ndim == len(signature) and all(
        e == -1 or e == r for e, r in zip(expected, received)
    )
    if not matches:
        raise ValueError(
            "`x` does not match the model input: expected per-example shape "
            f"{_format_signature(expected)} (model input shape "
            f"{_format_signature(signature)}). "
            f"Received: x.shape={tuple(x.shape)}"
        )


def _quantization(detail):
    """Returns `(scale, zero_point)`; scale 0.0 means "not quantized"."""
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zero_points = params.get("zero_points")
    if scales is not None and len(scales) == 1:
        return float(scales[0]), int(zero_points[0])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


def _to_input_type(x, detail):
    """Casts or quantizes `x` to the input tensor's dtype."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = _quantization(detail)
    if dtype.type in _QUANTIZED_DTYPES and scale != 0.0:
        info = np.iinfo(dtype)
        q = np.round(x.astype(np.float32) / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _to_float(y, detail):
    """Dequantizes a quantized output tensor, casts any other to float32."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = _quantization(detail)
    if dtype.type in _QUANTIZED_DTYPES and scale != 0.0:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y.astype(np.float32)


class _TensorTracer:
    """Runs a `.tflite` file in LiteRT and keeps every tensor's values.

    With `experimental_preserve_all_tensors`, intermediate tensors keep
    their values after `invoke()` instead of sharing memory; the default
    delegate (XNNPACK) is left out, since the tensors inside its fused
    partitions would never be written.

    Args:
        model_path: Path to a `.tflite` file.
        model_content: The file's bytes, instead of `model_path`.
    """

    def __init__(self, model_path=None, model_content=None):
        self.interpreter = Interpreter(
            model_path=model_path,
            model_content=model_content,
            experimental_op_resolver_type=(
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
            experimental_preserve_all_tensors=True,
        )
        self.interpreter.allocate_tensors()
        self._input_details = self.interpreter.get_input_details()
        self._by_name = {}
        signatures = self.interpreter.get_signature_list()
        if signatures:
            runner = self.interpreter.get_signature_runner(
                next(iter(signatures))
            )
            self._by_name = {
                name: detail["index"]
                for name, detail in runner.get_input_details().items()
            }

    @property
    def input_names(self):
        """The signature's input names, `[]` for a file without one."""
        return list(self._by_name)

    @property
    def has_dynamic_batch(self):
        """Whether every input's first dimension may vary."""
        return all(
            len(d["shape_signature"]) > 0 and d["shape_signature"][0] == -1
            for d in self._input_details
        )

    def run(self, inputs):
        """Runs the file once.

        Args:
            inputs: A list of arrays, one per input in the file's input
                order, or a dict keyed by signature input name. Float
                arrays are quantized for an integer input tensor.
        """
        details = {d["index"]: d for d in self._input_details}
        if isinstance(inputs, dict):
            unknown = [name for name in inputs if name not in self._by_name]
            if unknown:
                raise ValueError(
                    f"Unknown input name(s) {unknown}. Expected names: "
                    f"{self.input_names}. Received: {list(inputs)}"
                )
            feed = [
                (details[self._by_name[name]], np.asarray(value))
                for name, value in inputs.items()
            ]
        else:
            feed = [
                (detail, np.asarray(value))
                for detail, value in zip(self._input_details, inputs)
            ]
        shapes = {
            d["index"]: tuple(int(n) for n in d["shape"])
            for d in self.interpreter.get_input_details()
        }
        resized = False
        for detail, value in feed:
            if shapes[detail["index"]] != value.shape:
                self.interpreter.resize_tensor_input(
                    detail["index"], list(value.shape)
                )
                resized = True
        if resized:
            self.interpreter.allocate_tensors()
        for detail, value in feed:
            self.interpreter.set_tensor(
                detail["index"], _to_input_type(value, detail)
            )
        self.interpreter.invoke()

    def tensor(self, index):
        """The values of tensor `index` after the last run, as stored."""
        return self.interpreter.get_tensor(index)
