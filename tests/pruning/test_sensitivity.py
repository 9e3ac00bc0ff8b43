import json

import keras
import numpy as np
import pytest

from tfcompress.analysis import profile
from tfcompress.pruning.channels import prune_channels
from tfcompress.pruning.sensitivity import sensitivity_analysis


@pytest.fixture(scope="module")
def trained(digits):
    """A small conv classifier trained for two epochs on digits."""
    x_train, y_train, _, _ = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", name="c1"),
            keras.layers.BatchNormalization(name="bn1"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(16, 3, strides=2, name="c2"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, name="out"),
        ],
        name="digits_cnn",
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0)
    return model


def accuracy(model, x, y):
    outputs = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.mean(np.argmax(outputs, axis=-1) == y))


def test_accuracy_and_macs_per_layer_and_sparsity(trained, digits, capsys):
    _, _, x_test, y_test = digits
    report = sensitivity_analysis(
        trained,
        data=(x_test, y_test),
        sparsities=(0.0, 0.5, 0.75),
        batch_size=100,
    )
    baseline = accuracy(trained, x_test, y_test)
    assert report.baseline_accuracy == pytest.approx(baseline)
    assert report.baseline_macs == profile(trained).macs
    # One row per prunable layer (the output layer is not one), one value
    # per sparsity.
    assert [row.name for row in report.rows] == ["c1", "c2"]
    for row in report.rows:
        assert len(row.accuracies) == len(row.macs) == 3
        assert row.accuracies[0] == pytest.approx(baseline)
        assert row.macs[0] == report.baseline_macs
        assert row.macs[0] > row.macs[1] > row.macs[2]
    assert report.row("c1").channels_after == (16, 8, 4)

    # A value of the table is what pruning that layer alone gives.
    pruned, pruning_report = prune_channels(
        trained, sparsity={"c2": 0.5}, verbose=0
    )
    assert report.row("c2").accuracies[1] == pytest.approx(
        accuracy(pruned, x_test, y_test)
    )
    assert report.row("c2").macs[1] == pruning_report.macs_after

    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2
    assert printed[0].startswith("[1/2] c1 (16 channels): 0%:")


def test_table_dict_and_plot(trained, digits, tmp_path):
    _, _, x_test, y_test = digits
    one_hot = np.eye(10)[y_test]
    report = sensitivity_analysis(
        trained,
        data=(x_test, one_hot),
        sparsities=(0.25, 0.5),
        filters=["c2"],
        verbose=False,
    )
    lines = report.table().splitlines()
    header = next(line for line in lines if line.startswith("Layer"))
    assert header.split() == ["Layer", "Channels", "25%", "50%"]
    row_line = next(line for line in lines if line.startswith("c2 "))
    assert len(row_line.split()) == 2 + 2 * 2  # name, channels, 2 cells
    assert f"{report.row('c2').accuracies[0]:.3f}" in row_line
    assert str(report) == report.table()

    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["sparsities"] == [0.25, 0.5]
    assert as_dict["rows"][0]["name"] == "c2"
    assert as_dict["rows"][0]["channels_after"] == [12, 8]

    path = report.plot(tmp_path / "sensitivity.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5000


def test_mobilenet_groups_are_rows(digits):
    from tfcompress.models import small_mobilenet_v2

    _, _, x_test, y_test = digits
    model = small_mobilenet_v2((8, 8, 1), 10)
    report = sensitivity_analysis(
        model,
        data=(x_test[:50], y_test[:50]),
        sparsities=(0.5,),
        filters="block1",
        verbose=False,
    )
    # block1's output is tied to its input ("separable") by the residual.
    assert [(row.name, row.tied_to) for row in report.rows] == [
        ("separable", ("block1/project",)),
        ("block1/expand", ()),
    ]
    # Pruning block1's hidden channels alone keeps its 16 outputs.
    assert report.row("block1/expand").channels_after == (32,)
    assert "separable (+ block1/project)" in report.table()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsities": ()}, r"`sparsities` must be a non-empty sequence"),
        ({"sparsities": (0.5, 1.0)}, r"Received: sparsities=\(0.5, 1.0\)"),
        ({"sparsities": 0.5}, r"`sparsities` must be"),
        ({"batch_size": 0}, r"`batch_size` must be an integer >= 1"),
        ({"data": (np.zeros((4, 8, 8, 1)), np.zeros(3))}, r"same, non-zero number of examples"),
        ({"data": np.zeros((4, 8, 8, 1))}, r"`data` must be a tuple \(x, y\) of arrays or a tf.data.Dataset"),
        ({"filters": "nope"}, r"`filters` matched no layer that prune_channels can handle: 'nope'"),
        ({"importance": "l0"}, r"`importance` must be one of"),
    ],
)
def test_invalid_arguments_are_explained(trained, digits, kwargs, message):
    _, _, x_test, y_test = digits
    kwargs = {"data": (x_test, y_test), "verbose": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        sensitivity_analysis(trained, **kwargs)


def test_a_dataset_of_batches_gives_the_same_results(trained, digits):
    import tensorflow as tf

    _, _, x_test, y_test = digits
    arrays = sensitivity_analysis(
        trained, data=(x_test, y_test), sparsities=(0.5,), verbose=False
    )
    dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)
    batches = sensitivity_analysis(
        trained, data=dataset, sparsities=(0.5,), verbose=False
    )
    assert batches.baseline_accuracy == pytest.approx(arrays.baseline_accuracy)
    for row, expected in zip(batches.rows, arrays.rows):
        assert row.name == expected.name
        assert row.accuracies == pytest.approx(expected.accuracies)
        assert row.macs == expected.macs
