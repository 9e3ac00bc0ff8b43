"""Magnitude pruning during `model.fit`, without wrapping the model."""

import contextlib

import keras
import numpy as np

from tfcompress import argument_validation
from tfcompress.graph.filters import LayerFilter
from tfcompress.pruning import masks as mask_maths
from tfcompress.pruning.kernel_masks import KernelMask
from tfcompress.pruning.loss_gradients import summed_loss_gradients
from tfcompress.pruning.schedules import PruningSchedule
from tfcompress.pruning.targets import select_weights

LOG_MODES = ("layers", "total", None)


class MagnitudePruning(keras.callbacks.Callback):
    """Prunes the model's kernels during `fit`, following a schedule.

    Add it to `model.fit` of an ordinary Keras 3 model (Sequential,
    functional, subclassed or nested; tfcompress layers included); nothing is
    wrapped or cloned. On a `keras.distillation.Distiller` (tfcompress's
    included) it prunes the student only, with the student's layer paths.
    At each pruning step of the schedule (counted by
    `model.optimizer.iterations`, as tfmot counts them) the least important
    entries of each selected kernel are set to zero, exactly
    `round(sparsity * size)` of them, and a mask keeps them at zero through
    every later optimizer update (a `tfcompress.pruning.KernelMask` per
    kernel, which this callback drives). When `fit` ends the masks are released
    and the model is a plain model with zeros in its kernels: save it,
    export it, or pass it to `tfcompress.pruning.strip` for a copy and a
    sparsity report.

    Resuming: the step comes from `model.optimizer.iterations` and, once
    pruning has begun, the masks are the kernels' zeros. So training
    resumed with `keras.callbacks.BackupAndRestore`, or from a `.keras`
    file saved with its optimizer, continues the schedule at the right step
    with the same masks, given a new `MagnitudePruning` with the same
    arguments.

    Args:
        schedule: A `PruningSchedule` (`ConstantSparsity`,
            `PolynomialDecay`) for every selected kernel, or a dict
            `{filter: PruningSchedule}` giving layers their own target,
            each key a filter as in `filters` (a regular expression, a
            layer class, a callable, or a tuple of them); then only the
            kernels some key selects are pruned, and a kernel selected by
            several keys follows the most specific one: a key matching the
            kernel's own layer over one matching a layer containing it
            (`"expand"` or `"block1/expand"` over `"block1"`), a regular
            expression over a class over a callable, then the longer match
            (see `tfcompress.graph.LayerFilter.specificity`).
        filters: Which kernels to prune when `schedule` is a single
            schedule, as Keras's `Model.quantize(filters=...)` chooses
            layers: `None` (every Dense, EinsumDense, convolution and
            recurrent kernel, and Embedding tables, at any depth), a
            regular expression searched in the name of the layer owning
            the kernel and in the kernel's path
            (`"block1/expand"`; `"block1"` selects every kernel inside a
            composite layer `block1`; a kernel not called `kernel` has its
            attribute at the end of its path, e.g.
            `"sep/pointwise_kernel"`), a layer class (its instances and the
            kernels inside one), a callable `fn(layer) -> bool`, or a list
            of them. A string or class that selects no prunable kernel is
            an error.
        min_weights: Skip kernels with fewer entries than this (small
            layers save little and are often the most sensitive). Defaults
            to `0`, pruning every selected kernel as tfmot does.
        importance: `"magnitude"` (default): prune the smallest `|w|`.
            `"taylor"`: prune the smallest `|w * dL/dw|` (Molchanov et al.
            2017), with the gradient of the model's compiled loss summed over
            `importance_data`.
        importance_data: For `"taylor"`: `(x, y)` arrays or an iterable of
            `(x, y)` batches (such as a `tf.data.Dataset`).
        importance_batches: How many batches of `importance_data` to use at
            each pruning step (arrays are cut into batches of 128).
            Defaults to `4`.
        sparsity_m_by_n: `None`, or `(m, n)` for N:M structured sparsity:
            `m` zeros in every `n` consecutive input channels (tfmot's
            argument; `(2, 4)` is the 2:4 pattern). The schedule then only
            says when to prune; every kernel becomes `m / n` sparse.
            Depthwise and transposed kernels have no such axis and are
            skipped (listed in `skipped`).
        log_sparsity: `"layers"` (default) adds `sparsity` (over all pruned
            kernels) and `sparsity/<layer path>` to the epoch logs, so they
            land in `fit`'s history and in TensorBoard; `"total"` only adds
            `sparsity`; `None` adds nothing.
        verbose: Print one line per pruning step. Defaults to `False`.

    Attributes:
        pruned: Paths of the kernels being pruned (after `fit` begins).
        skipped: `(path, reason)` pairs for kernels left dense.

    Example:

    ```python
    schedule = tfcompress.pruning.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=0.8, begin_step=0,
        end_step=1000)
    model.fit(x, y, epochs=5,
              callbacks=[tfcompress.callbacks.MagnitudePruning(schedule)])
    history.history["sparsity"]  # per epoch
    ```
    """

    def __init__(
        self,
        schedule,
        filters=None,
        min_weights=0,
        importance="magnitude",
        importance_data=None,
        importance_batches=4,
        sparsity_m_by_n=None,
        log_sparsity="layers",
        verbose=False,
    ):
        super().__init__()
        if isinstance(schedule, dict):
            if not schedule:
                raise ValueError(
                    "`schedule` is an empty dict: map filters to "
                    "schedules, e.g. {'dense_1': ConstantSparsity(0.8, 0)}."
                )
            if filters is not None:
                raise ValueError(
                    "Pass `filters` only with a single schedule: with a dict "
                    "`schedule`, its keys already choose the layers. "
                    f"Received: filters={filters!r}"
                )
            for key, value in schedule.items():
                LayerFilter.get(key, f"schedule key {key!r}")
                _check_schedule(value, f"schedule[{key!r}]")
        else:
            _check_schedule(schedule, "schedule")
            LayerFilter.get(filters)
        argument_validation.integer_at_least("min_weights", min_weights, 0)
        if importance not in mask_maths.IMPORTANCE_MEASURES:
            raise ValueError(
                "`importance` must be one of "
                f"{mask_maths.IMPORTANCE_MEASURES}. "
                f"Received: importance={importance!r}"
            )
        if importance == "taylor" and importance_data is None:
            raise ValueError(
                '`importance="taylor"` ranks weights by |w * dL/dw| and so '
                "needs `importance_data`: (x, y) arrays or a dataset of "
                "(x, y) batches to compute the loss gradient on."
            )
        if importance == "magnitude" and importance_data is not None:
            raise ValueError(
                '`importance_data` is only used with importance="taylor"; '
                'magnitude pruning needs no data.'
            )
        argument_validation.positive_int(
            "importance_batches", importance_batches
        )
        if sparsity_m_by_n is not None:
            sparsity_m_by_n = mask_maths.validate_m_by_n(sparsity_m_by_n)
        if log_sparsity not in LOG_MODES:
            raise ValueError(
                f"`log_sparsity` must be one of {LOG_MODES}. "
                f"Received: log_sparsity={log_sparsity!r}"
            )
        self.schedule = schedule
        self.filters = filters
        self.min_weights = int(min_weights)
        self.importance = importance
        self.importance_data = importance_data
        self.importance_batches = int(importance_batches)
        self.sparsity_m_by_n = sparsity_m_by_n
        self.log_sparsity = log_sparsity
        self.verbose = verbose
        self.pruned = []
        self.skipped = []
        self._targets = []  # (PrunableWeight, schedule) pairs.
        self._masks = {}  # path -> KernelMask.
        self._last_step = None
        self._selected_for = None
        self._plain_function = None
        self._masked_function = None

    # -- Choosing the kernels -------------------------------------------

    def _select(self):
        if isinstance(self.schedule, dict):
            weights, skipped = select_weights(
                _pruned_model(self.model),
                _union_of_keys(self.schedule),
                self.min_weights,
            )
            targets = [
                (w, self.schedule[_most_specific_key(self.schedule, w)])
                for w in weights
            ]
        else:
            weights, skipped = select_weights(
                _pruned_model(self.model), self.filters, self.min_weights
            )
            targets = [(w, self.schedule) for w in weights]
        if self.sparsity_m_by_n is not None:
            kept = []
            for weight, schedule in targets:
                if weight.input_channel_axis is None:
                    skipped.append(
                        (weight.path, "no input-channel axis for N:M")
                    )
                else:
                    kept.append((weight, schedule))
            targets = kept
        if not targets:
            raise ValueError(
                "MagnitudePruning selected no kernel to prune. Skipped: "
                + "; ".join(f"{p} ({r})" for p, r in skipped)
            )
        self._targets = targets
        self.pruned = [w.path for w, _ in targets]
        self.skipped = skipped

    # -- Callback hooks -------------------------------------------------

    def on_train_begin(self, logs=None):
        if getattr(self.model, "optimizer", None) is None:
            raise ValueError(
                "MagnitudePruning counts steps with the model's optimizer: "
                "call `model.compile(optimizer=...)` before `fit`."
            )
        if self._selected_for is not self.model:
            # First fit, or the callback is reused on another model.
            self._select()
            self._masks = {}
            self._plain_function = self._masked_function = None
            self._selected_for = self.model
        strategy = getattr(self.model, "distribute_strategy", None)
        for weight, _ in self._targets:
            if weight.path not in self._masks:
                # Under the model's strategy, so that each replica's
                # optimizer update reads a mask on its own device.
                with strategy.scope() if strategy else contextlib.nullcontext():
                    self._masks[weight.path] = KernelMask(weight.variable)
            # Also releases a mask left by an interrupted fit.
            self._masks[weight.path].attach()
        self._use_masked_train_function()
        # The step is read at the first batch: `BackupAndRestore` restores
        # the optimizer in its own `on_train_begin`, possibly after this one.
        self._last_step = None

    def _use_masked_train_function(self):
        """Gives the model a train function that applies the masks.

        A train function traces the constraints on its first call, so the
        one `fit` built (or kept from an earlier `fit`) has none. Tracing
        again costs seconds, so the masked function is kept and reused by
        the next `fit` with this callback, as long as the model's own
        function is still the one it replaced (`compile` makes a new one).
        """
        plain = self.model.train_function
        if self._masked_function is None or plain is not self._plain_function:
            self._plain_function = plain
            self.model.make_train_function(force=True)
            self._masked_function = self.model.train_function
        self.model.train_function = self._masked_function

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if self._last_step is None:
            self._restore_masks(step)
            self._last_step = step - 1
        due = [
            (weight, schedule)
            for weight, schedule in self._targets
            if _pruning_step_between(schedule, self._last_step, step)
        ]
        self._last_step = step
        if due:
            self._prune(due, step)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.log_sparsity is None:
            return
        by_layer = self.sparsity()
        sizes = {w.path: w.size for w, _ in self._targets}
        total_zeros = sum(by_layer[p] * sizes[p] for p in by_layer)
        logs["sparsity"] = float(total_zeros / sum(sizes.values()))
        if self.log_sparsity == "layers":
            for path, value in by_layer.items():
                logs[f"sparsity/{path}"] = float(value)

    def on_train_end(self, logs=None):
        # Release the masks: the model is left a plain model, its pruned
        # weights exactly zero.
        for weight, _ in self._targets:
            self._masks[weight.path].release()
        # The function `fit` had before this callback, traced without masks.
        self.model.train_function = self._plain_function

    # -- Pruning --------------------------------------------------------

    def sparsity(self):
        """Fraction of zeros in each pruned kernel, `{path: sparsity}`."""
        result = {}
        for weight, _ in self._targets:
            values = keras.ops.convert_to_numpy(weight.variable)
            result[weight.path] = 1.0 - np.count_nonzero(values) / values.size
        return result

    def _restore_masks(self, step):
        """Masks for a resumed run: the zeros of kernels already pruned."""
        for weight, schedule in self._targets:
            if step > schedule.begin_step:
                self._masks[weight.path].restore_from_zeros()

    def _prune(self, due, step):
        gradients = {}
        if self.importance == "taylor":
            weights = [w for w, _ in due]
            sums = summed_loss_gradients(
                self.model,
                [w.variable for w in weights],
                self.importance_data,
                self.importance_batches,
            )
            gradients = {w.path: g for w, g in zip(weights, sums)}
        for weight, schedule in due:
            mask = self._masks[weight.path]
            gradient = gradients.get(weight.path)
            if self.sparsity_m_by_n is not None:
                mask.update(
                    m_by_n=self.sparsity_m_by_n,
                    channel_axis=weight.input_channel_axis,
                    gradient=gradient,
                )
            else:
                mask.update(
                    sparsity=schedule.sparsity_at(step), gradient=gradient
                )
        if self.verbose:
            sparsity = self.sparsity()
            mean = np.mean([sparsity[w.path] for w, _ in due])
            print(
                f"MagnitudePruning: step {step}, pruned {len(due)} kernels, "
                f"mean sparsity {mean:.3f}"
            )


