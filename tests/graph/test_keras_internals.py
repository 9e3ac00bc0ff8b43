"""Each private Keras attribute tfcompress reads, checked on a small model.

`tfcompress.graph.keras_internals` is the only module that touches Keras's
internals; these tests fail loudly, and say which access broke, on a Keras
release that changes one of them.
"""

import keras
import numpy as np
import pytest

from tfcompress.graph import keras_internals


@pytest.fixture
def model():
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    outputs = keras.ops.add(hidden, 1.0)
    return keras.Model(inputs, outputs, name="small")


def test_nodes_by_depth_lists_every_call_deepest_first(model):
    by_depth = keras_internals.nodes_by_depth(model)
    assert isinstance(by_depth, dict)
    ordered = [
        node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]
    ]
    names = [type(node.operation).__name__ for node in ordered]
    assert names == ["InputLayer", "Dense", "Add"]
    add = ordered[-1]
    # The public node attributes the graph core reads.
    assert add.input_tensors[0] is ordered[1].outputs[0]
    args, kwargs = add.arguments.fill_in({id(add.input_tensors[0]): "value"})
    assert args[0] == "value" and args[1] == 1.0 and not kwargs
    assert ordered[0].is_input and not add.is_input


def test_producer_is_the_operation_that_made_the_tensor(model):
    assert keras_internals.producer(model.outputs[0]).__class__.__name__ == "Add"
    hidden = model.get_layer("hidden")
    assert keras_internals.producer(hidden.output) is hidden


def test_sublayers_of_a_layer_that_is_not_a_model():
    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(2, name="first")
            self.inner = keras.Sequential(
                [keras.layers.Dense(2, name="second")], name="inner"
            )

        def call(self, x):
            return self.inner(self.first(x))

    block = Block()
    block(np.zeros((1, 3), "float32"))
    direct = keras_internals.sublayers(block)
    assert [layer.name for layer in direct] == ["first", "inner"]
    every = keras_internals.sublayers(block, recursive=True, include_self=True)
    names = [
        layer.name
        for layer in every[1:]
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert names == ["first", "inner", "second"]
    assert every[0] is block


def test_sequential_graph_exists_once_built():
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert keras_internals.sequential_graph(unbuilt) is None
    built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    graph = keras_internals.sequential_graph(built)
    assert keras_internals.is_functional(graph)
    assert not keras_internals.is_functional(built)


def test_op_classes_are_found_by_name(model):
    add = keras_internals.op_class("numpy", "Add")
    assert add is not None
    assert isinstance(keras_internals.producer(model.outputs[0]), add)
    assert keras_internals.op_class("numpy", "NoSuchOp") is None


def test_intercepted_calls_reach_the_wrapper_and_are_restored():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    seen = []

    def wrapper(original, *args, **kwargs):
        seen.append(args[0].shape)
        return original(*args, **kwargs)

    handle = keras_internals.intercept_call(layer, wrapper)
    first = layer(np.ones((5, 3), "float32"))
    keras_internals.restore_call(*handle)
    second = layer(np.ones((5, 3), "float32"))
    assert seen == [(5, 3)]
    np.testing.assert_allclose(first, second)
    assert "call" not in layer.__dict__


def test_distiller_feature_extractors_read_the_named_layers():
    def net(name):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, name=f"{name}_hidden")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(hidden), name=name)

    teacher, student = net("teacher"), net("student")
    plain = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.LogitsDistillation(),
    )
    assert keras_internals.distiller_feature_extractors(plain) == (None, None)
    features = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.FeatureDistillation(
            teacher_layer_name="teacher_hidden",
            student_layer_name="student_hidden",
        ),
    )
    teacher_extractor, student_extractor = (
        keras_internals.distiller_feature_extractors(features)
    )
    outputs = teacher_extractor(np.ones((1, 4), "float32"))
    assert "teacher_hidden" in outputs
    assert "student_hidden" in student_extractor(np.ones((1, 4), "float32"))


def test_receives_mask_sees_the_mask_of_each_call():
    tokens = keras.Input((5,), dtype="int32")
    masked = keras.layers.LSTM(3, name="masked")
    masked(keras.layers.Embedding(10, 4, mask_zero=True)(tokens))
    plain = keras.layers.LSTM(3, name="plain")
    plain(keras.layers.Embedding(10, 4)(tokens))
    assert keras_internals.receives_mask(masked)
    assert not keras_internals.receives_mask(plain)
    assert not keras_internals.receives_mask(keras.layers.LSTM(3))  # Uncalled.
