"""`tfcompress.distillation.Distiller` and `cache_teacher_outputs` on real
`fit` runs: variables, saving, the teacher cache, label-free distillation,
pruning the student, MirroredStrategy."""

import textwrap

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.callbacks import DistillationScheduler
from tfcompress.callbacks import MagnitudePruning
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.distillation import Distiller
from tfcompress.distillation import cache_teacher_outputs
from tfcompress.distillation import distillation_loss
from tfcompress.export import to_tflite
from tfcompress.export import verify
from tfcompress.pruning import ConstantSparsity
from tfcompress.pruning import sparsity_report
from tfcompress.pruning.masks import pruned_count
from tfcompress.quantization import quantize_model
from tests.distillation.conftest import LOSS
from tests.distillation.conftest import mlp
from tests.two_cpus import run_on_two_cpus


def logits_loss(temperature=4.0):
    return keras.distillation.LogitsDistillation(
        temperature, loss=keras.losses.KLDivergence()
    )


def make_distiller(teacher, student, cls=Distiller, metrics=("accuracy",),
                   **kwargs):
    kwargs.setdefault("distillation_losses", logits_loss())
    distiller = cls(teacher, student, **kwargs)
    distiller.compile(keras.optimizers.Adam(1e-2), loss=LOSS,
                      metrics=list(metrics))
    return distiller


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def arrays(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def assert_bit_identical(before, model):
    for old, new in zip(before, arrays(model)):
        np.testing.assert_array_equal(old, new)


def test_temperature_and_weight_are_variables_and_saved(digits, tmp_path):
    x, y, _, _ = digits
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    distiller = make_distiller(teacher, student, student_loss_weight=0.25)
    assert distiller.temperature == 4.0
    assert distiller.student_loss_weight == 0.25
    names = sorted(w.name for w in distiller.non_trainable_weights
                   if w.path.startswith("distiller/"))
    assert names == ["student_loss_weight", "temperature"]

    distiller.temperature = 2.0
    distiller.student_loss_weight = 0.75
    variables = {w.name: float(w.numpy()) for w in distiller.weights
                 if w.path.startswith("distiller/")}
    assert variables == {"temperature": 2.0, "student_loss_weight": 0.75}
    config = distiller.get_config()
    assert config["student_loss_weight"] == 0.75
    assert config["distillation_losses"][0]["config"]["temperature"] == 2.0

    distiller.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    # Keras's Distiller overrides compile() without a compile config, so
    # load_model warns and leaves it uncompiled, for tfcompress's too.
    with pytest.warns(UserWarning, match="compile"):
        loaded = keras.saving.load_model(path)
    loaded.compile(loss=LOSS)
    assert type(loaded) is Distiller
    assert (loaded.temperature, loaded.student_loss_weight) == (2.0, 0.75)
    np.testing.assert_allclose(loaded.predict(x[:32], verbose=0),
                               distiller.predict(x[:32], verbose=0))
    np.testing.assert_allclose(
        float(loaded.compute_loss(x[:32], y[:32], student(x[:32]))),
        float(distillation_loss(y[:32], student(x[:32]), teacher(x[:32]),
                                2.0, 0.25)),
        rtol=1e-5,
    )


def test_setters_and_losses_raise_clear_errors():
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    distiller = make_distiller(teacher, student)
    with pytest.raises(ValueError, match=r"`student_loss_weight` must be a "
                       r"number in \[0, 1\]. Received: student_loss_weight=2"):
        distiller.student_loss_weight = 2
    with pytest.raises(ValueError, match="`temperature` must be a number > 0."
                       " Received: temperature=0"):
        distiller.temperature = 0
    features = make_distiller(
        teacher, student,
        distillation_losses=keras.distillation.FeatureDistillation("mse"),
    )
    assert features.temperature is None
    with pytest.raises(ValueError, match="no LogitsDistillation loss"):
        features.temperature = 2.0


def test_logits_distillation_with_its_own_compute_loss_is_refused():
    # The Distiller computes the LogitsDistillation loss itself (at the
    # temperature variable), so a subclass's own method would be ignored.
    class Halved(keras.distillation.LogitsDistillation):
        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            return 0.5 * super().compute_loss(teacher_outputs, student_outputs)

    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    with pytest.raises(ValueError, match=r"distillation_losses\[1\] is a "
                       r"Halved, a LogitsDistillation with its own "
                       r"`compute_loss`"):
        Distiller(teacher, student, [
            keras.distillation.FeatureDistillation("mse"),
            Halved(4.0, loss=keras.losses.KLDivergence()),
        ])
    assert teacher.trainable  # refused before Keras freezes the teacher


def fit_cached_or_not(teacher_weights, data, cached, shuffle):
    x, y = data
    teacher = mlp(64, "teacher")
    teacher.set_weights(teacher_weights)
    keras.utils.set_random_seed(3)
    distiller = make_distiller(teacher, mlp(16, "student"),
                               student_loss_weight=0.3)
    inputs = cache_teacher_outputs(teacher, x, batch_size=100) if cached else x
    history = distiller.fit(inputs, y, epochs=2, batch_size=64,
                            shuffle=shuffle, verbose=0)
    return distiller, history


@pytest.mark.parametrize("shuffle", [False, True])
def test_cached_teacher_outputs_train_as_the_teacher_does(
    digits, teacher_weights, shuffle
):
    x, y, _, _ = digits
    data = (x[:512], y[:512])
    plain, plain_history = fit_cached_or_not(teacher_weights, data, False,
                                             shuffle)
    cached, cached_history = fit_cached_or_not(teacher_weights, data, True,
                                               shuffle)
    for key in ("student_loss", "distillation_loss", "total_loss"):
        np.testing.assert_allclose(cached_history.history[key],
                                   plain_history.history[key], rtol=1e-4)
    for a, b in zip(arrays(cached.student), arrays(plain.student)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The cached run really never calls the teacher.
    calls = []
    cached.teacher.call = lambda *args, **kwargs: calls.append(1)
    cached.fit(cache_teacher_outputs(plain.teacher, x[:64]), y[:64],
               verbose=0)
    assert calls == []


# Keras warns about its own feature extractor built on a Sequential model.
@pytest.mark.filterwarnings("ignore:The structure of `inputs`")
def test_cached_features_for_feature_distillation(digits):
    x, y, _, _ = digits
    x, y = x[:32], y[:32]
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    distiller = make_distiller(
        teacher, student,
        distillation_losses=[
            logits_loss(),
            keras.distillation.FeatureDistillation(
                "mse", teacher_layer_name="logits",
                student_layer_name="logits"),
        ],
    )
    cached = cache_teacher_outputs(distiller, x)
    assert sorted(cached["teacher_outputs"]) == ["final_output", "logits"]
    y_pred = student(x)
    np.testing.assert_allclose(
        float(distiller.compute_loss(cached, y, y_pred)),
        float(distiller.compute_loss(x, y, y_pred)),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="lack the teacher layers"):
        distiller.compute_loss(cache_teacher_outputs(teacher, x), y, y_pred)


@pytest.mark.parametrize(
    "teacher, x, batch_size, message",
    [
        ("model.keras", np.zeros((4, 8, 8, 1)), 8, "must be a keras.Model"),
        (None, [1, 2], 8, "must be an array"),
        (None, np.zeros((4, 8, 8, 1)), 0, "Received: batch_size=0"),
    ],
)
def test_cache_raises_clear_errors(teacher, x, batch_size, message):
    teacher = teacher or mlp(8, "teacher")
    with pytest.raises(ValueError, match=message):
        cache_teacher_outputs(teacher, x, batch_size)


def test_pure_distillation_without_labels_learns(digits, teacher):
    # No labels at all: fit on x, student_loss_weight=0 (alpha=1), and no
    # compiled metric (Keras's metrics need labels).
    x, _, x_test, y_test = digits
    keras.utils.set_random_seed(1)
    student = mlp(16, "student")
    before = accuracy(student, x_test, y_test)
    distiller = make_distiller(teacher, student, metrics=(),
                               student_loss_weight=0.0)
    teacher_weights = arrays(teacher)
    history = distiller.fit(x, epochs=8, batch_size=64, verbose=0)
    after = accuracy(student, x_test, y_test)
    teacher_accuracy = accuracy(teacher, x_test, y_test)
    print(f"label-free distillation: student {before:.3f} -> {after:.3f}, "
          f"teacher {teacher_accuracy:.3f}")
    assert before < 0.25  # chance is 0.1
    assert after > 0.85
    assert history.history["student_loss"] == [0.0] * 8
    assert_bit_identical(teacher_weights, teacher)


@pytest.mark.parametrize(
    "cls", [keras.distillation.Distiller, Distiller], ids=["keras", "tfcompress"]
)
def test_pruning_the_student_during_distillation(digits, teacher, cls):
    x, y, x_test, y_test = digits
    student = mlp(32, "student")
    distiller = make_distiller(teacher, student, cls=cls,
                               student_loss_weight=0.2)
    teacher_weights = arrays(teacher)
    pruning = MagnitudePruning(ConstantSparsity(0.75, 0, frequency=10))
    callbacks = [pruning]
    if cls is Distiller:
        callbacks.append(DistillationScheduler(
            temperature=tfcompress.distillation.LinearSchedule(6.0, 2.0, 3)))
    distiller.fit(x[:640], y[:640], epochs=4, batch_size=64, verbose=0,
                  callbacks=callbacks)
    assert pruning.pruned == ["hidden", "logits"]  # the student's own paths
    for kernel in sparsity_report(student).kernels:
        assert kernel.zeros == pruned_count(kernel.size, np.float32(0.75))
    assert_bit_identical(teacher_weights, teacher)
    assert sparsity_report(teacher).zeros == 0
    assert accuracy(student, x_test, y_test) > 0.5  # chance: 0.1


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tfcompress
    from tfcompress.callbacks import DistillationScheduler
    from tfcompress.callbacks import MagnitudePruning
    from tfcompress.distillation import LinearSchedule
    from tfcompress.pruning import ConstantSparsity, sparsity_report

    def mlp(units, name):
        return keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits")], name=name)

    keras.utils.set_random_seed(0)
    (x, y), _ = tfcompress.datasets.load_digits()
    x, y = x[:512], y[:512]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        teacher, student = mlp(32, "teacher"), mlp(16, "student")
        distiller = tfcompress.distillation.Distiller(
            teacher, student,
            keras.distillation.LogitsDistillation(
                3.0, loss=keras.losses.KLDivergence()),
            student_loss_weight=0.5)
        distiller.compile(
            keras.optimizers.SGD(0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    # Learning rate 0: the reported loss is the formula at the scheduled
    # values, computed on the two replicas' halves of each batch.
    scheduler = DistillationScheduler(
        temperature=LinearSchedule(4.0, 1.0, 2),
        student_loss_weight=LinearSchedule(0.2, 0.8, 2))
    history = distiller.fit(x, y, epochs=3, batch_size=128, shuffle=False,
                            verbose=0, callbacks=[scheduler])
    print("replicas", strategy.num_replicas_in_sync)
    s, t = student.predict(x, verbose=0), teacher.predict(x, verbose=0)
    for epoch in range(3):
        temperature = history.history["temperature"][epoch]
        weight = history.history["student_loss_weight"][epoch]
        expected = np.mean([
            float(tfcompress.distillation.distillation_loss(
                y[i:i + 128], s[i:i + 128], t[i:i + 128], temperature,
                1 - weight)) for i in range(0, 512, 128)])
        print("epoch", temperature, weight, history.history["loss"][epoch],
              history.history["total_loss"][epoch], expected)
    distiller.optimizer.learning_rate.assign(0.05)
    pruning = MagnitudePruning(ConstantSparsity(0.5, 0, frequency=4))
    cached = tfcompress.distillation.cache_teacher_outputs(teacher, x)
    distiller.fit(cached, y, epochs=2, batch_size=64, verbose=0,
                  callbacks=[pruning, DistillationScheduler(
                      temperature=LinearSchedule(3.0, 1.0, 8),
                      update_freq="step")])
    for k in sparsity_report(student).kernels:
        print("kernel", k.path, k.size, k.zeros)
    same = all(np.array_equal(a, w.numpy())
               for a, w in zip(teacher_before, teacher.weights))
    print("teacher_unchanged", same)
    """
)


def test_mirrored_strategy_over_two_cpus(tmp_path):
    lines = run_on_two_cpus(MIRRORED_SCRIPT, tmp_path)
    assert "replicas 2" in lines
    epochs = [line.split()[1:] for line in lines if line.startswith("epoch")]
    assert [(float(t), float(w)) for t, w, _, _, _ in epochs] == [
        (4.0, 0.2), (2.5, 0.5), (1.0, 0.8)
    ]
    for _, _, loss, total_loss, expected in epochs:
        np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
        # Keras's Distiller logs its own trackers (total_loss, student_loss,
        # distillation_loss) as computed in a replica: Keras Loss objects
        # divide by the number of replicas there. Only `loss` is unscaled.
        np.testing.assert_allclose(float(total_loss), float(expected) / 2,
                                   rtol=1e-5)
    kernels = [line.split() for line in lines if line.startswith("kernel")]
    assert [k[1] for k in kernels] == ["hidden", "logits"]
    for _, path, size, zeros in kernels:
        assert int(zeros) == pruned_count(int(size), np.float32(0.5)), path
    assert "teacher_unchanged True" in lines


def test_keras_distiller_freezes_the_values_of_its_first_trace(digits):
    # Why the variables: Keras's Distiller reads Python floats, so changing
    # them after the first step changes nothing until the step is retraced.
    x, y, _, _ = digits
    x, y = x[:64], y[:64]
    teacher, student = mlp(32, "teacher"), mlp(8, "student")
    losses = {}
    for cls in (keras.distillation.Distiller, Distiller):
        distiller = cls(teacher, student, logits_loss(4.0),
                        student_loss_weight=0.5)
        distiller.compile(keras.optimizers.SGD(0.0), loss=LOSS)
        first = distiller.fit(x, y, batch_size=64, verbose=0)
        distiller.student_loss_weight = 0.9
        if cls is Distiller:
            distiller.temperature = 1.0
        else:
            distiller.distillation_losses[0].temperature = 1.0
        second = distiller.fit(x, y, batch_size=64, verbose=0)
        losses[cls] = first.history["loss"][0], second.history["loss"][0]
    stock_first, stock_second = losses[keras.distillation.Distiller]
    assert stock_second == stock_first
    ours_first, ours_second = losses[Distiller]
    np.testing.assert_allclose(ours_first, stock_first, rtol=1e-6)
    np.testing.assert_allclose(
        ours_second,
        float(distillation_loss(y, student(x), teacher(x), 1.0, 0.1)),
        rtol=1e-5,
    )


def test_quantized_student_distills_and_exports_to_int8(digits, teacher,
                                                         tmp_path):
    # Quantized distillation (Polino et al. 2018): the student trains with
    # int8 rounding in the loop while it learns from the teacher, then its
    # file computes what it computed.
    x, y, x_test, y_test = digits
    keras.utils.set_random_seed(2)
    student = mlp(32, "student")
    qat_student, report = quantize_model(student, data=x[:256])
    assert report.quantized == ("hidden", "logits")
    distiller = make_distiller(teacher, qat_student, student_loss_weight=0.3)
    teacher_weights = arrays(teacher)
    distiller.fit(x, y, epochs=6, batch_size=64, verbose=0,
                  callbacks=[QuantizationAwareTraining(quantize_delay=10)])
    assert_bit_identical(teacher_weights, teacher)
    assert float(qat_student.get_layer("hidden_quant").range_max.numpy()) > 0
    export = to_tflite(qat_student, tmp_path / "student.tflite",
                       quantization="int8")
    assert verify(qat_student, export.path, x_test).top1_agreement >= 0.99
    assert accuracy(qat_student, x_test, y_test) > 0.85
