"""`EarlyExitRunner`: the stages of a model with exits, run in LiteRT until
an exit is confident.

This module imports only NumPy and the LiteRT interpreter (no TensorFlow,
no other tfcompress module), so that a device-side process, and
`measure_peak_memory`'s subprocess, can load it from its file alone.
"""

import math

import numpy as np
from ai_edge_litert.interpreter import Interpreter

FEATURES = "features"
LOGITS = "logits"
CONFIDENCE = "confidence"


class StageCall:
    """One stage's signature, called through the interpreter's own
    set-tensor / invoke / get-tensor calls with its tensor indices resolved
    once.

    A `SignatureRunner` call resizes and reallocates the input, builds a
    dict of every output and copies each one; on a stage of a few tens of
    microseconds that bookkeeping costs as much as the stage. Here the
    input is resized only when the batch size changes, and the caller reads
    only the outputs it needs: one confidence per example, the features
    only for examples that go on.

    The signature's subgraph is reached through the interpreter's wrapper
    (`Interpreter._interpreter`, what `SignatureRunner` itself calls): the
    public `set_tensor` and `invoke` run subgraph 0 only, and the stages of
    a multi-signature file are the other subgraphs.

    Args:
        interpreter: An `ai_edge_litert` `Interpreter`.
        key: The signature to call, or `None` for a file's only one.
    """

    def __init__(self, interpreter, key=None):
        runner = interpreter.get_signature_runner(key)
        (input_detail,) = runner.get_input_details().values()
        outputs = runner.get_output_details()
        self.interpreter = interpreter
        self._wrapper = interpreter._interpreter
        self._subgraph = runner._subgraph_index
        self.input_index = int(input_detail["index"])
        self.example_shape = tuple(int(d) for d in input_detail["shape"][1:])
        self.output_index = {
            name: int(detail["index"]) for name, detail in outputs.items()
        }
        if LOGITS not in self.output_index and len(outputs) == 1:
            # A plain model's file (the model without exits, timed the
            # same way): its one output is the logits.
            (self.logits_index,) = self.output_index.values()
        else:
            self.logits_index = self.output_index[LOGITS]
        self.features_index = self.output_index.get(FEATURES)
        self.confidence_index = self.output_index.get(CONFIDENCE)
        self._batch = None

    def invoke(self, features):
        """Runs the stage on `features`, a float32 array `(batch, ...)`."""
        batch = features.shape[0]
        if batch != self._batch:
            self._wrapper.ResizeInputTensor(
                self.input_index,
                np.array((batch, *self.example_shape), np.int32),
                False,
                self._subgraph,
            )
            self._wrapper.AllocateTensors(self._subgraph)
            self._batch = batch
        self._wrapper.SetTensor(self.input_index, features, self._subgraph)
        self._wrapper.Invoke(self._subgraph)

    def get(self, index):
        """A copy of output tensor `index` after the last `invoke`."""
        return self._wrapper.GetTensor(index, self._subgraph)

    def view(self, index):
        """A view of output tensor `index`: valid until the next `invoke`
        of this stage, and no copy (the next stage's `invoke` copies it
        into its input)."""
        return self._wrapper.tensor(self.interpreter, index, self._subgraph)

    def confidences(self):
        """Largest softmax probability of each example's exit logits: the
        stage's `confidence` output, or, for files written before stages
        had one, computed here from the logits."""
        if self.confidence_index is not None:
            return self.get(self.confidence_index)
        return confidence(self.get(self.logits_index))


