"""Run a `.tflite` file in LiteRT and keep every tensor's values."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.interpreter import OpResolverType

from tfcompress.litert.tensor_values import to_input_type
from tfcompress.litert.tflite_file_path import tflite_file_path


class TensorTracer:
    """Runs a `.tflite` file in LiteRT and keeps every tensor's values.

    With `experimental_preserve_all_tensors`, intermediate tensors keep
    their values after `invoke()` instead of sharing memory; the default
    delegate (XNNPACK) is left out, since the tensors inside its fused
    partitions would never be written.

    It is how tfcompress looks inside a file: calibration histograms each
    activation tensor, and `layer_quantization_error` compares a float and
    a quantized file tensor by tensor.

    Args:
        model_path: Path to a `.tflite` file, or the `TFLiteExport` that
            `to_tflite()` returned.
        model_content: The file's bytes, instead of `model_path`.

    Example:

    ```python
    tracer = TensorTracer("model.tflite")
    tracer.run([x[:32]])
    first_output = inspect_tflite("model.tflite").ops[0].outputs[0]
    values = tracer.tensor(first_output.index)  # As stored (int8 or float).
    ```
    """

    def __init__(self, model_path=None, model_content=None):
        if model_path is not None:
            model_path = tflite_file_path(model_path, "model_path")
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
                detail["index"], to_input_type(value, detail)
            )
        self.interpreter.invoke()

    def tensor(self, index):
        """The values of tensor `index` after the last run, as stored."""
        return self.interpreter.get_tensor(index)
