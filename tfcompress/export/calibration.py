"""Activation ranges for post-training quantization, chosen by tfcompress.

The TFLite converter calibrates by recording each activation tensor's
minimum and maximum over the representative data ("minmax"). One outlier
then stretches a tensor's range, and every other value is rounded to a
coarser grid. Two alternatives clip the range instead:

- `"percentile"`: keep the central `percentile` % of the values seen,
  clipping `(100 - percentile) / 2` % on each side (the convention of ONNX
  Runtime's percentile calibrator).
- `"mse"`: the clipping range that minimizes the expected squared error of
  quantize-then-dequantize on the values seen, rounding error inside the
  range and clipping error outside it (as NVIDIA's TensorRT "mse"
  calibrator does).

The route through the converter, as TensorFlow's own
`tf.lite.experimental.QuantizationDebugger` takes it:

1. Convert with `_experimental_calibrate_only`: the converter runs its
   calibration and returns a float file whose activation tensors carry the
   recorded `min` / `max` in their quantization parameters.
2. Run that file in LiteRT with every tensor preserved, over the same
   examples, and histogram each calibrated tensor's values.
3. Write the chosen ranges over the `min` / `max` in the flatbuffer, in
   place.
4. Quantize it with the converter's own quantizer, which reads the ranges
   from the file: the MLIR quantizer for int8 (the one `convert()` uses,
   and the one that can leave chosen ops in float32), the calibration
   wrapper's quantizer for int16x8 (the one `convert()` uses for 16-bit
   activations: the MLIR quantizer writes int16 tensors with nonzero zero
   points, which LiteRT's int16 kernels reject).
"""

import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

from tfcompress.export.interpreter import _TensorTracer

CALIBRATION_METHODS = ("minmax", "percentile", "mse")

# Histogram resolution: a range dominated by an outlier 1000x the bulk of
# the values still gives the bulk some 16 bins.
_NUM_BINS = 16384
# Examples per `invoke()` while collecting histograms.
_BATCH_SIZE = 32
# Steps between the ends of a quantized range (asymmetric int8), and on
# each side of zero (symmetric int16).
_INT8_STEPS = 255
_INT16_STEPS = 32767
# Candidate clipping points, as fractions of the recorded range: fine near
# the top of the range and, for heavy tails, down to 1/10,000 of it.
_FRACTIONS = np.unique(
    np.concatenate([np.geomspace(1e-4, 1.0, 256), np.linspace(0, 1, 257)[1:]])
)


def calibrated_tensors(calibrated):
    """Returns `{tensor index: (min, max)}` recorded in a calibrated file.

    Only the main subgraph's tensors are read (the ranges of control flow
    bodies stay as the converter recorded them).
    """
    model = schema.Model.GetRootAs(calibrated, 0)
    subgraph = model.Subgraphs(0)
    ranges = {}
    for i in range(subgraph.TensorsLength()):
        params = subgraph.Tensors(i).Quantization()
        if (
            params is None
            or params.MinIsNone()
            or params.MaxIsNone()
            or params.MinLength() != 1
        ):
            continue
        ranges[i] = (float(params.Min(0)), float(params.Max(0)))
    return ranges


def activation_ranges(calibrated, examples, method, percentile, quantization):
    """Chooses a clipping range for each calibrated activation tensor.

    Args:
        calibrated: A float `.tflite` file (bytes) from the converter's
            calibrate-only mode.
        examples: The calibration examples the converter saw, each a list
            of arrays (one per input, in input order) or a dict keyed by
            input name.
        method: `"percentile"` or `"mse"`.
        percentile: For `"percentile"`, the central percentage of values to
            keep, in `(0, 100]`.
        quantization: `"int8"` (asymmetric 8-bit activations) or
            `"int16x8"` (symmetric 16-bit), which `"mse"` optimizes for.

    Returns:
        `{tensor index: (min, max)}`, always containing 0.
    """
    recorded = calibrated_tensors(calibrated)
    histograms = {
        index: _Histogram(low, high) for index, (low, high) in recorded.items()
    }
    tracer = _TensorTracer(model_content=bytes(calibrated))
    for batch in _batches(examples, tracer.has_dynamic_batch):
        tracer.run(batch)
        for index, histogram in histograms.items():
            histogram.add(tracer.tensor(index))
    ranges = {}
    for index, histogram in histograms.items():
        if histogram.total == 0:
            continue
        if method == "percentile":
            ranges[index] = histogram.percentile_range(percentile)
        else:
            ranges[index] = histogram.mse_range(quantization)
    return ranges