class EarlyExitRunner:
    """Runs a model's stages in LiteRT until an exit is confident.

    An example leaves at the first exit whose largest softmax probability
    reaches that exit's threshold (`ExitPolicy.stage_thresholds`); examples
    no exit takes get the last stage's logits. A batch runs stage by stage:
    each stage runs only on the examples still going. `predict_one` runs
    one example with the least Python work per stage (one set-tensor, one
    invoke, one confidence read; the features are handed to the next stage
    without an intermediate copy).

    Two ways to hold the stages:

    - `staged=False`: every stage is loaded once, at construction: from one
      multi-signature file (`StageExport.single_file`, one interpreter) or
      from the per-stage files.
    - `staged=True`: each stage's file is loaded when an example reaches
      the stage and freed as soon as the stage has run, so that at most one
      stage is resident at a time (a memory-constrained device streaming
      the model). The price is a load per stage per batch.

    Args:
        stages: The per-stage `.tflite` files (`StageExport.paths`), or one
            file with a signature per stage (`StageExport.single_file`).
        thresholds: One confidence threshold per exit of the files
            (`math.inf`: never leave there), `len(stage files) - 1` of them:
            `ExitPolicy.stage_thresholds` for files exported with
            `exits=policy.exits`, `ExitPolicy.thresholds` for files with
            every exit.
        staged: Whether to load stages on demand. Needs per-stage files.
            Defaults to `False`.
        num_threads: Interpreter threads. Defaults to `1`.

    Raises:
        ValueError: If the number of thresholds does not match the stages,
            or `staged=True` with a single file.

    Example:

    ```python
    export = export_stages(with_exits, "stages", exits=policy.exits)
    runner = EarlyExitRunner(export.paths, policy.stage_thresholds)
    logits, exits = runner.predict(x_test)
    ```
    """

    def __init__(self, stages, thresholds, *, staged=False, num_threads=1):
        if isinstance(stages, str):
            stages = [stages]
        stages = [str(path) for path in stages]
        self.thresholds = tuple(float(t) for t in thresholds)
        self.staged = bool(staged)
        self.num_threads = num_threads
        self._stages = None
        if len(stages) == 1 and not self.staged:
            single = Interpreter(model_path=stages[0], num_threads=num_threads)
            keys = sorted(
                single.get_signature_list(),
                key=lambda key: int(key.rsplit("_", 1)[-1]),
            )
            self._stages = [StageCall(single, key) for key in keys]
        elif len(stages) == 1:
            raise ValueError(
                "`staged=True` loads stage files one by one; pass the "
                f"per-stage files. Received: stages={stages!r}"
            )
        elif not self.staged:
            self._stages = [self._load(path) for path in stages]
        self.paths = stages
        self.num_stages = (
            len(self._stages) if self._stages is not None else len(stages)
        )
        if len(self.thresholds) != self.num_stages - 1:
            raise ValueError(
                "Expected one threshold per exit, "
                f"{self.num_stages - 1} for {self.num_stages} stages. "
                f"Received: {len(self.thresholds)} thresholds"
            )
        # `predict_one` skips the confidence of exits never taken.
        self._taken = tuple(math.isfinite(t) for t in self.thresholds)

    def _load(self, path):
        return StageCall(
            Interpreter(model_path=path, num_threads=self.num_threads)
        )

    def _stage(self, index):
        if self._stages is not None:
            return self._stages[index]
        return self._load(self.paths[index])

    def run_stage(self, index, features):
        """Runs stage `index` on `features`; returns `(features, logits)`
        (`features` is `None` for the last stage), float32 arrays."""
        stage = self._stage(index)
        stage.invoke(np.ascontiguousarray(features, np.float32))
        # Copied out, so that nothing points into a freed interpreter.
        logits = stage.get(stage.logits_index)
        following = None
        if stage.features_index is not None:
            following = stage.get(stage.features_index)
        return following, logits

    def predict_one(self, example):
        """Runs one example; returns `(logits, exit)`: float32 logits
        `(classes,)` from the exit it left at, and that exit's index
        (`len(thresholds)` for the final head).

        Args:
            example: One input with a batch dimension of 1, an array
                `(1, *input_shape)`, float32 (other dtypes are converted).
        """
        features = np.ascontiguousarray(example, np.float32)
        if features.shape[:1] != (1,):
            raise ValueError(
                "`example` must be one input with a batch dimension of 1, "
                f"(1, *input_shape). Received: shape {features.shape}"
            )
        if self._stages is None:
            # Staged loading: the batch path copies what each stage hands
            # on, so that each interpreter is freed after its call.
            logits, exits = self._predict_batch(features)
            return logits[0], int(exits[0])
        last = self.num_stages - 1
        thresholds, taken = self.thresholds, self._taken
        for index, stage in enumerate(self._stages):
            stage.invoke(features)
            if index == last or (
                taken[index] and stage.confidences()[0] >= thresholds[index]
            ):
                return stage.get(stage.logits_index)[0], index
            features = stage.view(stage.features_index)
        raise AssertionError("unreachable: the last stage always returns")

    def predict(self, x, batch_size=32):
        """Runs `x` through the stages, leaving at confident exits.

        Args:
            x: Inputs, an array `(N, *input_shape)`.
            batch_size: Examples per batch. Defaults to `32`.

        Returns:
            `(logits, exits)`: float32 logits `(N, classes)` from the exit
            each example left at, and that exit's index among the files'
            exits (`len(thresholds)` for the final head), an int array
            `(N,)`. For files exported with `exits=policy.exits`, exit `i`
            is the model's exit `policy.exits[i]`.
        """
        x = np.ascontiguousarray(x, np.float32)
        logits_out, exits_out = [], []
        for start in range(0, len(x), batch_size):
            logits, exits = self._predict_batch(x[start : start + batch_size])
            logits_out.append(logits)
            exits_out.append(exits)
        return np.concatenate(logits_out), np.concatenate(exits_out)

    def _predict_batch(self, x):
        count = len(x)
        going = np.arange(count)
        features = x
        result = None
        exits = np.full(count, self.num_stages - 1, np.int64)
        for index in range(self.num_stages):
            stage = self._stage(index)
            stage.invoke(features)
            logits = stage.get(stage.logits_index)
            if result is None:
                result = np.zeros((count, logits.shape[-1]), np.float32)
            if index == self.num_stages - 1:
                result[going] = logits
                break
            threshold = self.thresholds[index]
            leave = np.zeros(len(going), bool)
            if math.isfinite(threshold):
                leave = stage.confidences() >= threshold
            result[going[leave]] = logits[leave]
            exits[going[leave]] = index
            going = going[~leave]
            if not len(going):
                break
            # A copy: with staged loading, nothing may point into a stage
            # that is about to be freed.
            features = np.ascontiguousarray(
                stage.get(stage.features_index)[~leave]
            )
            del stage
        return result, exits


def confidence(logits):
    """Largest softmax probability of each row of `logits`, in float64 (as
    `calibrate_exits` computes it)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).max(axis=-1)
