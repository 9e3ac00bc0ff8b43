import keras
import numpy as np
import pytest

from tests.dynamic.conftest import flat_dense_head
from tfcompress.analysis import profile
from tfcompress.dynamic import attach_exits
from tfcompress.dynamic import split_stages
from tfcompress.dynamic import stage_macs
from tfcompress.dynamic import train_exits


def test_exits_attach_in_layer_order_and_stages_compute_the_model(
    trained, digits
):
    model, with_exits, _, _ = trained
    x = digits[2][:16]
    assert [o.shape[-1] for o in with_exits.outputs] == [10, 10, 10]
    names = [layer.name for layer in with_exits.layers]
    assert names.index("exit_0") < names.index("exit_1")
    stages = split_stages(with_exits)
    assert [s.name for s in stages] == ["stage_0", "stage_1", "stage_2"]
    exit_0, exit_1, final = with_exits.predict(x, verbose=0)
    features, logits_0 = stages[0](x)
    features, logits_1 = stages[1](features)
    logits = stages[2](features)
    np.testing.assert_allclose(logits_0, exit_0, atol=1e-5)
    np.testing.assert_allclose(logits_1, exit_1, atol=1e-5)
    np.testing.assert_allclose(logits, final, atol=1e-5)
    # The stages' MACs add up to the model's: nothing counted twice.
    assert sum(stage_macs(with_exits)) == profile(with_exits).macs


def test_report_counts_macs_to_each_exit(trained):
    model, with_exits, _, _ = trained
    _, report = attach_exits(model, at=["conv1", "conv2"],
                             head=flat_dense_head)
    per_stage = stage_macs(with_exits)
    assert [row.layer for row in report.rows] == ["conv1", "conv2"]
    assert [row.macs_to_exit for row in report.rows] == [
        per_stage[0], per_stage[0] + per_stage[1]
    ]
    assert report.backbone_macs == profile(model).macs
    heads = sum(row.head_macs for row in report.rows)
    # Flatten + Dense: 8x8x8 and 8x8x16 features to 10 logits.
    assert [row.head_macs for row in report.rows] == [
        8 * 8 * 8 * 10, 8 * 8 * 16 * 10
    ]
    assert report.total_macs == report.backbone_macs + heads


def test_heads_only_training_learns_exits_and_keeps_the_model(
    trained, digits
):
    model, with_exits, report, before = trained
    x_test = digits[2]
    # The backbone and final head did not move.
    np.testing.assert_allclose(
        model.predict(x_test, verbose=0), before, atol=1e-6
    )
    # The exit at conv2 learned (10 classes: chance is 0.1).
    assert report.row("exit_1").accuracy > 0.5
    assert len(report.losses) == 3 and report.losses[-1] < report.losses[0]


def test_joint_training_moves_the_backbone(trained, digits):
    model, _, _, _ = trained
    x_train, y_train = digits[0][:128], digits[1][:128]
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    with_exits, _ = attach_exits(copy, at=["conv1"])
    stem = copy.get_layer("conv1").get_weights()[0].copy()
    _, report = train_exits(
        with_exits, x_train, y_train, mode="joint", epochs=1, batch_size=64
    )
    assert report.mode == "joint"
    assert not np.allclose(copy.get_layer("conv1").get_weights()[0], stem)


def test_keras_round_trip_keeps_the_exits(trained, tmp_path, digits):
    _, with_exits, _, _ = trained
    path = str(tmp_path / "exits.keras")
    with_exits.save(path)
    loaded = keras.saving.load_model(path)
    assert len(split_stages(loaded)) == 3
    x = digits[2][:8]
    for a, b in zip(with_exits.predict(x, verbose=0),
                    loaded.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_cuts_are_refused(trained):
    model, _, _, _ = trained
    with pytest.raises(ValueError, match="does not have.*'nope'"):
        attach_exits(model, at=["nope"])
    with pytest.raises(ValueError, match="output layer"):
        attach_exits(model, at=["logits"])
    with pytest.raises(ValueError, match="non-empty list"):
        attach_exits(model, at=[])
    with pytest.raises(ValueError, match="mode"):
        train_exits(None, [], [], mode="all")
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    skip = keras.layers.Add()([keras.layers.Dense(4, name="branch")(hidden),
                               inputs])
    residual = keras.Model(inputs, keras.layers.Dense(3)(skip))
    # Cutting after "branch" leaves the Add reading the input: not a stage.
    with pytest.raises(ValueError, match="cannot be cut after 'branch'"):
        attach_exits(residual, at=["branch"])
