"""`keras.layers.Embedding` reading an int8-rounded table."""

import keras

from tfcompress.quantization.fake_quant import fake_quant_constant
from tfcompress.quantization.kernel_quantization import KernelQuantization


@keras.saving.register_keras_serializable(package="tfcompress")
class QuantizedEmbedding(KernelQuantization, keras.layers.Embedding):
    """`keras.layers.Embedding` looking rows up in an int8-rounded table.

    TFLite runs the lookup as a GATHER on an int8 table with one scale for
    the whole table (asymmetric, on the table's own range), and the rows it
    returns keep that scale: so the table is rounded here per tensor, by a
    fake-quant op the converter reads, and nothing is rounded after the
    layer.

    Args:
        weight_bits: Bit width simulated for the table, 2 to 8. Defaults
            to `8`.
        **kwargs: `keras.layers.Embedding` arguments.

    Example:

    ```python
    layer = QuantizedEmbedding(100, 8)
    y = layer(np.array([[1, 2, 3]]))  # (1, 3, 8), rows on the int8 grid
    ```
    """

    _round = staticmethod(fake_quant_constant)
    _round_per_tensor = _round  # Already one scale for the whole tensor.

    def call(self, inputs, training=None):
        if inputs.dtype not in ("int32", "int64"):
            inputs = keras.ops.cast(inputs, "int32")
        table = self._rounded(self.embeddings, training)
        outputs = keras.ops.take(table, inputs, axis=0)
        return keras.ops.cast(outputs, dtype=self.compute_dtype)
