"""`MagnitudePruning` on real `fit` runs: sparsity reached, zeros kept,
per-layer targets, N:M, logging, resuming, strategies."""

import glob
import textwrap

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.callbacks import MagnitudePruning
from tfcompress.pruning import ConstantSparsity
from tfcompress.pruning import PolynomialDecay
from tfcompress.pruning import sparsity_report
from tfcompress.pruning import strip
from tfcompress.pruning.masks import pruned_count
from tests.two_cpus import run_on_two_cpus

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def conv_layers():
    return [
        keras.layers.Conv2D(16, 3, padding="same", activation="relu",
                            name="conv"),
        keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise"),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu", name="hidden"),
        keras.layers.Dense(10, name="logits"),
    ]


def sequential():
    return keras.Sequential([keras.Input((8, 8, 1)), *conv_layers()])


def functional():
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for layer in conv_layers():
        x = layer(x)
    return keras.Model(inputs, x)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.stack = conv_layers()

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x


def nested():
    inner = keras.Sequential(
        [keras.Input((8, 8, 1)), *conv_layers()[:3]], name="features"
    )
    inputs = keras.Input((8, 8, 1))
    x = inner(inputs)
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def compiled(model, optimizer=None):
    model.compile(
        optimizer or keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"]
    )
    model(np.zeros((1, 8, 8, 1), "float32"))  # builds subclassed models too
    return model


def kernel(model, path):
    for weight in tfcompress.pruning.targets.all_prunable_weights(model):
        if weight.path == path:
            return keras.ops.convert_to_numpy(weight.variable)
    raise KeyError(path)


@pytest.mark.parametrize(
    "make", [sequential, functional, Subclassed, nested], ids=lambda f: f.__name__
)
def test_every_kernel_reaches_the_target_within_one_weight(make, digits):
    x, y, _, _ = digits
    model = compiled(make())
    callback = MagnitudePruning(
        PolynomialDecay(0.0, 0.8, begin_step=0, end_step=20, frequency=5)
    )
    model.fit(x[:512], y[:512], epochs=2, batch_size=32, verbose=0,
              callbacks=[callback])
    report = sparsity_report(model)
    assert len(report.kernels) == 4
    for k in report.kernels:
        assert k.zeros == pruned_count(k.size, np.float32(0.8)), k
    assert set(callback.pruned) == {k.path for k in report.kernels}


def test_tfcompress_layers_are_pruned_inside(digits):
    x, y, _, _ = digits
    model = compiled(tfcompress.models.small_mobilenet_v2((8, 8, 1), 10))
    callback = MagnitudePruning(ConstantSparsity(0.5, 0, frequency=10))
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0,
              callbacks=[callback])
    report = sparsity_report(model)
    assert "block2/expand" in callback.pruned
    assert "separable/depthwise" in callback.pruned
    for k in report.kernels:
        assert k.zeros == pruned_count(k.size, 0.5), k


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(1e-2),
        lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1),
    ],
    ids=["sgd_momentum", "adam", "adamw"],
)
def test_pruned_weights_stay_exactly_zero_through_updates(optimizer, digits):
    x, y, _, _ = digits
    model = compiled(functional(), optimizer())
    # One pruning step at step 0, then 40 steps of plain training in which
    # momentum and Adam's moments push on the pruned weights.
    callback = MagnitudePruning(
        ConstantSparsity(0.6, begin_step=0, end_step=0)
    )
    before = kernel(model, "hidden").copy()
    model.fit(x[:640], y[:640], epochs=2, batch_size=32, verbose=0,
              callbacks=[callback])
    after = kernel(model, "hidden")
    expected_mask = tfcompress.pruning.magnitude_mask(before, 0.6)
    np.testing.assert_array_equal(after == 0, expected_mask == 0)
    # The kept weights did train.
    kept = expected_mask == 1
    assert np.abs(after[kept] - before[kept]).mean() > 1e-3


