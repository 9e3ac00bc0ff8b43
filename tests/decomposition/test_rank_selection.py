"""`rank_selection`: rows per layer and rank, errors, MACs, table, plot."""

import json

import numpy as np
import pytest

from tfcompress.decomposition import decompose
from tfcompress.decomposition import rank_selection


@pytest.fixture(scope="module")
def svd_selection(trained_cnn, digits):
    return rank_selection(trained_cnn, method="svd", data=digits[0], verbose=False)


def test_one_row_per_layer_and_rank(svd_selection):
    # Default grid: powers of two below the full rank, then the full rank.
    assert svd_selection.layers == ["dense", "logits"]
    assert [row.rank for row in svd_selection.rows if row.layer == "dense"] == [1, 2, 4, 8, 16, 32, 64]
    assert [row.rank for row in svd_selection.rows if row.layer == "logits"] == [1, 2, 4, 8, 10]
    assert [row.rank for row in svd_selection.rows_of("logits")] == [1, 2, 4, 8, 10]
    assert svd_selection.row("dense").rank == 1


def test_error_falls_with_rank_and_vanishes_at_full_rank(svd_selection):
    for name in svd_selection.layers:
        rows = [row for row in svd_selection.rows if row.layer == name]
        kernel_errors = [row.kernel_error for row in rows]
        output_errors = [row.output_error for row in rows]
        assert all(a > b for a, b in zip(kernel_errors, kernel_errors[1:])), kernel_errors
        assert all(a >= b for a, b in zip(output_errors, output_errors[1:])), output_errors
        assert kernel_errors[-1] < 1e-5 and output_errors[-1] < 1e-5


def test_macs_follow_the_rank(svd_selection):
    for row in svd_selection.rows:
        m, n = (128, 64) if row.layer == "dense" else (64, 10)
        assert (row.macs, row.macs_before) == ((m + n) * row.rank, m * n)
        assert row.params == (m + n) * row.rank + n
        assert row.macs_ratio == pytest.approx(row.macs / row.macs_before)


def test_ranks_for_picks_the_cheapest_rank_within_the_error(svd_selection, trained_cnn):
    chosen = svd_selection.ranks_for(max_output_error=0.3)
    for name, rank in chosen.items():
        fitting = [
            row
            for row in svd_selection.rows
            if row.layer == name and row.output_error <= 0.3 and row.macs < row.macs_before
        ]
        assert rank == min(fitting, key=lambda row: row.macs).rank
    assert "dense" in chosen
    # The choice plugs into decompose.
    _, report = decompose(trained_cnn, method="svd", rank=chosen, verbose=False)
    assert {row.name: row.rank for row in report.layers} == chosen


def test_cp_grid_stops_at_the_macs_break_even(trained_cnn):
    selection = rank_selection(trained_cnn, method="cp", filters=["conv2"], verbose=False)
    rows = selection.rows
    # Powers of two; the last one is the first rank that saves no MACs.
    assert [row.rank for row in rows] == [2**i for i in range(len(rows))]
    assert rows[-1].macs >= rows[-1].macs_before > rows[-2].macs
    errors = [row.kernel_error for row in rows]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_tucker2_with_given_ranks(trained_cnn):
    selection = rank_selection(
        trained_cnn, method="tucker2", ranks={"conv3": [(2, 4), 8, (32, 32), 64]}, verbose=False
    )
    # 64 exceeds conv3's full ranks (32, 32) and is left out.
    assert [row.rank for row in selection.rows] == [(2, 4), (8, 8), (32, 32)]
    assert selection.rows[-1].kernel_error < 1e-5
    assert selection.rows[0].output_error > selection.rows[1].output_error


def test_table_dict_and_plot(trained_cnn, tmp_path):
    selection = rank_selection(trained_cnn, method="cp", ranks=[2, 8], filters=["conv2", "conv3"], verbose=False)
    text = selection.table()
    assert text == str(selection)
    for expected in ("Layer", "Kernel err", "MACs ratio", "conv2", "conv3"):
        assert expected in text
    assert len(text.splitlines()) == 1 + 3 + 4 + 1 + 1  # title, header rules, rows, rule, probe
    data = json.loads(json.dumps(selection.to_dict()))
    assert [row["rank"] for row in data["rows"]] == [2, 8, 2, 8]
    assert [row["layer"] for row in data["rows"]] == ["conv2", "conv2", "conv3", "conv3"]
    path = tmp_path / "ranks.png"
    assert selection.plot(path) == path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_bad_ranks(trained_cnn):
    with pytest.raises(ValueError, match=r"`ranks\[0\]` must be an integer >= 1. Received: ranks\[0\]=0"):
        rank_selection(trained_cnn, ranks=[0, 2], verbose=False)
    with pytest.raises(ValueError, match="`ranks` must be a list of ranks"):
        rank_selection(trained_cnn, ranks=4, verbose=False)
    with pytest.raises(ValueError, match="has no layer named 'nope'"):
        rank_selection(trained_cnn, ranks={"nope": [2]}, verbose=False)
    with pytest.raises(ValueError, match="`filters` matched no layer that method 'svd' can handle: 'nope'"):
        rank_selection(trained_cnn, filters=["nope"], verbose=False)


def test_model_is_unchanged(trained_cnn, digits):
    x = digits[2][:16]
    outputs = trained_cnn.predict(x, verbose=0)
    rank_selection(trained_cnn, method="tucker2", ranks=[2], filters=["conv3"], verbose=False)
    np.testing.assert_array_equal(trained_cnn.predict(x, verbose=0), outputs)
