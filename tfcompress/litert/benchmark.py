"""Latency of a `.tflite` file in the LiteRT interpreter on this machine."""

import dataclasses
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfcompress.argument_validation import integer_at_least
from tfcompress.litert.input_shape import format_signature
from tfcompress.litert.tflite_file_path import tflite_file_path


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    """Latency of one `invoke()` call, in milliseconds.

    Attributes:
        median_ms: Median latency.
        p90_ms: 90th percentile latency.
        mean_ms: Mean latency.
        min_ms: Fastest run.
        num_runs: Number of timed runs.
        warmup_runs: Number of untimed runs before them.
        num_threads: Interpreter threads.
        batch_size: Examples per run.
    """

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    num_runs: int
    warmup_runs: int
    num_threads: int
    batch_size: int

    def __str__(self):
        threads = "thread" if self.num_threads == 1 else "threads"
        return (
            f"median {self.median_ms:.3f} ms (p90 {self.p90_ms:.3f} ms) "
            f"over {self.num_runs} runs, batch {self.batch_size}, "
            f"{self.num_threads} {threads}"
        )


def benchmark_tflite(
    path, num_runs=50, warmup_runs=5, num_threads=1, batch_size=1, seed=0
):
    """Measures the latency of a `.tflite` file in the LiteRT interpreter.

    Feeds random inputs of each input tensor's dtype (random int8 values for
    an int8 input), runs `warmup_runs` untimed calls, then times `num_runs`
    calls of `invoke()` alone with `time.perf_counter`. Latency on this
    machine's CPU ranks models; it does not predict a phone's numbers.

    Args:
        path: Path to a `.tflite` file, or the `TFLiteExport` that
            `to_tflite()` returned.
        num_runs: Number of timed runs, an integer >= 1. Defaults to `50`.
        warmup_runs: Number of untimed runs first, an integer >= 0.
            Defaults to `5`.
        num_threads: Interpreter threads, an integer >= 1. Defaults to `1`,
            the usual setting on a phone's little cores and the most stable.
        batch_size: Examples per run, an integer >= 1. Must equal the
            model's batch dimension if that is fixed. Defaults to `1`.
        seed: Seed for the random inputs. Defaults to `0`.

    Returns:
        A `LatencyResult`.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If an argument is out of range, or `batch_size` does
            not fit the model's fixed batch dimension.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    to_tflite(model, "model.tflite")
    result = benchmark_tflite("model.tflite", num_threads=1)
    print(result)
    # median 0.002 ms (p90 0.002 ms) over 50 runs, batch 1, 1 thread
    ```
    """
    integer_at_least("num_runs", num_runs, minimum=1)
    integer_at_least("warmup_runs", warmup_runs, minimum=0)
    integer_at_least("num_threads", num_threads, minimum=1)
    integer_at_least("batch_size", batch_size, minimum=1)
    path = tflite_file_path(path)

    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    rng = np.random.default_rng(seed)
    inputs = []
    for detail in interpreter.get_input_details():
        shape = _input_shape(detail, batch_size)
        interpreter.resize_tensor_input(detail["index"], shape)
        inputs.append((detail["index"], _random_input(rng, shape, detail)))
    interpreter.allocate_tensors()
    for index, value in inputs:
        interpreter.set_tensor(index, value)

    for _ in range(warmup_runs):
        interpreter.invoke()
    times_ms = np.empty(num_runs)
    for i in range(num_runs):
        start = time.perf_counter()
        interpreter.invoke()
        times_ms[i] = (time.perf_counter() - start) * 1000.0

    return LatencyResult(
        median_ms=float(np.median(times_ms)),
        p90_ms=float(np.percentile(times_ms, 90)),
        mean_ms=float(np.mean(times_ms)),
        min_ms=float(np.min(times_ms)),
        num_runs=num_runs,
        warmup_runs=warmup_runs,
        num_threads=num_threads,
        batch_size=batch_size,
    )


def compare_latency(paths, num_runs=200, rounds=3, num_threads=1):
    """Median latencies of several `.tflite` files, measured side by side.

    The files take turns: each round benchmarks every file once, and a
    file's figure is the median over rounds of its per-round medians. Noise
    from other work on a shared machine then hits all files alike, so the
    ratios between them hold even when absolute times drift.

    Args:
        paths: `.tflite` files (at least one), each a path or the
            `TFLiteExport` that `to_tflite()` returned.
        num_runs: Timed runs per file and round. Defaults to `200`.
        rounds: Rounds, an integer >= 1. Defaults to `3`.
        num_threads: Interpreter threads. Defaults to `1`.

    Returns:
        A dict `{path: median_ms}` keyed by each file's path (a `str`), in
        the order of `paths`.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If `paths` is empty or `rounds` is not an integer >= 1.

    Example:

    ```python
    ms = compare_latency(["dense.tflite", "pruned.tflite"])
    print(ms["pruned.tflite"] / ms["dense.tflite"])  # latency ratio
    ```
    """
    paths = [tflite_file_path(path, "paths") for path in paths]
    if not paths:
        raise ValueError("`paths` is empty: pass one or more .tflite paths.")
    integer_at_least("rounds", rounds, minimum=1)
    medians = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            result = benchmark_tflite(
                path, num_runs=num_runs, warmup_runs=10,
                num_threads=num_threads,
            )
            medians[path].append(result.median_ms)
    return {path: float(np.median(values)) for path, values in medians.items()}


def _input_shape(detail, batch_size):
    signature = [int(d) for d in detail["shape_signature"]]
    if not signature:
        return []
    if signature[0] not in (-1, batch_size):
        raise ValueError(
            f"The model input {detail['name']!r} has a fixed batch size of "
            f"{signature[0]}. Received: batch_size={batch_size}"
        )
    if -1 in signature[1:]:
        raise ValueError(
            f"The model input {detail['name']!r} has unknown dimensions "
            f"besides the batch: {format_signature(signature)}, so there is "
            "no input size to benchmark. Export the model with a fixed "
            "input shape."
        )
    return [batch_size] + signature[1:]


def _random_input(rng, shape, detail):
    dtype = np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(dtype)
    if dtype.itemsize <= 2:
        # int8/uint8/int16: quantized inputs, the whole range is valid.
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True)
        return values.astype(dtype)
    # Wider integers are usually indices (token ids): 0 is always valid.
    return np.zeros(shape, dtype)