def test_constraints_are_released_and_the_users_own_is_kept(digits):
    x, y, _, _ = digits
    model = compiled(functional())
    hidden = model.get_layer("hidden")
    hidden.kernel.constraint = keras.constraints.MaxNorm(0.5)
    callback = MagnitudePruning(ConstantSparsity(0.5, 0, frequency=5))
    model.fit(x[:128], y[:128], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    assert isinstance(hidden.kernel.constraint, keras.constraints.MaxNorm)
    norms = np.sqrt((kernel(model, "hidden") ** 2).sum(axis=0))
    assert norms.max() <= 0.5 + 1e-5  # MaxNorm ran inside the mask too.
    # Plain training afterwards no longer masks anything.
    model.fit(x[:128], y[:128], epochs=1, batch_size=32, verbose=0)
    assert sparsity_report(model)["conv"].sparsity < 0.1


def test_per_layer_schedules_and_the_most_specific_key(digits):
    x, y, _, _ = digits
    model = compiled(tfcompress.models.small_mobilenet_v2((8, 8, 1), 10))
    callback = MagnitudePruning(
        {
            "block3": ConstantSparsity(0.9, 0, frequency=10),
            "block3/depthwise": ConstantSparsity(0.25, 0, frequency=10),
            "logits": ConstantSparsity(0.5, 0, frequency=10),
        }
    )
    model.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0,
              callbacks=[callback])
    report = sparsity_report(model)
    for path, target in [
        ("block3/expand", 0.9),
        ("block3/project", 0.9),
        ("block3/depthwise", 0.25),
        ("logits", 0.5),
        ("block1/expand", 0.0),
    ]:
        k = report[path]
        assert k.zeros == pruned_count(k.size, np.float32(target)), k


@pytest.mark.parametrize(
    "filters, expected",
    [
        (["hidden"], {"hidden"}),
        (keras.layers.Conv2D, {"conv"}),  # DepthwiseConv2D is not a Conv2D
        ([keras.layers.Dense], {"hidden", "logits"}),
        ([lambda layer: layer.name.startswith("depth")], {"depthwise"}),
    ],
    ids=["name", "class", "class_list", "predicate"],
)
def test_layer_selection(filters, expected, digits):
    x, y, _, _ = digits
    model = compiled(functional())
    callback = MagnitudePruning(ConstantSparsity(0.5, 0), filters=filters)
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    assert set(callback.pruned) == expected
    report = sparsity_report(model)
    for k in report.kernels:
        assert (k.sparsity > 0.4) == (k.path in expected), k


def test_regex_filters_search_names_and_paths(digits):
    x, y, _, _ = digits
    model = compiled(nested())
    # "features" is the nested model: its path selects the kernels inside.
    callback = MagnitudePruning(
        ConstantSparsity(0.5, 0), filters=["^features", "^log"]
    )
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    assert set(callback.pruned) == {
        "features/conv", "features/depthwise", "logits"
    }
    assert dict(callback.skipped) == {"hidden": "not selected by filters"}


def test_dict_keys_are_filters_and_the_most_specific_wins(digits):
    x, y, _, _ = digits
    model = compiled(nested())
    callback = MagnitudePruning(
        {
            keras.layers.Dense: ConstantSparsity(0.25, 0),
            "features": ConstantSparsity(0.5, 0),
            "features/conv": ConstantSparsity(0.75, 0),
            "logits": ConstantSparsity(0.8, 0),
        }
    )
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    report = sparsity_report(model)
    for path, target in [
        ("features/conv", 0.75),  # the longer path over "features"
        ("features/depthwise", 0.5),
        ("hidden", 0.25),  # the class
        ("logits", 0.8),  # a name over a class
    ]:
        k = report[path]
        assert k.zeros == pruned_count(k.size, np.float32(target)), k


def test_small_layers_are_skipped_and_reported(digits):
    x, y, _, _ = digits
    model = compiled(functional())
    callback = MagnitudePruning(ConstantSparsity(0.5, 0), min_weights=200)
    model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    assert set(callback.pruned) == {"hidden", "logits"}  # 32768 and 320
    assert dict(callback.skipped) == {
        "conv": "144 weights < min_weights",
        "depthwise": "144 weights < min_weights",
    }
    assert sparsity_report(model)["conv"].zeros == 0


def test_taylor_importance_prunes_weights_the_loss_ignores(digits):
    x, y, _, _ = digits
    # Dense on flattened pixels: the digits' left-most column is almost
    # always blank, so its rows of the kernel get no gradient at all.
    x = x.reshape(len(x), 64)[:256]
    y = y[:256]
    blank = np.where(np.abs(x).sum(axis=0) == 0)[0]
    assert len(blank) >= 3
    values = np.random.default_rng(0).normal(size=(64, 10))
    values[blank] = 5.0  # large, but useless
    sparsity = len(blank) * 10 / values.size
    for importance, data in [("magnitude", None), ("taylor", (x, y))]:
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
        model.compile(keras.optimizers.SGD(0.0), LOSS)
        layer_kernel = model.layers[0].kernel
        layer_kernel.assign(values)
        callback = MagnitudePruning(
            ConstantSparsity(sparsity, 0),
            importance=importance,
            importance_data=data,
        )
        model.fit(x, y, epochs=1, batch_size=64, verbose=0,
                  callbacks=[callback])
        pruned_rows = np.where(
            (keras.ops.convert_to_numpy(layer_kernel) == 0).all(axis=1)
        )[0]
        if importance == "taylor":
            np.testing.assert_array_equal(pruned_rows, blank)
        else:
            assert len(np.intersect1d(pruned_rows, blank)) == 0


