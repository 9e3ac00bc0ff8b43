"""Activation ranges from a histogram: percentile and MSE clipping.

See `tfcompress.quantization.calibration` for where the values come from
and where the ranges go.
"""

import numpy as np

# Histogram resolution: a range dominated by an outlier 1000x the bulk of
# the values still gives the bulk some 16 bins.
_NUM_BINS = 16384
# Steps between the ends of a quantized range (asymmetric int8), and on
# each side of zero (symmetric int16).
_INT8_STEPS = 255
_INT16_STEPS = 32767
# Candidate clipping points, as fractions of the recorded range: fine near
# the top of the range and, for heavy tails, down to 1/10,000 of it.
_FRACTIONS = np.unique(
    np.concatenate([np.geomspace(1e-4, 1.0, 256), np.linspace(0, 1, 257)[1:]])
)


class ActivationHistogram:
    """A histogram of one activation tensor's values, and ranges from it.

    The bins span the range the converter recorded for the tensor (widened
    to hold 0), finely enough (16384 bins) that a range stretched 1000x by
    one outlier still gives the bulk of the values some 16 bins.

    Args:
        low: The smallest value the converter recorded.
        high: The largest value the converter recorded.

    Example:

    ```python
    values = np.random.default_rng(0).standard_t(3, 10_000)
    histogram = ActivationHistogram(values.min(), values.max())
    histogram.add(values)
    low, high = histogram.percentile_range(99.9)
    low, high = histogram.mse_range("int8")
    ```
    """

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
        """The bin edges, `num_bins + 1` of them."""
        return np.linspace(self.low, self.high, _NUM_BINS + 1)

    def add(self, values):
        """Counts `values` (any shape) into the histogram."""
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
        """The range keeping the central `percentile` % of the values.

        Args:
            percentile: The percentage to keep, in `(0, 100]`.

        Returns:
            `(low, high)`, holding 0.
        """
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

        Args:
            quantization: `"int8"` (asymmetric 8-bit activations) or
                `"int16x8"` (symmetric 16-bit).

        Returns:
            `(low, high)`, holding 0.
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
