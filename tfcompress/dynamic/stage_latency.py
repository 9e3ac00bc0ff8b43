"""Measured LiteRT latency of every stage a policy could use.

Which exits pay for themselves is a question of time, not MACs: on a small
model a stage call costs a fixed overhead (setting the input, the invoke,
reading the confidence) beside its compute, early high-resolution layers
run slower per MAC than later ones, and a head costs its own time. So the
latency of each *segment* is measured: from the input or an exit's cut to
a later exit (its head and confidence included) or to the final logits,
each exported to its own `.tflite` file exactly as `export_stages` would
write it for a policy whose stages end there, and run the way
`EarlyExitRunner.predict_one` runs it (batch 1). With `k` exits there are
`(k + 1)(k + 2) / 2` segments; a policy keeping exits `i < j` costs
`input->i`, then `i->j`, then `j->final`, each only for the examples that
reach it. The segment `input->final` is the model without exits, measured
the same way: the baseline.
"""

import dataclasses
import os
import statistics
import tempfile
import time

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfcompress.analysis import profile
from tfcompress.argument_validation import integer_at_least
from tfcompress.argument_validation import verbosity
from tfcompress.dynamic.exit_naming import exit_names
from tfcompress.dynamic.runner import StageCall
from tfcompress.dynamic.stage_export import stage_models
from tfcompress.dynamic.stages import cut_layers
from tfcompress.export import to_tflite
from tfcompress.export.converter import INTEGER_MODES
from tfcompress.export.export_arguments import check_quantization
from tfcompress.report import Report
from tfcompress.report import Row
from tfcompress.report import format_table

INPUT = -1


@dataclasses.dataclass(frozen=True)
class SegmentLatency(Row):
    """One segment: the layers from `start` to `end`, run as one stage.

    Attributes:
        name: `"input->exit_0"`, `"exit_0->exit_2"`, `"exit_2->final"`...
        start: Exit index whose cut it starts at, `-1` for the input.
        end: Exit index it ends at (its head included), the number of
            exits for the final logits.
        macs: MACs per example (`profile` of the segment's model).
        seconds: Median over rounds of the mean seconds per call, batch 1.
    """

    name: str
    start: int
    end: int
    macs: int
    seconds: float


@dataclasses.dataclass(frozen=True, repr=False)
class StageLatency(Report):
    """Result of `measure_stage_latency`, for `calibrate_exits(latency=)`.

    Attributes:
        rows: One `SegmentLatency` per segment.
        num_exits: Exits of the model measured.
        quantization: The mode the segments were exported in.
        examples: Examples timed per segment and round.
        rounds: Rounds (segments take turns within each).
    """

    rows: tuple
    num_exits: int
    quantization: str
    examples: int
    rounds: int

    summary = ("full_seconds",)

    def segment(self, start, end):
        """The `SegmentLatency` from `start` to `end`."""
        for row in self.rows:
            if (row.start, row.end) == (start, end):
                return row
        raise KeyError(f"No segment from {start} to {end}.")

    @property
    def full_seconds(self):
        """Seconds per example of the model without exits."""
        return self.segment(INPUT, self.num_exits).seconds

    def chain(self, exits):
        """Per-example `(seconds, macs)` to reach each kept exit and the
        final logits, when stages end at `exits` (sorted indices): arrays
        of `len(exits) + 1`, cumulative."""
        points = [INPUT, *exits, self.num_exits]
        seconds, macs = [], []
        total_seconds, total_macs = 0.0, 0
        for start, end in zip(points, points[1:]):
            row = self.segment(start, end)
            total_seconds += row.seconds
            total_macs += row.macs
            seconds.append(total_seconds)
            macs.append(total_macs)
        return np.array(seconds), np.array(macs)

    def table(self):
        lines = format_table(
            ["segment", "MACs", "latency"],
            [
                [row.name, f"{row.macs:,}", f"{1e6 * row.seconds:.1f} us"]
                for row in self.rows
            ],
        )
        lines.append(
            f"{self.quantization}; batch 1, median of {self.rounds} "
            f"rounds of {self.examples} examples; model without exits "
            f"{1e6 * self.full_seconds:.1f} us"
        )
        return "\n".join(lines)