def write_ranges(calibrated, ranges):
    """Returns `calibrated` with the `min` / `max` of tensors replaced.

    The flatbuffer is edited in place (each range is a one-float vector),
    so everything else in the file stays byte for byte as the converter
    wrote it.
    """
    content = bytearray(calibrated)
    subgraph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    for index, (low, high) in ranges.items():
        params = subgraph.Tensors(index).Quantization()
        # Views into `content`: writing them writes the file.
        params.MinAsNumpy()[0] = low
        params.MaxAsNumpy()[0] = high
    return bytes(content)


def quantize_calibrated(
    calibrated,
    quantization,
    input_type,
    output_type,
    denylisted_nodes=(),
    allow_float=False,
):
    """Quantizes a calibrated float file with the ranges it carries.

    Args:
        calibrated: A calibrated float `.tflite` file (bytes).
        quantization: `"int8"` or `"int16x8"`.
        input_type: `"float32"`, `"int8"` or `"int16"`.
        output_type: `"float32"`, `"int8"` or `"int16"`.
        denylisted_nodes: Output tensor names of ops to leave in float32
            (int8 only).
        allow_float: Whether ops without an integer kernel may stay float
            (int16x8 only; as with `SELECT_TF_OPS` in the converter).

    Returns:
        The quantized `.tflite` file, as bytes.
    """
    # TensorFlow's internal quantizers, called the way
    # `TFLiteConverter._quantize` calls them after calibration; there is
    # no public entry point that takes ranges other than the converter's.
    if quantization == "int8":
        from tensorflow.lite.python.convert import mlir_quantize

        return mlir_quantize(
            bytes(calibrated),
            input_data_type=tf.as_dtype(input_type),
            output_data_type=tf.as_dtype(output_type),
            denylisted_nodes=list(denylisted_nodes) or None,
        )
    from tensorflow.lite.python.optimize import calibrator

    wrapper = calibrator.Calibrator(bytes(calibrated))._calibrator
    # Without examples fed, the wrapper adds no statistics of its own and
    # quantizes with the `min` / `max` already in the file.
    return wrapper.QuantizeModel(
        np.dtype(input_type).num,
        np.dtype(output_type).num,
        allow_float,
        np.dtype(np.int16).num,  # Activations.
        np.dtype(np.int64).num,  # Biases, as the converter sets for 16x8.
        False,  # disable_per_channel
        False,  # disable_per_channel_quantization_for_dense_layers
    )


