"""Tests of `tfcompress.analysis.attention_costs`: hand-counted attention."""

import keras
import numpy as np
import pytest

from tfcompress.analysis import profile

L = keras.layers


def _row(report, name):
    matches = [row for row in report.rows if row.name == name]
    assert len(matches) == 1, [row.name for row in report.rows]
    return matches[0]


def _vit_encoder_block(tokens, dim, heads, mlp_dim):
    inputs = keras.Input((tokens, dim))
    x = L.LayerNormalization(epsilon=1e-6, name="norm1")(inputs)
    x = L.MultiHeadAttention(heads, dim // heads, name="attention")(x, x)
    x = L.Add(name="residual1")([inputs, x])
    y = L.LayerNormalization(epsilon=1e-6, name="norm2")(x)
    y = L.Dense(mlp_dim, activation="gelu", name="mlp1")(y)
    y = L.Dense(dim, name="mlp2")(y)
    outputs = L.Add(name="residual2")([x, y])
    return keras.Model(inputs, outputs, name="vit_block")


def test_vit_encoder_block_hand_count():
    tokens, dim, heads, mlp_dim = 16, 32, 4, 64
    key_dim = dim // heads
    report = profile(_vit_encoder_block(tokens, dim, heads, mlp_dim))
    assert report.unknown_macs == []
    assert [row.is_group for row in report.rows] == [False] * 7

    norm = 3 * tokens * dim  # Mean, variance, apply.
    projections = 4 * tokens * dim * (heads * key_dim)  # Q, K, V, output.
    scores = heads * tokens * tokens * key_dim  # Q K^T.
    weighted_sum = heads * tokens * tokens * key_dim  # softmax(.) V.
    mlp = tokens * dim * mlp_dim + tokens * mlp_dim * dim
    assert _row(report, "norm1").macs == norm == 1_536
    assert _row(report, "attention").macs == (
        projections + scores + weighted_sum
    ) == 81_920
    assert _row(report, "residual1").macs == 0
    assert _row(report, "mlp1").macs == tokens * dim * mlp_dim
    assert report.macs == 2 * norm + 81_920 + mlp == 150_528
    # Before attention and normalization had rules, the attention counted
    # its four projections only (65,536) and the normalizations were
    # unknown: 131,072 in all, 12.9% short, with only the normalizations
    # reported.


def _attention_model(layer, query_shape, value_shape, key_shape=None, **call):
    query = keras.Input(query_shape)
    value = keras.Input(value_shape)
    inputs = [query, value]
    if key_shape is not None:
        key = keras.Input(key_shape)
        inputs.append(key)
        call["key"] = key
    outputs = layer(query=query, value=value, **call)
    return keras.Model(inputs, outputs)


def test_cross_attention_with_key_given_by_keyword():
    # Tq = 5, Tk = 7; the key has 6 features, the value 3.
    layer = L.MultiHeadAttention(
        num_heads=2, key_dim=4, value_dim=5, name="mha"
    )
    report = profile(_attention_model(layer, (5, 8), (7, 3), (7, 6)))
    expected = (
        5 * 8 * 2 * 4  # Q projection.
        + 7 * 6 * 2 * 4  # K projection.
        + 7 * 3 * 2 * 5  # V projection.
        + 2 * 5 * 7 * 4  # Q K^T.
        + 2 * 5 * 7 * 5  # Weighted sum of V.
        + 5 * 2 * 5 * 8  # Output projection back to the query's 8.
    )
    assert report.macs == expected
    assert report.unknown_macs == []


def test_keyword_and_positional_calls_count_the_same():
    def model(keywords):
        inputs = keras.Input((6, 8))
        layer = L.MultiHeadAttention(2, 4)
        if keywords:
            outputs = layer(query=inputs, value=inputs)
        else:
            outputs = layer(inputs, inputs)
        return keras.Model(inputs, outputs)

    positional = profile(model(keywords=False))
    assert profile(model(keywords=True)).macs == positional.macs
    assert positional.macs == 4 * 6 * 8 * 8 + 2 * 2 * 6 * 6 * 4


def test_masks_do_not_change_the_count():
    # An attention mask of shape (batch, Tq, Tk) with Tq = Tk = value
    # features must not be taken for the key.
    query = keras.Input((4, 4))
    mask = keras.Input((4, 4), dtype="bool")
    layer = L.MultiHeadAttention(1, 2)
    masked = profile(
        keras.Model(
            [query, mask], layer(query, query, attention_mask=mask)
        )
    )
    plain = profile(
        keras.Model(query, L.MultiHeadAttention(1, 2)(query, query))
    )
    assert masked.macs == plain.macs == 4 * 4 * 4 * 2 + 2 * 4 * 4 * 2


def test_attention_over_two_axes_and_custom_output():
    # Query (3, 4, 8): attention over both axes, so Tq = Tk = 12 positions.
    layer = L.MultiHeadAttention(
        num_heads=2, key_dim=4, attention_axes=(1, 2), output_shape=(6,)
    )
    inputs = keras.Input((3, 4, 8))
    report = profile(keras.Model(inputs, layer(inputs, inputs)))
    positions = 3 * 4
    expected = (
        3 * positions * 8 * 2 * 4  # Q, K, V projections.
        + 2 * positions * positions * 4 * 2  # Scores and weighted sum.
        + positions * 2 * 4 * 6  # Output projection to 6 features.
    )
    assert report.macs == expected


def test_attention_over_one_axis_of_two():
    # attention_axes=(2,): the first axis (3) acts as a batch axis.
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=2)
    inputs = keras.Input((3, 4, 8))
    report = profile(keras.Model(inputs, layer(inputs, inputs)))
    positions = 3 * 4
    expected = (
        4 * positions * 8 * 2 * 4  # Q, K, V, output projections.
        + 2 * (3 * 2 * 4 * 4 * 4)  # Scores and weighted sum, per row.
    )
    assert report.macs == expected