def measure_stage_latency(
    model,
    data,
    *,
    quantization="none",
    examples=200,
    rounds=5,
    calibration_data=None,
    calibration_steps=100,
    num_threads=1,
    verbose="auto",
):
    """Measures the LiteRT latency of every segment between exits.

    Each segment is exported to a `.tflite` file as `export_stages` writes
    a stage (the same outputs, `quantization`, per-stage calibration on the
    features the float layers before it compute from `data`) and timed on
    the features of `examples` images of `data`, batch 1, the way
    `EarlyExitRunner.predict_one` calls a stage: set the input, invoke,
    read the confidence (and hand the features on). Segments take turns in
    each round; each gets the median over rounds of its mean per call.

    Args:
        model: A model from `attach_exits`.
        data: Images to time on, an array `(N, *input_shape)`.
        quantization: A `to_tflite` mode. Defaults to `"none"`.
        examples: Examples timed per segment and round. Defaults to `200`.
        rounds: Rounds. Defaults to `5`.
        calibration_data: Calibration images for the integer modes (pass
            what `export_stages` gets, so that the segments are the files
            it writes). Defaults to `None`: `data`.
        calibration_steps: Calibration examples (integer modes). Defaults
            to `100`.
        num_threads: Interpreter threads. Defaults to `1`.
        verbose: `0` silent; `1`, `2` or `"auto"` print one line per
            segment exported and the table. Defaults to `"auto"`.

    Returns:
        A `StageLatency`.

    Raises:
        ValueError: If `quantization` is unknown, the model has no exits,
            or a count is not an integer >= 1.

    Example:

    ```python
    latency = measure_stage_latency(with_exits, x_val[:500])
    policy = calibrate_exits(with_exits, (x_val, y_val), latency=latency)
    ```
    """
    check_quantization(quantization)
    integer_at_least("examples", examples, minimum=1)
    integer_at_least("rounds", rounds, minimum=1)
    integer_at_least("calibration_steps", calibration_steps, minimum=1)
    integer_at_least("num_threads", num_threads, minimum=1)
    verbose = verbosity(verbose)
    names = exit_names(model)
    if not names:
        raise ValueError(
            "`model` has no exit heads; attach them with `attach_exits`. "
            f"Received: model={model.name!r}"
        )
    count = len(names)
    inputs = _features_at_cuts(model, np.asarray(data, np.float32)[:examples])
    calibration = None
    if quantization in INTEGER_MODES:
        if calibration_data is None:
            calibration_data = data
        calibration = _features_at_cuts(
            model,
            np.asarray(calibration_data, np.float32)[:calibration_steps],
        )
    segments = []
    with tempfile.TemporaryDirectory() as scratch:
        for start in range(INPUT, count):
            for end in range(start + 1, count + 1):
                segments.append(_export_segment(
                    model, count, start, end, calibration, scratch, quantization,
                    calibration_steps, num_threads, verbose,
                ))
        timings = {id(segment): [] for segment in segments}
        for _ in range(rounds):
            for segment in segments:
                timings[id(segment)].append(
                    _time_calls(segment["call"], inputs[segment["start"]],
                                examples)
                )
    label = [*names, "final"]
    rows = tuple(
        SegmentLatency(
            name=("input" if s["start"] == INPUT else label[s["start"]])
            + "->" + label[s["end"]],
            start=s["start"],
            end=s["end"],
            macs=s["macs"],
            seconds=float(statistics.median(timings[id(s)])),
        )
        for s in segments
    )
    report = StageLatency(
        rows=rows, num_exits=count, quantization=quantization,
        examples=examples, rounds=rounds,
    )
    if verbose:
        print(report)
    return report


def _features_at_cuts(model, x):
    """`{INPUT: x, K: features at exit K's cut}`, float32, from Keras."""
    cuts = cut_layers(model)
    extractor = keras.Model(
        model.inputs, [model.get_layer(cut).output for cut in cuts]
    )
    features = extractor.predict(x, batch_size=256, verbose=0)
    if not isinstance(features, (list, tuple)):
        features = [features]
    result = {INPUT: x}
    for index, value in enumerate(features):
        result[index] = np.asarray(value, np.float32)
    return result


def _export_segment(model, count, start, end, calibration, scratch,
                    quantization, calibration_steps, num_threads, verbose):
    kept = [index for index in (start, end) if 0 <= index < count]
    stages = stage_models(model, kept)
    stage = stages[0 if start == INPUT else 1]
    path = os.path.join(scratch, f"segment_{start + 1}_{end}.tflite")
    export = to_tflite(
        stage, path, quantization=quantization,
        data=None if calibration is None else calibration[start],
        calibration_steps=calibration_steps, verbose=0,
    )
    macs = int(profile(stage).macs)
    if verbose:
        print(f"measure_stage_latency: segment {start}->{end} exported "
              f"({export.size_bytes:,} bytes, {macs:,} MACs)")
    call = StageCall(Interpreter(model_path=path, num_threads=num_threads))
    return {"start": start, "end": end, "macs": macs, "call": call}


def _time_calls(call, inputs, examples):
    """Mean seconds per call over `examples` inputs, batch 1, as
    `EarlyExitRunner.predict_one` makes them."""
    count = min(examples, len(inputs))
    batch = [np.ascontiguousarray(inputs[i : i + 1]) for i in range(count)]
    ends = call.features_index is not None
    start = time.perf_counter()
    for features in batch:
        call.invoke(features)
        if ends:
            call.confidences()[0]
            call.view(call.features_index)
        else:
            call.get(call.logits_index)
    return (time.perf_counter() - start) / count
