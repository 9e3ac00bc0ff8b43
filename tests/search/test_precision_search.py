"""Per-op precision search on a float .tflite file (HAQ-style), in LiteRT."""

import os

import keras
import numpy as np
import pytest

from tfcompress.export import evaluate_tflite
from tfcompress.export import inspect_tflite
from tfcompress.export import to_tflite
from tfcompress.search import Budget
from tfcompress.search import quantize_per_op
from tfcompress.search import search_precision
from tfcompress.search import weighted_ops

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def float_file(digits, tmp_path_factory):
    """A small CNN on digits (conv, conv, dense) and its float32 file."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="c1"),
            keras.layers.Conv2D(16, 3, activation="relu", name="c2"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="d"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), LOSS)
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    path = str(tmp_path_factory.mktemp("precision") / "float.tflite")
    to_tflite(model, path, verbose=0)
    return model, path, x_train[:200], (x_test, y_test)


def _op_of(path, kind, number):
    """The `number`-th op named `kind` of a file."""
    return [op for op in inspect_tflite(path).ops if op.name == kind][number]


def test_assignment_is_what_the_file_holds(float_file, tmp_path):
    model, path, x, (x_test, y_test) = float_file
    assert list(weighted_ops(path, model)) == ["c1", "c2", "d"]
    export = quantize_per_op(
        path,
        tmp_path / "mixed.tflite",
        assignment={"c1": "float32", "c2": "int8", "d": "int4_weights"},
        data=x,
        model=model,
    )
    mixed = export.path
    first, second = _op_of(mixed, "CONV_2D", 0), _op_of(mixed, "CONV_2D", 1)
    dense = _op_of(mixed, "FULLY_CONNECTED", 0)
    # c1 kept float: float input, kernel and output.
    assert [t.dtype for t in first.inputs[:2]] == ["float32", "float32"]
    assert first.outputs[0].dtype == "float32"
    # c2 int8: int8 input, kernel and output (a QUANTIZE before it).
    assert [t.dtype for t in second.inputs[:2]] == ["int8", "int8"]
    assert second.outputs[0].dtype == "int8"
    # d: its kernel stored int4, dequantized, computed in float.
    dequantize = [
        op for op in inspect_tflite(mixed).ops
        if op.name == "DEQUANTIZE" and op.inputs[0].dtype == "int4"
    ]
    assert len(dequantize) == 1 and dequantize[0].inputs[0].shape == (10, 256)
    assert dense.outputs[0].dtype == "float32"
    # The file's interface stays float32, as to_tflite's int8 files.
    inspection = inspect_tflite(mixed)
    assert inspection.input_dtypes == ["float32"]
    assert inspection.output_dtypes == ["float32"]
    assert export.precision.num_integer_ops == 1
    assert export.keep_float == ("c1",)
    assert export.size_bytes == os.path.getsize(mixed)
    float_accuracy = evaluate_tflite(path, x_test, y_test)
    assert abs(evaluate_tflite(mixed, x_test, y_test) - float_accuracy) < 0.03

    # int16 activations: the 16x8 kernel reads and writes int16.
    wide = quantize_per_op(
        path, tmp_path / "wide.tflite", assignment={"c2": "int16_activations"}, data=x,
        model=model,
    ).path
    second = _op_of(wide, "CONV_2D", 1)
    assert second.inputs[0].dtype == "int16" and second.outputs[0].dtype == "int16"
    assert second.inputs[1].dtype == "int8"
    assert _op_of(wide, "CONV_2D", 0).outputs[0].dtype == "int8"  # left out: int8


def test_search_meets_the_size_budget_and_resumes(float_file, tmp_path, capsys):
    model, path, x, validation = float_file
    journal = tmp_path / "study.log"
    arguments = dict(
        budget=Budget(tflite_bytes_ratio=0.4),
        data=x,
        validation_data=validation,
        storage=journal,
        study_name="digits",
        seed=0,
    )
    export, report = search_precision(
        model, trials=3, path=tmp_path / "best.tflite", **arguments
    )
    float_size = os.path.getsize(path)
    # Every row's size was read back from its file; the budget holds.
    assert report.float_size_bytes == pytest.approx(float_size, rel=0.01)
    assert export.size_bytes == os.path.getsize(export.path)
    assert export.size_bytes <= 0.4 * report.float_size_bytes
    best = report.row(report.best)
    assert best.within_budget and best.size_bytes == export.size_bytes
    for row in report.rows:
        assert row.within_budget == (row.size_bytes <= 0.4 * report.float_size_bytes)
    assert best.accuracy == max(r.accuracy for r in report.rows if r.within_budget)
    assert evaluate_tflite(export, *validation) == pytest.approx(best.accuracy)
    # The uniform assignments first, then the searched ones.
    assert len(report.rows) == 4 + 3
    assert report.rows[0].name == "trial 0 (all int8)"
    assert report.pareto_front and report.best in report.table()
    # One progress line per counted trial (a repeated proposal is skipped).
    assert capsys.readouterr().out.count("/7): size") == 7
    assert len({tuple(r.assignment.values()) for r in report.rows}) == 7
    report.plot(tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").stat().st_size > 0
    # Resumed from the journal (the float file given as a path this time;
    # the ops are matched by position). Worker processes share a study as
    # in the channel search's test (two spawned processes cost ~40 s here).
    _, resumed = search_precision(path, trials=4, verbose=0, **arguments)
    assert len(resumed.rows) == 4 + 4
    assert [r.size_bytes for r in resumed.rows[:7]] == [
        r.size_bytes for r in report.rows
    ]


def test_latency_budget_is_met_as_measured(float_file):
    _, path, x, validation = float_file
    export, report = search_precision(
        path,
        budget=Budget(latency_ratio=1.0),
        data=x,
        validation_data=validation,
        trials=1,
        choices=("int8", "int16_activations"),
        latency_runs=20,
        verbose=0,
    )
    best = report.row(report.best)
    assert best.latency_ratio <= 1.0 and best.latency_ms > 0
    # LiteRT's 16x8 kernels are slower than its int8 ones on this CPU.
    int8 = report.row("trial 0 (all int8)")
    int16 = report.row("trial 1 (all int16_activations)")
    assert int16.latency_ms > int8.latency_ms
    assert report.float_latency_ms > 0


def test_errors(float_file, tmp_path):
    model, path, x, validation = float_file
    good = dict(data=x, validation_data=validation, trials=1, verbose=0)
    with pytest.raises(ValueError, match="does not change MACs"):
        search_precision(path, budget=Budget(macs_ratio=0.5), **good)
    with pytest.raises(ValueError, match="file limits"):
        search_precision(path, budget={"latency_ratio": 0.5}, **good)
    budget = Budget(tflite_bytes_ratio=0.5)
    with pytest.raises(ValueError, match="`data`.*empty"):
        search_precision(
            path, budget=budget, data=np.zeros((0, 8, 8, 1)), validation_data=validation
        )
    with pytest.raises(ValueError, match="`validation_data` must hold"):
        search_precision(
            path, budget=budget, data=x, validation_data=(x[:0], validation[1][:0])
        )
    with pytest.raises(ValueError, match="distinct precisions"):
        search_precision(path, budget=budget, choices=("int8", "int3"), **good)
    # Unreachable: says how close the cheapest uniform assignment came.
    with pytest.raises(ValueError, match=r"not reachable.*every op int4_weights, keeps 0\.\d+x"):
        search_precision(path, budget=Budget(tflite_bytes_ratio=0.05), **good)
    # An int8 file has no float kernel left to choose a precision for.
    int8 = to_tflite(model, tmp_path / "int8.tflite", quantization="int8", data=x, verbose=0)
    with pytest.raises(ValueError, match="no weighted op with a float kernel"):
        search_precision(int8, budget=budget, **good)
    with pytest.raises(ValueError, match="names ops the file does not have"):
        quantize_per_op(path, tmp_path / "m.tflite", assignment={"conv": "int8"}, data=x)
    with pytest.raises(ValueError, match="Unknown precision"):
        quantize_per_op(path, tmp_path / "m.tflite", assignment={"c1": "int2"}, data=x, model=model)
