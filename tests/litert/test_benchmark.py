import dataclasses
import math

import pytest

from tfcompress.export import LatencyResult
from tfcompress.export import benchmark_tflite


def test_benchmark_float_file(conv_float):
    result = benchmark_tflite(conv_float.path, num_runs=20, warmup_runs=2)
    assert isinstance(result, LatencyResult)
    assert math.isfinite(result.median_ms) and result.median_ms > 0
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.min_ms <= result.mean_ms
    assert (result.num_runs, result.warmup_runs) == (20, 2)
    assert (result.num_threads, result.batch_size) == (1, 1)
    text = str(result)
    assert text.startswith(f"median {result.median_ms:.3f} ms (p90 ")
    assert text.endswith("over 20 runs, batch 1, 1 thread")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.median_ms = 0.0


def test_benchmark_batch_and_threads(conv_float):
    result = benchmark_tflite(  # A TFLiteExport works as a path.
        conv_float, num_runs=5, num_threads=2, batch_size=8
    )
    assert result.median_ms > 0
    assert str(result).endswith("over 5 runs, batch 8, 2 threads")


def test_benchmark_int8_input(conv_int8_io_path):
    result = benchmark_tflite(conv_int8_io_path, num_runs=5, warmup_runs=0)
    assert math.isfinite(result.median_ms) and result.median_ms > 0


def test_fixed_batch_size_mismatch(fixed_batch_path):
    _, path = fixed_batch_path
    assert benchmark_tflite(path, num_runs=3, batch_size=2).batch_size == 2
    with pytest.raises(
        ValueError, match=r"fixed batch size of 2. Received: batch_size=4"
    ):
        benchmark_tflite(path, batch_size=4)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("num_runs", 0),
        ("num_runs", 2.5),
        ("warmup_runs", -1),
        ("num_threads", 0),
        ("batch_size", 0),
    ],
)
def test_invalid_arguments(conv_float, argument, value):
    with pytest.raises(
        ValueError, match=rf"`{argument}`.*Received: {argument}={value}"
    ):
        benchmark_tflite(conv_float.path, **{argument: value})


def test_compare_latency_ranks_a_bigger_model_slower(tmp_path):
    import keras

    from tfcompress.export import compare_latency
    from tfcompress.export import to_tflite

    paths, exports = [], []
    for filters in (4, 256):
        model = keras.Sequential(
            [keras.Input((32, 32, 8)), keras.layers.Conv2D(filters, 3)]
        )
        path = str(tmp_path / f"conv{filters}.tflite")
        exports.append(to_tflite(model, path))
        paths.append(path)
    medians = compare_latency(paths, num_runs=20, rounds=2)
    assert list(medians) == paths
    # TFLiteExports work too; the result is keyed by path.
    assert list(compare_latency(exports, num_runs=2, rounds=1)) == paths
    # 64x the MACs: the ranking survives any machine noise.
    assert medians[paths[1]] > 4 * medians[paths[0]]
    with pytest.raises(ValueError, match="empty"):
        compare_latency([])
    with pytest.raises(ValueError, match="rounds"):
        compare_latency(paths, rounds=0)