class _Histogram:
    """A histogram of one tensor's values over its recorded range."""

    def __init__(self, low, high):
        # The quantized range always holds 0 (zero padding, ReLU), which
        # the converter represents exactly.
        self.low = min(low, 0.0)
        self.high = max(high, 0.0)
        self.counts = np.zeros(_NUM_BINS, np.int64)
        self.zeros = 0
        self.total = 0

    @property
    def edges(self):
        return np.linspace(self.low, self.high, _NUM_BINS + 1)

    def add(self, values):
        values = np.asarray(values, np.float64).ravel()
        self.total += values.size
        self.zeros += int(np.count_nonzero(values == 0))
        if self.high == self.low:
            self.counts[0] += values.size
            return
        # Values a hair outside the converter's range (its kernels are not
        # the interpreter's) go to the end bins.
        position = (values - self.low) / (self.high - self.low) * _NUM_BINS
        bins = np.clip(position.astype(np.int64), 0, _NUM_BINS - 1)
        self.counts += np.bincount(bins, minlength=_NUM_BINS)

    def percentile_range(self, percentile):
        """The range keeping the central `percentile` % of the values."""
        if percentile >= 100 or self.high == self.low:
            return self.low, self.high
        cut = (100.0 - percentile) / 200.0 * self.total
        cumulative = np.cumsum(self.counts)
        edges = self.edges
        # The bins holding the cut points, taken whole: the range keeps at
        # least the central `percentile` %.
        first = int(np.searchsorted(cumulative, cut, side="right"))
        last = int(np.searchsorted(cumulative, self.total - cut, side="left"))
        last = min(last, _NUM_BINS - 1)
        return min(float(edges[first]), 0.0), max(float(edges[last + 1]), 0.0)

    def mse_range(self, quantization):
        """The range minimizing the expected quantization error.

        For a candidate range `[a, b]` with quantization step `s`, the
        error of the values inside is `s**2 / 12` each (rounding, uniform
        within a step), except exact zeros, which quantize exactly; a value
        `v` outside costs `(v - a)**2` or `(v - b)**2` (clipping). The
        candidates are fractions of the recorded range on each side; int16
        activations are symmetric (`a = -b`, zero point 0).
        """
        if self.high == self.low:
            return self.low, self.high
        edges = self.edges
        centers = (edges[:-1] + edges[1:]) / 2
        counts = self.counts.astype(np.float64)
        # Exact zeros cost nothing at any range: out of the sums.
        zero_bin = min(
            int((0.0 - self.low) / (self.high - self.low) * _NUM_BINS),
            _NUM_BINS - 1,
        )
        counts[zero_bin] = max(counts[zero_bin] - self.zeros, 0.0)
        prefix_n = np.concatenate([[0.0], np.cumsum(counts)])
        prefix_s1 = np.concatenate([[0.0], np.cumsum(counts * centers)])
        prefix_s2 = np.concatenate([[0.0], np.cumsum(counts * centers**2)])
        total_n, total_s1, total_s2 = prefix_n[-1], prefix_s1[-1], prefix_s2[-1]

        def below(a):
            """Count and squared clipping error of the values below `a`."""
            k = np.searchsorted(centers, a, side="left")
            n, s1, s2 = prefix_n[k], prefix_s1[k], prefix_s2[k]
            return n, n * a**2 - 2 * a * s1 + s2

        def above(b):
            """Count and squared clipping error of the values above `b`."""
            k = np.searchsorted(centers, b, side="right")
            n = total_n - prefix_n[k]
            s1 = total_s1 - prefix_s1[k]
            s2 = total_s2 - prefix_s2[k]
            return n, s2 - 2 * b * s1 + n * b**2

        if quantization == "int16x8":
            bound = max(-self.low, self.high)
            t = bound * _FRACTIONS
            n_below, error_below = below(-t)
            n_above, error_above = above(t)
            step = t / _INT16_STEPS
            inside = total_n - n_below - n_above
            error = inside * step**2 / 12 + error_below + error_above
            best = float(t[int(np.argmin(error))])
            return max(self.low, -best), min(self.high, best)

        lows = self.low * _FRACTIONS if self.low < 0 else np.zeros(1)
        highs = self.high * _FRACTIONS if self.high > 0 else np.zeros(1)
        n_below, error_below = below(lows)
        n_above, error_above = above(highs)
        step = (highs[None, :] - lows[:, None]) / _INT8_STEPS
        inside = total_n - n_below[:, None] - n_above[None, :]
        error = (
            inside * step**2 / 12 + error_below[:, None] + error_above[None, :]
        )
        i, j = np.unravel_index(int(np.argmin(error)), error.shape)
        return float(lows[i]), float(highs[j])


def _batches(examples, dynamic_batch):
    """Groups single examples into batches when the batch size may vary."""
    size = _BATCH_SIZE if dynamic_batch else 1
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        if isinstance(chunk[0], dict):
            yield {
                name: np.concatenate([example[name] for example in chunk])
                for name in chunk[0]
            }
        else:
            yield [
                np.concatenate([example[i] for example in chunk])
                for i in range(len(chunk[0]))
            ]
