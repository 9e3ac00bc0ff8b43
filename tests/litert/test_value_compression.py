"""Huffman-coded and entropy sizes of a file's weights, checked by hand."""

import math

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.litert import entropy_bits
from tfcompress.litert import huffman_bits
from tfcompress.litert import huffman_code_lengths
from tfcompress.litert import kernels
from tfcompress.litert import tflite_weights
from tfcompress.litert import value_compression
from tfcompress.litert.value_compression import coded_tensor_bytes
from tfcompress.litert.value_compression import sparse_huffman_bytes
from tfcompress.litert.value_compression import tensor_huffman_bytes


def test_huffman_code_of_a_hand_computed_case():
    # Counts 4, 2, 1, 1: codes 0, 10, 110, 111.
    values = np.array([0, 0, 0, 0, 5, 5, -3, 7], dtype=np.int8)
    assert huffman_code_lengths({0: 4, 5: 2, -3: 1, 7: 1}) == {
        0: 1, 5: 2, -3: 3, 7: 3,
    }
    assert huffman_bits(values) == 4 * 1 + 2 * 2 + 3 + 3 == 14
    # Dyadic probabilities: the Huffman code meets the entropy exactly.
    assert entropy_bits(values) == pytest.approx(14.0)
    # 14 bits -> 2 bytes, plus a table of 4 values with their lengths.
    assert tensor_huffman_bytes(values, element_bytes=1) == 2 + 4 * 2


def test_sparse_coding_of_a_hand_computed_case():
    values = np.array([0, 0, 3, 0, 3, 0, 0, 0, 5], dtype=np.int8)
    # Zero runs before each nonzero: 2, 1, 3 (codes of 1, 2, 2 bits);
    # values 3, 3, 5 (1 bit each): 8 bits = 1 byte. Tables: 3 runs at
    # 4 + 1 bytes, 2 values at 1 + 1 bytes.
    assert sparse_huffman_bytes(values, 1) == 1 + 15 + 4
    assert sparse_huffman_bytes(np.zeros(5, np.int8), 1) == 0
    # By channel (rows): runs 1, 1, 1, 1 (one symbol: 1 bit each) and
    # values 7, 7, -2, -2 (1 bit each) in one code: 1 byte, tables of 5
    # and 2 x 2 bytes; a code per row would cost 1 + 5 + 2 x (1 + 2).
    rows = np.array([[0, 7, 0, 7], [0, -2, 0, -2]], dtype=np.int8)
    assert sparse_huffman_bytes(rows, 1, 0) == 1 + 5 + 4


def test_huffman_lengths_satisfy_kraft_and_single_symbols_take_a_bit():
    rng = np.random.default_rng(0)
    counts = {s: int(c) for s, c in enumerate(rng.integers(1, 1000, 40))}
    lengths = huffman_code_lengths(counts)
    assert sum(2.0 ** -n for n in lengths.values()) == pytest.approx(1.0)
    values = np.repeat(list(counts), list(counts.values()))
    assert entropy_bits(values) <= huffman_bits(values)
    assert huffman_bits(values) < entropy_bits(values) + len(values)
    assert huffman_code_lengths({3: 9}) == {3: 1}
    assert huffman_code_lengths({}) == {}


def test_export_reports_huffman_size_of_a_sparse_int8_file(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, name="fc")]
    )
    kernel = np.random.default_rng(0).normal(size=(64, 32))
    kernel[np.abs(kernel) < 1.2] = 0.0  # About 77% zeros.
    model.layers[0].kernel.assign(kernel)
    data = np.random.default_rng(1).normal(size=(64, 64)).astype("float32")
    export = tfcompress.to_tflite(
        model, tmp_path / "m.tflite", quantization="int8", data=data,
        verbose=False,
    )
    (stored,) = kernels(tflite_weights(export))
    assert stored.dtype == "int8" and stored.values.shape == (32, 64)
    np.testing.assert_array_equal(stored.values == 0, kernel.T == 0)
    figures = export.value_compression
    assert figures == value_compression(export)
    assert figures.kernel_bytes == 64 * 32
    # Every constant's code recomputed here, table and all.
    expected = sum(coded_tensor_bytes(w) for w in tflite_weights(export))
    assert figures.huffman_bytes == expected
    assert figures.entropy_bytes <= figures.huffman_bytes < figures.weight_bytes
    assert figures.huffman_file_bytes == (
        export.size_bytes - figures.weight_bytes + figures.huffman_bytes
    )
    # The zeros code in about a bit each: the kernel shrinks to under half.
    kernel_code = tensor_huffman_bytes(stored.values, 1)
    assert kernel_code < 0.5 * stored.nbytes
    assert coded_tensor_bytes(stored) == min(
        kernel_code,
        sum(tensor_huffman_bytes(row, 1) for row in stored.values),
        sparse_huffman_bytes(stored.values, 1, 0),
    )
    assert math.isclose(
        export.huffman_size_bytes, figures.huffman_file_bytes
    )
    assert "Huffman-coded" in str(export)


def test_int4_weights_are_unpacked_and_found_through_dequantize(tmp_path):
    pytest.importorskip("ai_edge_quantizer")
    from tfcompress.search import quantize_per_op
    from tfcompress.search import weighted_ops

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(6, 3, name="conv"),
                              keras.layers.Flatten(),
                              keras.layers.Dense(5, name="fc")])
    float_file = tfcompress.to_tflite(model, tmp_path / "f.tflite", verbose=False)
    named = weighted_ops(float_file, model)
    quantize_per_op(
        float_file, tmp_path / "w4.tflite",
        assignment={name: "int4_weights" for name in named},
        data=np.random.default_rng(0).random((8, 8, 8, 3), dtype=np.float32),
        model=model,
    )
    stored = {w.kernel_of: w for w in kernels(tflite_weights(tmp_path / "w4.tflite"))}
    # Each kernel is an int4 constant that reaches its op through DEQUANTIZE.
    assert set(stored) == {"CONV_2D", "FULLY_CONNECTED"}
    for op, layer, to_file_layout in (
        ("CONV_2D", "conv", lambda k: np.transpose(k, (3, 0, 1, 2))),
        ("FULLY_CONNECTED", "fc", np.transpose),
    ):
        weight = stored[op]
        kernel = to_file_layout(model.get_layer(layer).kernel.numpy())
        assert weight.dtype == "int4"
        assert weight.nbytes == -(-kernel.size // 2)  # Two values a byte.
        assert weight.values.shape == kernel.shape
        assert -8 <= weight.values.min() and weight.values.max() <= 7
        # Dequantized, within half a step of the Keras kernel per channel.
        scales = np.asarray(weight.quantization.scales).reshape(
            (-1,) + (1,) * (kernel.ndim - 1))
        error = np.abs(weight.dequantized() - kernel)
        assert np.all(error <= 0.5 * scales + 1e-6)
    # Every int4 kernel is coded as its unpacked values.
    assert value_compression(tmp_path / "w4.tflite").kernel_bytes == sum(
        w.nbytes for w in stored.values())