def test_m_by_n_sparsity_along_input_channels(digits):
    x, y, _, _ = digits
    model = compiled(functional())
    callback = MagnitudePruning(
        ConstantSparsity(0.5, 0, frequency=4), sparsity_m_by_n=(2, 4)
    )
    model.fit(x[:256], y[:256], epochs=2, batch_size=32, verbose=0,
              callbacks=[callback])
    assert dict(callback.skipped) == {
        "depthwise": "no input-channel axis for N:M"
    }
    for path, axis in [("hidden", 0), ("logits", 0)]:
        nonzero = kernel(model, path) != 0
        groups = nonzero.reshape(-1, 4, nonzero.shape[1])
        np.testing.assert_array_equal(groups.sum(axis=1), 2)
    # conv: 1 input channel, a short group: up to 2 of 1 kept, so dense.
    assert sparsity_report(model)["conv"].zeros == 0
    assert sparsity_report(model)["depthwise"].zeros == 0


def test_sparsity_is_logged_to_history_and_tensorboard(digits, tmp_path):
    x, y, _, _ = digits
    model = compiled(functional())
    callback = MagnitudePruning(
        PolynomialDecay(0.0, 0.75, begin_step=0, end_step=8, frequency=2)
    )
    history = model.fit(
        x[:128], y[:128], epochs=3, batch_size=32, verbose=0,
        callbacks=[callback, keras.callbacks.TensorBoard(str(tmp_path))],
    )
    total = history.history["sparsity"]
    assert len(total) == 3 and total[0] < total[1] <= total[2]
    # 4 steps per epoch: after epoch 1 the schedule is at step 2 of 8.
    np.testing.assert_allclose(total[-1], 0.75, atol=1e-3)
    hidden = history.history["sparsity/hidden"]
    np.testing.assert_allclose(hidden[-1], 0.75, atol=1e-4)
    events = glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(events[0])
    accumulator.Reload()
    tags = accumulator.Tags()["tensors"]
    assert "epoch_sparsity" in tags and "epoch_sparsity/hidden" in tags


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def _resume_model():
    keras.utils.set_random_seed(1)
    return compiled(functional(), keras.optimizers.SGD(0.05, momentum=0.9))


def _schedule():
    return PolynomialDecay(0.0, 0.8, begin_step=0, end_step=60, frequency=7)


def test_backup_and_restore_resumes_the_schedule_with_the_same_masks(
    digits, tmp_path
):
    x, y, _, _ = digits
    x, y = x[:320], y[:320]  # 10 steps per epoch
    fit = dict(epochs=5, batch_size=32, verbose=0, shuffle=False)

    reference = _resume_model()
    reference_history = reference.fit(
        x, y, callbacks=[MagnitudePruning(_schedule())], **fit
    )

    interrupted = _resume_model()
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(
            x, y, **fit,
            callbacks=[
                MagnitudePruning(_schedule()),
                keras.callbacks.BackupAndRestore(backup),
                _Interrupt(3),
            ],
        )
    resumed = _resume_model()  # a fresh process would start like this
    # The pruning callback comes first, so its `on_train_begin` runs
    # before BackupAndRestore restores the optimizer step.
    history = resumed.fit(
        x, y, **fit,
        callbacks=[
            MagnitudePruning(_schedule()),
            keras.callbacks.BackupAndRestore(backup),
        ],
    )
    assert int(resumed.optimizer.iterations) == 50
    assert len(history.history["sparsity"]) == 2  # epochs 4 and 5
    np.testing.assert_allclose(
        history.history["sparsity"], reference_history.history["sparsity"][3:]
    )
    for path in ["conv", "depthwise", "hidden", "logits"]:
        np.testing.assert_array_equal(
            kernel(resumed, path) == 0, kernel(reference, path) == 0
        )
        np.testing.assert_allclose(
            kernel(resumed, path), kernel(reference, path), atol=1e-5
        )


