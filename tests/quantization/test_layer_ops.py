import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.quantization.layer_ops import layer_scopes
from tfcompress.quantization.layer_ops import op_layers


def test_auto_named_and_nested_layers_map_to_their_ops(tmp_path):
    # Auto-named Dense layers ("dense", "dense_1", ...) get scopes such as
    # "dense_1_2": the suffixes alone cannot tell which layer is which.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    a = keras.layers.Dense(8)(inputs)
    b = keras.layers.Dense(8)(inputs)
    block = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8), keras.layers.Dense(8)],
        name="block",
    )
    x = block(keras.layers.Add()([a, b]))
    outputs = keras.layers.Softmax()(keras.layers.Dense(3)(x))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.tflite"
    to_tflite(model, path)
    inspection = inspect_tflite(path)
    owners = op_layers(model, inspection)
    interpreter = Interpreter(model_path=str(path))

    dense = {
        layer.name: layer
        for layer in [*model.layers, *block.layers]
        if isinstance(layer, keras.layers.Dense)
    }
    assert len(dense) == 5
    fully_connected = [
        (op, layers)
        for op, layers in zip(inspection.ops, owners)
        if op.name == "FULLY_CONNECTED"
    ]
    assert len(fully_connected) == 5
    for op, layers in fully_connected:
        inner = layers[0]
        # The op's weights are its layer's kernel, transposed.
        weights = interpreter.get_tensor(op.inputs[1].index)
        np.testing.assert_array_equal(weights, dense[inner].kernel.numpy().T)
        if inner in [layer.name for layer in block.layers]:
            assert layers == (inner, "block")
        else:
            assert layers == (inner,)
    names = {op.name: layers for op, layers in zip(inspection.ops, owners)}
    add = next(layer for layer in model.layers if "add" in layer.name)
    assert names["ADD"] == (add.name,)
    # The softmax writes the model output, renamed after it.
    assert names["SOFTMAX"] == (model.layers[-1].name,)
    scopes = layer_scopes(model)
    assert scopes["block"] in scopes[block.layers[0].name]


def test_file_of_another_model_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2)], name="other"
    )
    to_tflite(other, tmp_path / "other.tflite")
    with pytest.raises(RuntimeError, match=r"no tensor name starts with"):
        op_layers(model, inspect_tflite(tmp_path / "other.tflite"))
