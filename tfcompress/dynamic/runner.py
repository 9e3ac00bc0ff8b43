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


class EarlyExitRunner:
    """Runs a model's stages in LiteRT until an exit is confident.

    An example leaves at the first exit whose largest softmax probability
    reaches that exit's threshold (`ExitPolicy.thresholds`); examples no
    exit takes get the last stage's logits. A batch runs stage by stage:
    each stage runs only on the examples still going.

    Two ways to hold the stages:

    - `staged=False`: every stage is loaded once, at construction: from one
      multi-signature file (`StageExport.single_file`) or from the
      per-stage files.
    - `staged=True`: each stage's file is loaded when an example reaches
      the stage and freed as soon as the stage has run, so that at most one
      stage is resident at a time (a memory-constrained device streaming
      the model). The price is a load per stage per batch.

    Args:
        stages: The per-stage `.tflite` files (`StageExport.paths`), or one
            file with a signature per stage (`StageExport.single_file`).
        thresholds: One confidence threshold per exit (`math.inf`: never
            leave there), `len(stage files) - 1` of them.
        staged: Whether to load stages on demand. Needs per-stage files.
            Defaults to `False`.
        num_threads: Interpreter threads. Defaults to `1`.

    Raises:
        ValueError: If the number of thresholds does not match the stages,
            or `staged=True` with a single file.

    Example:

    ```python
    runner = EarlyExitRunner(export.paths, policy.thresholds, staged=True)
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
        self._single = None
        if len(stages) == 1:
            if self.staged:
                raise ValueError(
                    "`staged=True` loads stage files one by one; pass the "
                    f"per-stage files. Received: stages={stages!r}"
                )
            self._single = Interpreter(
                model_path=stages[0], num_threads=num_threads
            )
            keys = sorted(
                self._single.get_signature_list(),
                key=lambda key: int(key.rsplit("_", 1)[-1]),
            )
            self._runners = [
                self._single.get_signature_runner(key) for key in keys
            ]
        else:
            self._runners = None
            if not self.staged:
                self._runners = [self._load(path) for path in stages]
        self.paths = stages
        self._input_names = {}
        self.num_stages = (
            len(self._runners) if self._runners is not None else len(stages)
        )
        if len(self.thresholds) != self.num_stages - 1:
            raise ValueError(
                "Expected one threshold per exit, "
                f"{self.num_stages - 1} for {self.num_stages} stages. "
                f"Received: {len(self.thresholds)} thresholds"
            )

    def _load(self, path):
        interpreter = Interpreter(model_path=path, num_threads=self.num_threads)
        (key,) = interpreter.get_signature_list()
        return interpreter.get_signature_runner(key)

    def _input_name(self, runner):
        # Read once per runner: the details are rebuilt on every call.
        name = self._input_names.get(id(runner))
        if name is None:
            (name,) = runner.get_input_details()
            if self._runners is not None:
                self._input_names[id(runner)] = name
        return name

    def run_stage(self, index, features):
        """Runs stage `index` on `features`; returns `(features, logits)`
        (`features` is `None` for the last stage), float32 arrays."""
        if self._runners is not None:
            runner = self._runners[index]
        else:
            runner = self._load(self.paths[index])
        name = self._input_name(runner)
        outputs = runner(**{name: np.asarray(features, np.float32)})
        # Copied out, so that nothing points into a freed interpreter.
        logits = np.array(outputs[LOGITS], np.float32)
        following = outputs.get(FEATURES)
        if following is not None:
            following = np.array(following, np.float32)
        del runner, outputs
        return following, logits

    def predict(self, x, batch_size=32):
        """Runs `x` through the stages, leaving at confident exits.

        Args:
            x: Inputs, an array `(N, *input_shape)`.
            batch_size: Examples per batch. Defaults to `32`.

        Returns:
            `(logits, exits)`: float32 logits `(N, classes)` from the exit
            each example left at, and that exit's index (`len(thresholds)`
            for the final head), an int array `(N,)`.
        """
        x = np.asarray(x, np.float32)
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
            following, logits = self.run_stage(index, features)
            if result is None:
                result = np.zeros((count, logits.shape[-1]), np.float32)
            if index == self.num_stages - 1:
                result[going] = logits
                break
            threshold = self.thresholds[index]
            leave = np.zeros(len(going), bool)
            if math.isfinite(threshold):
                leave = confidence(logits) >= threshold
            result[going[leave]] = logits[leave]
            exits[going[leave]] = index
            going = going[~leave]
            features = following[~leave]
            if not len(going):
                break
        return result, exits


def confidence(logits):
    """Largest softmax probability of each row of `logits`, in float64 (as
    `calibrate_exits` computes it)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).max(axis=-1)
