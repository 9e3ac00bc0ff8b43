"""Weight clustering: centroids, the transform, the callback, and
cluster-preserving QAT (CQAT, PCQAT) read back from the int8 file."""

import keras
import numpy as np
import pytest

import tfcompress
from tfcompress.callbacks import MagnitudePruning
from tfcompress.callbacks import QuantizationAwareTraining
from tfcompress.callbacks import WeightClustering
from tfcompress.clustering import KernelClusters
from tfcompress.clustering import cluster_weights
from tfcompress.clustering import initial_centroids
from tfcompress.clustering import is_clustered
from tfcompress.clustering import strip
from tfcompress.litert import kernels
from tfcompress.litert import tflite_weights
from tfcompress.pruning import ConstantSparsity
from tfcompress.quantization import quantize_model

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    x, y, _, _ = digits
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.DepthwiseConv2D(3, name="depthwise"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile("adam", LOSS, metrics=["accuracy"])
    model.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0)
    return model


def _values(model, name):
    for layer in model.layers:
        if layer.name == name:
            return keras.ops.convert_to_numpy(layer.kernel)
    raise KeyError(name)


def _per_channel_unique(values, axis):
    return max(
        len(np.unique(np.take(values, i, axis=axis)))
        for i in range(values.shape[axis])
    )


def test_initial_centroids_by_hand():
    values = np.array([0.0, 0.1, 0.2, 0.9, 1.0, 5.0, 5.2])
    np.testing.assert_allclose(
        initial_centroids(values, 3, "linear"), [0.0, 2.6, 5.2]
    )
    # Density: the quantiles at 1/6, 3/6, 5/6 of the weights.
    np.testing.assert_allclose(
        initial_centroids(values, 3, "density"),
        np.quantile(values, [1 / 6, 0.5, 5 / 6]),
    )
    # k-means++ then Lloyd: the three groups' means.
    np.testing.assert_allclose(
        initial_centroids(values, 3, "kmeans++"), [0.1, 0.95, 5.1]
    )
    # Fewer distinct values than clusters: they are the centroids.
    np.testing.assert_array_equal(
        initial_centroids(np.array([1.0, 1.0, 2.0]), 4), [1.0, 2.0]
    )


@pytest.mark.parametrize("method", ["kmeans++", "linear", "density"])
def test_cluster_weights_leaves_number_of_clusters_values(trained, method):
    clustered, report = cluster_weights(
        trained, number_of_clusters=8, centroid_initialization=method
    )
    for row in report.rows:
        assert row.unique_values == 8, row
    assert report.clustered == ("conv", "depthwise", "logits")
    # A copy: the input model is untouched.
    assert len(np.unique(_values(trained, "logits"))) == 128 * 10
    # Each entry moved to a centroid near it (k-means++: the least error).
    error = np.abs(_values(clustered, "logits") - _values(trained, "logits"))
    spread = np.ptp(_values(trained, "logits"))
    assert error.max() < spread / 2


def test_per_channel_clusters_each_output_channel(trained):
    clustered, report = cluster_weights(
        trained, number_of_clusters=4, per_channel=True
    )
    logits = _values(clustered, "logits")
    assert _per_channel_unique(logits, axis=1) == 4
    assert len(np.unique(logits)) == 40
    assert report.row("logits").max_unique_per_channel == 4
    # Depthwise: (3, 3, 8, 1) -> 8 channels of 9 entries.
    assert report.row("depthwise").unique_values <= 8 * 4


def test_callback_trains_centroids_and_keeps_number_of_clusters(
    trained, digits
):
    x, y, _, _ = digits
    model, _ = cluster_weights(trained, number_of_clusters=8)
    before = _values(model, "logits")
    model.compile("adam", LOSS)
    callback = WeightClustering(number_of_clusters=8)
    model.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
              callbacks=[callback])
    after = _values(model, "logits")
    assert len(np.unique(after)) == 8
    # The centroids trained; entries keep their cluster (ranked by value)
    # but for a few near a boundary.
    assert not np.allclose(np.unique(before), np.unique(after))
    _, old_ids = np.unique(before, return_inverse=True)
    _, new_ids = np.unique(after, return_inverse=True)
    assert np.mean(old_ids == new_ids) > 0.9
    assert not is_clustered(model.layers[-1].kernel)  # Released.
    plain, report = strip(model)
    assert [row.unique_values for row in report.rows] == [8, 8, 8]


def test_entries_move_to_the_nearest_trained_centroid():
    layer = keras.layers.Dense(1, use_bias=False)
    layer.build((None, 4))
    layer.kernel.assign([[0.0], [0.1], [0.9], [1.0]])
    clusters = KernelClusters(layer.kernel, 2, "linear",
                              preserve_sparsity=False)
    assert clusters.initialize() == 2  # Centroids 0 and 1.
    clusters.attach()
    # An SGD step moves the second entry (shared value 0) by +0.45; its
    # own float weight goes 0.1 -> 0.55, nearer 1 than 0: it joins the
    # upper cluster, whose centroid becomes (0.55 + 0.9 + 1.0) / 3.
    gradient = np.array([[0.0], [-1.0], [0.0], [0.0]], dtype="float32")
    keras.optimizers.SGD(0.45).apply([gradient], [layer.kernel])
    values = keras.ops.convert_to_numpy(layer.kernel).ravel()
    np.testing.assert_allclose(values, [0.0, 0.8166667, 0.8166667, 0.8166667],
                               rtol=1e-6)
    clusters.release()


