"""What a candidate costs in LiteRT: its `.tflite` file's bytes and latency.

`LiteRTCostMeter` exports each candidate (float32, or int8 when the model
will ship quantized) and times it side by side with the uncompressed
model's float32 file, in one run: the files take turns, so noise on a
shared machine hits both alike and the ratio holds when absolute times
drift. Latency comes from `benchmark_tflite` on this CPU (threads stated),
or from the user's `latency_fn(tflite_path) -> seconds` (a phone over adb,
a device farm).

Every candidate is measured; no per-layer lookup table predicts latency.
Why: a conversion plus a timing is 2 to 5 s for the models we search, a fit
measures 3 to 8 candidates, and a table summed per layer
misses what the runtime does across layers (fused activations, XNNPack's
packing, per-op overhead, which dominates small models).
"""

import os
import statistics
import tempfile

import numpy as np

from tfcompress.argument_validation import integer_at_least
from tfcompress.export import to_tflite
from tfcompress.litert.benchmark import compare_latency

# What a candidate file may be exported as.
QUANTIZATIONS = ("none", "int8")


class LiteRTCostMeter:
    """Measures candidates' `.tflite` bytes and LiteRT latency.

    Args:
        reference: The uncompressed Keras model; its float32 file is the
            reference of every ratio.
        quantization: How candidates are exported: `"none"` (float32) or
            `"int8"` (post-training int8, calibrated on a few examples of
            `calibration_data`: the values do not change bytes or
            latency). Defaults to `"none"`.
        calibration_data: Model inputs, needed for `"int8"`.
        num_threads: LiteRT interpreter threads for the timing. Defaults
            to `1`.
        latency_fn: `fn(tflite_path) -> seconds` timing a file somewhere
            else (e.g. on a phone); it must be picklable for a search with
            `workers > 1`. Defaults to `None`: `benchmark_tflite` here.
        num_runs: Timed runs per file and round. Defaults to `100`.
        rounds: Rounds of taking turns. Defaults to `3`.
        measure_latency: Whether to time candidates at all (bytes alone
            need only the export). Defaults to `True`.
    """

    def __init__(
        self,
        reference,
        *,
        quantization="none",
        calibration_data=None,
        num_threads=1,
        latency_fn=None,
        num_runs=100,
        rounds=3,
        measure_latency=True,
    ):
        if quantization not in QUANTIZATIONS:
            raise ValueError(
                "`quantization` (how candidates are exported to be measured)"
                f" must be one of {QUANTIZATIONS}. Received: "
                f"quantization={quantization!r}"
            )
        if quantization == "int8" and calibration_data is None:
            raise ValueError(
                "Measuring int8 candidates needs `calibration_data` (a few "
                "model inputs)."
            )
        if latency_fn is not None and not callable(latency_fn):
            raise ValueError(
                "`latency_fn` must be a callable `fn(tflite_path) -> seconds`."
                f" Received: latency_fn={latency_fn!r}"
            )
        self.quantization = quantization
        self.calibration = (
            None if calibration_data is None else np.asarray(calibration_data)[:16]
        )
        self.num_threads = integer_at_least("num_threads", num_threads, 1)
        self.latency_fn = latency_fn
        self.num_runs = integer_at_least("num_runs", num_runs, 1)
        self.rounds = integer_at_least("rounds", rounds, 1)
        self.measure_latency = measure_latency
        self._directory = tempfile.TemporaryDirectory(prefix="tfcompress_cost_")
        self._count = 0
        export = to_tflite(reference, self._path("reference"), verbose=0)
        self.reference_path = export.path
        self.reference_bytes = export.size_bytes
        self.reference_latency_ms = None
        if measure_latency:
            self.reference_latency_ms = self.latency([self.reference_path])[0]

    @property
    def setting(self):
        """The measurement, in words: file format, threads, timer."""
        fmt = "int8" if self.quantization == "int8" else "float32"
        timer = (
            "latency_fn"
            if self.latency_fn is not None
            else f"benchmark_tflite, {self.num_threads} thread(s)"
        )
        return f"{fmt} candidate files, {timer}"

    def _path(self, name):
        self._count += 1
        return os.path.join(self._directory.name, f"{self._count}_{name}.tflite")

    def export(self, model):
        """Writes `model`'s candidate file; returns its `TFLiteExport`."""
        if self.quantization == "int8":
            return to_tflite(
                model,
                self._path("candidate"),
                quantization="int8",
                data=self.calibration,
                calibration_steps=len(self.calibration),
                verbose=0,
            )
        return to_tflite(model, self._path("candidate"), verbose=0)

    def latency(self, paths):
        """Median ms of each file, timed side by side (files take turns)."""
        return side_by_side_ms(
            paths,
            num_threads=self.num_threads,
            latency_fn=self.latency_fn,
            num_runs=self.num_runs,
            rounds=self.rounds,
        )

    def measure(self, model):
        """`(tflite_bytes, latency_ms, latency_ratio)` of a candidate.

        The latency is timed side by side with the reference file; both
        are `None` when `measure_latency` is off.
        """
        export = self.export(model)
        try:
            if not self.measure_latency:
                return export.size_bytes, None, None
            reference_ms, candidate_ms = self.latency(
                [self.reference_path, export.path]
            )
            return export.size_bytes, candidate_ms, candidate_ms / reference_ms
        finally:
            os.remove(export.path)


def side_by_side_ms(paths, *, num_threads=1, latency_fn=None, num_runs=100, rounds=3):
    """Median ms of each `.tflite` file, the files taking turns.

    With `latency_fn=None`, `compare_latency` (`benchmark_tflite` on this
    CPU with `num_threads`); otherwise `latency_fn(path) -> seconds` is
    called on each file in turn, `rounds` times, and the median kept.

    Returns:
        A list of milliseconds, in the order of `paths`.
    """
    paths = [os.fspath(p) for p in paths]
    if latency_fn is None:
        ms = compare_latency(
            paths, num_runs=num_runs, rounds=rounds, num_threads=num_threads
        )
        return [ms[p] for p in paths]
    times = {p: [] for p in paths}
    for _ in range(rounds):
        for path in paths:
            seconds = latency_fn(path)
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not seconds > 0
            ):
                raise ValueError(
                    "`latency_fn` must return a positive number of seconds. "
                    f"Received: {seconds!r} for {path}"
                )
            times[path].append(1000.0 * float(seconds))
    return [statistics.median(times[p]) for p in paths]