def test_resuming_from_a_keras_file_continues_the_schedule(digits, tmp_path):
    x, y, _, _ = digits
    x, y = x[:320], y[:320]
    fit = dict(batch_size=32, verbose=0, shuffle=False)
    reference = _resume_model()
    reference.fit(x, y, epochs=4, callbacks=[MagnitudePruning(_schedule())],
                  **fit)

    first = _resume_model()
    first.fit(x, y, epochs=2, callbacks=[MagnitudePruning(_schedule())],
              **fit)
    path = str(tmp_path / "pruning.keras")
    first.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert int(loaded.optimizer.iterations) == 20
    loaded.fit(x, y, epochs=2, callbacks=[MagnitudePruning(_schedule())],
               **fit)
    for layer in ["conv", "hidden", "logits"]:
        np.testing.assert_array_equal(
            kernel(loaded, layer) == 0, kernel(reference, layer) == 0
        )


def test_steps_per_execution_prunes_at_the_crossed_steps(digits):
    x, y, _, _ = digits
    model = functional()
    model.compile(keras.optimizers.Adam(1e-3), LOSS, steps_per_execution=4)
    callback = MagnitudePruning(
        PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, frequency=5)
    )
    model.fit(x[:640], y[:640], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    # The last pruning step (10) falls inside the third execution (8-11)
    # and is applied at its start; sparsity reaches the final target.
    for k in sparsity_report(model).kernels:
        assert k.zeros == pruned_count(k.size, np.float32(0.5)), k


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tfcompress
    from tfcompress.callbacks import MagnitudePruning
    from tfcompress.pruning import ConstantSparsity, sparsity_report

    keras.utils.set_random_seed(0)
    (x, y), _ = tfcompress.datasets.load_digits()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tfcompress.models.small_mobilenet_v2((8, 8, 1), 10)
        model.compile(
            keras.optimizers.SGD(0.05, momentum=0.9),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    callback = MagnitudePruning(
        ConstantSparsity(0.7, begin_step=0, end_step=0))
    model.fit(x[:512], y[:512], epochs=2, batch_size=64, verbose=0,
              callbacks=[callback])
    print("replicas", strategy.num_replicas_in_sync)
    for k in sparsity_report(model).kernels:
        print("kernel", k.path, k.size, k.zeros)
    """
)


def test_mirrored_strategy_over_two_cpus(tmp_path):
    lines = run_on_two_cpus(MIRRORED_SCRIPT, tmp_path)
    assert "replicas 2" in lines
    kernels = [line.split() for line in lines if line.startswith("kernel")]
    assert len(kernels) == 13
    for _, path, size, zeros in kernels:
        # Pruned once at step 0; 16 mirrored updates later, still exact.
        assert int(zeros) == pruned_count(int(size), np.float32(0.7)), path


def test_strip_returns_a_plain_copy_and_leaves_the_model_alone(
    digits, tmp_path
):
    x, y, x_test, _ = digits
    model = compiled(functional())
    with pytest.raises(RuntimeError):
        # Interrupted: on_train_end never runs, masks stay on the model.
        model.fit(x[:128], y[:128], epochs=3, batch_size=32, verbose=0,
                  callbacks=[MagnitudePruning(ConstantSparsity(0.8, 0)),
                             _Interrupt(1)])
    hidden = model.get_layer("hidden")
    assert hidden.kernel.constraint is not None
    plain, report = strip(model)
    assert plain is not model
    # Compiled like the input, with a fresh optimizer.
    assert plain.compiled and plain.optimizer is not model.optimizer
    assert plain.get_compile_config() == model.get_compile_config()
    assert hidden.kernel.constraint is not None  # the input is untouched
    for weight in tfcompress.pruning.targets.all_prunable_weights(plain):
        assert weight.variable.constraint is None
    assert report["hidden"].zeros == pruned_count(report["hidden"].size, 0.8)
    np.testing.assert_allclose(report.sparsity, 0.8, atol=1e-3)
    np.testing.assert_array_equal(plain.predict(x_test, verbose=0),
                                  model.predict(x_test, verbose=0))
    assert "hidden" in str(report) and "total" in str(report)
    # It saves, loads and exports like any model.
    path = str(tmp_path / "plain.keras")
    plain.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert sparsity_report(loaded).zeros == report.zeros
    export = tfcompress.to_tflite(plain, str(tmp_path / "plain.tflite"))
    assert export.size_bytes > 0
    same, _ = strip(model, inplace=True)
    assert same is model and hidden.kernel.constraint is None


def test_strip_explains_models_it_cannot_copy():
    model = Subclassed()
    model(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="inplace=True"):
        strip(model)
    plain, report = strip(model, inplace=True)
    assert plain is model and report.sparsity < 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": 0.5}, "must be a PruningSchedule"),
        ({"schedule": {}}, "empty dict"),
        ({"schedule": {"a": ConstantSparsity(0.5, 0)}, "filters": ["a"]},
         "Pass `filters` only with a single schedule"),
        ({"filters": 3}, "`filters` must be None, a regular expression"),
        ({"filters": "(("}, "invalid regular expression"),
        ({"schedule": {3: ConstantSparsity(0.5, 0)}},
         "`schedule key 3` must be None, a regular expression"),
        ({"min_weights": -1}, "min_weights"),
        ({"importance": "l1"}, "`importance` must be one of"),
        ({"importance": "taylor"}, "needs `importance_data`"),
        ({"importance_data": (1, 2)}, "only used with importance=\"taylor\""),
        ({"sparsity_m_by_n": (4, 2)}, "sparsity_m_by_n"),
        ({"log_sparsity": "all"}, "log_sparsity"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    kwargs = {"schedule": ConstantSparsity(0.5, 0), **kwargs}
    with pytest.raises(ValueError, match=message):
        MagnitudePruning(**kwargs)


def test_bad_models_raise_clear_errors(digits):
    x, y, _, _ = digits
    model = functional()
    with pytest.raises(
        ValueError,
        match="`filters` matched no layer that magnitude pruning can handle: "
        "'nope'. Such layers: 'conv', 'depthwise', 'hidden', 'logits'",
    ):
        model.compile(keras.optimizers.SGD(), LOSS)
        model.fit(x[:32], y[:32], verbose=0, callbacks=[
            MagnitudePruning(ConstantSparsity(0.5, 0), filters=["nope"])])
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    flat.compile(keras.optimizers.SGD(), "mse")
    with pytest.raises(ValueError, match="no prunable layer"):
        flat.fit(x[:32], x[:32].reshape(32, 64), verbose=0,
                 callbacks=[MagnitudePruning(ConstantSparsity(0.5, 0))])


def test_unbuilt_sublayers_are_named_in_the_error():
    model = Subclassed()
    model.build((None, 8, 8, 1))  # marks the model built, not its layers
    with pytest.raises(ValueError, match="Call the model on a batch"):
        tfcompress.pruning.targets.select_weights(model)


def test_one_callback_reused_on_another_model(digits):
    x, y, _, _ = digits
    callback = MagnitudePruning(ConstantSparsity(0.5, 0))
    first = compiled(functional())
    first.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
              callbacks=[callback])
    second = compiled(tfcompress.models.small_mobilenet_v2((8, 8, 1), 10))
    second.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0,
               callbacks=[callback])
    assert "block1/expand" in callback.pruned
    k = sparsity_report(second)["block1/expand"]
    assert k.zeros == pruned_count(k.size, 0.5)
    assert sparsity_report(first).sparsity == pytest.approx(0.5, abs=1e-3)


class TraceCounting(keras.Model):
    """A functional model that counts how often its train step is traced."""

    traces = 0

    def train_step(self, data):
        # Python runs here only while TensorFlow traces the step.
        TraceCounting.traces += 1
        return super().train_step(data)


def test_later_fits_with_the_callback_reuse_the_masked_train_step(digits):
    x, y, _, _ = digits
    plain = functional()
    model = compiled(TraceCounting(plain.inputs, plain.outputs))
    fit = dict(epochs=1, batch_size=32, verbose=0)

    def hidden_sparsity():
        return sparsity_report(model)["hidden"].sparsity

    # Pruned once, at step 0; the masks must then hold through every fit.
    callback = MagnitudePruning(ConstantSparsity(0.5, begin_step=0, end_step=0))
    model.fit(x[:64], y[:64], callbacks=[callback], **fit)
    traced = TraceCounting.traces
    for _ in range(2):
        model.fit(x[:64], y[:64], callbacks=[callback], **fit)
        assert hidden_sparsity() == pytest.approx(0.5, abs=1e-3)
    assert TraceCounting.traces == traced
    # A plain fit runs the function it had before: traced now, no masks.
    model.fit(x[:64], y[:64], **fit)
    assert TraceCounting.traces == traced + 1
    assert hidden_sparsity() < 0.1
    # Back with the callback: the masked step again, with no new trace.
    model.fit(x[:64], y[:64], callbacks=[callback], **fit)
    assert TraceCounting.traces == traced + 1
    assert hidden_sparsity() == pytest.approx(0.5, abs=1e-3)
    # `compile` makes a new train function: the masks are traced into it.
    compiled(model, keras.optimizers.SGD(0.1))
    model.fit(x[:64], y[:64], callbacks=[callback], **fit)
    assert TraceCounting.traces > traced + 1
    assert hidden_sparsity() == pytest.approx(0.5, abs=1e-3)