def test_kernel_clusters_keeps_zeros_as_their_own_cluster():
    layer = keras.layers.Dense(4, use_bias=False)
    layer.build((None, 16))
    kernel = np.random.default_rng(0).normal(size=(16, 4))
    kernel[::2] = 0.0
    layer.kernel.assign(kernel)
    clusters = KernelClusters(layer.kernel, 4, "linear")
    assert clusters.initialize() == 4  # 0 and three shared values.
    clusters.attach()
    keras.optimizers.SGD(0.1).apply([keras.ops.ones((16, 4))], [layer.kernel])
    values = keras.ops.convert_to_numpy(layer.kernel)
    np.testing.assert_array_equal(values == 0, kernel == 0)
    assert len(np.unique(values)) == 4
    centroids = clusters.centroids()
    assert centroids.shape == (1, 4) and np.isnan(centroids).sum() == 1


def _file_kernel_stats(path):
    """`{op: (distinct integers per channel, zeros, distinct per kernel,
    number of scales)}` of the file's int8 kernels."""
    rows = {}
    for weight in kernels(tflite_weights(path)):
        assert weight.dtype == "int8"
        values, axis = weight.values, weight.quantization.axis
        per_kernel = len(np.unique(values))
        rows[weight.kernel_of] = (
            per_kernel if axis is None else _per_channel_unique(values, axis),
            float(np.mean(values == 0)),
            per_kernel,
            weight.quantization.num_scales,
        )
    return rows


@pytest.mark.parametrize("per_channel_weights", [True, False])
def test_cqat_keeps_clusters_in_the_int8_file(
    trained, digits, tmp_path, per_channel_weights
):
    x, y, _, _ = digits
    clustered, _ = cluster_weights(trained, number_of_clusters=8)
    qat_model, report = quantize_model(
        clustered, data=x[:64], per_channel_weights=per_channel_weights
    )
    assert report.per_channel_weights is per_channel_weights
    qat_model.compile("adam", LOSS)
    qat_model.fit(
        x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
        callbacks=[QuantizationAwareTraining(), WeightClustering(8)],
    )
    assert len(np.unique(_values(qat_model, "logits"))) == 8
    export = tfcompress.to_tflite(
        qat_model, tmp_path / "cqat.tflite", quantization="int8",
        verbose=False,
    )
    assert export.precision.is_integer
    stats = _file_kernel_stats(export)
    assert set(stats) == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    for op, (per_channel, _, per_kernel, scales) in stats.items():
        # Each output channel stores at most 8 integers; with one scale per
        # kernel, so does the whole kernel (per-channel scales turn one
        # shared value into a different integer in each channel).
        assert per_channel <= 8, op
        assert (scales > 1) is per_channel_weights, (op, scales)
        if not per_channel_weights:
            assert per_kernel <= 8, (op, per_kernel)
    if per_channel_weights:
        assert max(row[2] for row in stats.values()) > 8, stats
    parity = tfcompress.export.verify(qat_model, export, x[:256])
    assert parity.top1_agreement >= 0.99, str(parity)


def test_pcqat_keeps_zeros_and_clusters_in_the_int8_file(
    trained, digits, tmp_path
):
    x, y, _, _ = digits
    pruned = keras.models.clone_model(trained)
    pruned.set_weights(trained.get_weights())
    pruned.compile("adam", LOSS)
    pruned.fit(
        x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
        callbacks=[MagnitudePruning(ConstantSparsity(0.8, 0),
                                    filters="logits")],
    )
    clustered, report = cluster_weights(pruned, number_of_clusters=8)
    assert report.row("logits").unique_values == 8
    assert report.row("logits").sparsity == pytest.approx(0.8)
    qat_model, _ = quantize_model(clustered, data=x[:64])
    qat_model.compile("adam", LOSS)
    qat_model.fit(
        x[:512], y[:512], epochs=1, batch_size=64, verbose=0,
        callbacks=[QuantizationAwareTraining(), WeightClustering(8)],
    )
    export = tfcompress.to_tflite(
        qat_model, tmp_path / "pcqat.tflite", quantization="int8",
        verbose=False,
    )
    unique, zeros, _, _ = _file_kernel_stats(export)["FULLY_CONNECTED"]
    assert unique <= 8 and zeros == pytest.approx(0.8)
    figures = export.value_compression
    assert figures.huffman_bytes < figures.weight_bytes


def test_a_clustered_model_saves_and_loads(trained, tmp_path):
    clustered, _ = cluster_weights(trained, number_of_clusters=4)
    clustered.save(tmp_path / "c.keras")
    loaded = keras.models.load_model(tmp_path / "c.keras", safe_mode=True)
    np.testing.assert_array_equal(
        _values(loaded, "logits"), _values(clustered, "logits")
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"number_of_clusters": 1}, "number_of_clusters"),
        ({"number_of_clusters": 300}, "number_of_clusters"),
        ({"centroid_initialization": "random"}, "centroid_initialization"),
        ({"per_channel": "yes"}, "per_channel"),
        ({"filters": "no_such_layer"}, "no_such_layer"),
    ],
)
def test_bad_arguments_raise(trained, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cluster_weights(trained, **kwargs)