def test_gated_attention():
    inputs = keras.Input((6, 8))
    layer = L.MultiHeadAttention(2, 4, use_gate=True)
    report = profile(keras.Model(inputs, layer(inputs, inputs)))
    # The gate is a fifth projection of the query; its product is
    # element-wise.
    assert report.macs == 5 * 6 * 8 * 8 + 2 * 2 * 6 * 6 * 4


def test_grouped_query_attention():
    inputs = keras.Input((6, 16))
    layer = L.GroupQueryAttention(
        head_dim=4, num_query_heads=4, num_key_value_heads=2
    )
    report = profile(keras.Model(inputs, layer(inputs, inputs)))
    expected = (
        6 * 16 * 4 * 4  # Q: 4 heads.
        + 2 * 6 * 16 * 2 * 4  # K and V: 2 heads.
        + 2 * 4 * 6 * 6 * 4  # Scores and weighted sum on all 4 heads.
        + 6 * 4 * 4 * 16  # Output projection.
    )
    assert report.macs == expected
    assert report.unknown_macs == []


@pytest.mark.parametrize(
    "layer",
    [
        L.Attention(),
        L.Attention(use_scale=True, score_mode="concat"),
        L.AdditiveAttention(),
    ],
    ids=["dot", "concat", "additive"],
)
def test_luong_and_bahdanau_attention(layer):
    query = keras.Input((5, 8))
    value = keras.Input((7, 8))
    report = profile(keras.Model([query, value], layer([query, value])))
    # Scores: Tq * Tv * dim terms; weighted sum: Tq * Tv * value_dim.
    assert report.macs == 5 * 7 * 8 + 5 * 7 * 8
    assert report.params == sum(
        int(np.prod(w.shape)) for w in layer.weights
    )


def test_keras_ops_attention_and_einsum_nodes():
    inputs = keras.Input((6, 2, 4))  # (tokens, heads, head_dim)
    x = keras.ops.dot_product_attention(inputs, inputs, inputs)
    scores = keras.ops.einsum("bqhd,bkhd->bhqk", x, inputs)
    report = profile(keras.Model(inputs, scores))
    assert report.unknown_macs == []
    attention = 6 * 2 * 6 * (4 + 4)
    einsum = 6 * 2 * 6 * 4
    assert report.macs == attention + einsum