def _check_schedule(schedule, name):
    if not isinstance(schedule, PruningSchedule):
        raise ValueError(
            f"`{name}` must be a PruningSchedule such as "
            "tfcompress.pruning.ConstantSparsity(0.8, begin_step=0) or "
            f"PolynomialDecay(...). Received: {schedule!r}"
        )


def _pruned_model(model):
    """The model whose kernels are pruned: a Distiller's student only.

    A `keras.distillation.Distiller` holds the frozen teacher too, which
    must stay untouched; layer names and paths are then the student's.
    """
    if isinstance(model, keras.distillation.Distiller):
        return model.student
    return model


def _union_of_keys(schedule_dict):
    """One filter selecting what any key of a dict `schedule` selects."""
    items = []
    for key in schedule_dict:
        items.extend(key if isinstance(key, tuple) else [key])
    return LayerFilter(items, "schedule")


def _most_specific_key(schedule_dict, weight):
    """The key of `schedule_dict` that names `weight` most specifically."""
    found = {}
    for key in schedule_dict:
        value = LayerFilter.get(key).specificity(
            weight.layer, weight.path, weight.ancestors
        )
        if value is not None:
            found[key] = value
    # `max` keeps the first of equals: the earlier key wins a tie.
    return max(found, key=found.get)


def _pruning_step_between(schedule, after, upto):
    """Whether the schedule prunes at a step in `(after, upto]`.

    One step per batch normally; several when `steps_per_execution > 1`
    runs several steps between two callbacks.
    """
    return any(
        schedule.should_prune(step) for step in range(after + 1, upto + 1)
    )
