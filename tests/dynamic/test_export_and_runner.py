import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tfcompress.dynamic import EarlyExitRunner
from tfcompress.dynamic import calibrate_exits
from tfcompress.dynamic import export_stages
from tfcompress.dynamic import measure_peak_memory
from tfcompress.dynamic.runner import confidence
from tfcompress.litert import inspect_tflite

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.fixture(scope="module")
def policy(trained, digits):
    return calibrate_exits(trained[1], (digits[2], digits[3]),
                           max_accuracy_drop=0.02)


@pytest.fixture(scope="module")
def int8_export(trained, digits, tmp_path_factory):
    directory = tmp_path_factory.mktemp("int8")
    return export_stages(trained[1], str(directory), quantization="int8",
                         data=digits[0], calibration_steps=50)


def _by_hand(paths, thresholds, x, atol=1e-5):
    """The stages run one by one with the plain interpreter, per example.
    `atol`: how far a stage's confidence may be from the softmax of its
    logits (int8 files output it in steps of 1/256)."""
    interpreters = [Interpreter(model_path=p) for p in paths]
    runners = [i.get_signature_runner() for i in interpreters]
    logits_out, exits_out = [], []
    for example in x:
        features = example[None]
        for index, runner in enumerate(runners):
            (name,) = runner.get_input_details()
            outputs = runner(**{name: features})
            logits = outputs["logits"]
            last = index == len(runners) - 1
            if not last:
                # The stage's own confidence is the max softmax of its
                # logits (float32 in the graph, float64 here).
                np.testing.assert_allclose(
                    outputs["confidence"], confidence(logits), atol=atol
                )
            if last or outputs["confidence"][0] >= thresholds[index]:
                logits_out.append(logits[0])
                exits_out.append(index)
                break
            features = outputs["features"]
    return np.array(logits_out), np.array(exits_out)


def test_float_stages_match_keras_and_runner_matches_stages_by_hand(
    trained, digits, policy, tmp_path
):
    _, with_exits, _, _ = trained
    x = digits[2][:60]
    export = export_stages(with_exits, str(tmp_path), single_file=False)
    assert export.single_file is None
    runner = EarlyExitRunner(export.paths, policy.thresholds)
    logits, exits = runner.predict(x, batch_size=16)
    by_hand_logits, by_hand_exits = _by_hand(
        export.paths, policy.thresholds, x
    )
    np.testing.assert_array_equal(exits, by_hand_exits)
    np.testing.assert_allclose(logits, by_hand_logits, atol=1e-6)
    # Float LiteRT computes what Keras computes, exit by exit.
    keras_outputs = with_exits.predict(x, verbose=0)
    expected = np.stack(keras_outputs)[exits, np.arange(len(x))]
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    # Staged loading, and one example at a time, give the same answers.
    staged = EarlyExitRunner(export.paths, policy.thresholds, staged=True)
    staged_logits, staged_exits = staged.predict(x, batch_size=16)
    np.testing.assert_array_equal(staged_exits, exits)
    np.testing.assert_allclose(staged_logits, logits, atol=1e-6)
    for runs in (runner, staged):
        ones = [runs.predict_one(example[None]) for example in x[:20]]
        np.testing.assert_array_equal([e for _, e in ones], exits[:20])
        np.testing.assert_allclose(
            np.stack([v for v, _ in ones]), logits[:20], atol=1e-6
        )


def test_stages_fuse_at_the_kept_exits(trained, digits, tmp_path):
    _, with_exits, _, _ = trained
    x = digits[2][:60]
    export = export_stages(with_exits, str(tmp_path), exits=[1],
                           single_file=True)
    assert export.exits == (1,) and len(export.paths) == 2
    # Exit 0's head is in no stage: the first stage runs both convolutions.
    first = inspect_tflite(export.paths[0])
    assert sum(op.name == "CONV_2D" for op in first.ops) == 2
    assert sum(op.name == "FULLY_CONNECTED" for op in first.ops) == 1
    keras_outputs = with_exits.predict(x, verbose=0)
    for source in (export.paths, export.single_file):
        runner = EarlyExitRunner(source, [0.9])
        logits, exits = runner.predict(x, batch_size=16)
        assert set(exits) <= {0, 1}
        expected = np.stack(keras_outputs[1:])[exits, np.arange(len(x))]
        np.testing.assert_allclose(logits, expected, atol=1e-4)
        one_logits, one_exit = runner.predict_one(x[5:6])
        assert one_exit == exits[5]
        np.testing.assert_allclose(one_logits, logits[5], atol=1e-6)
    with pytest.raises(ValueError, match=r"exits=\[2\]"):
        export_stages(with_exits, str(tmp_path), exits=[2])


def test_int8_files_are_integer_and_one_file_has_a_signature_per_stage(
    int8_export, policy, digits
):
    assert [row.integer_ops for row in int8_export.rows] == [1.0] * 3
    for path in [*int8_export.paths, int8_export.single_file]:
        inspection = inspect_tflite(path)
        weighted = [op for op in inspection.ops if op.name in WEIGHTED]
        assert weighted
        for op in weighted:
            assert op.inputs[0].dtype == "int8", (path, op.name)
            assert op.inputs[1].dtype == "int8", (path, op.name)
    signatures = Interpreter(
        model_path=int8_export.single_file
    ).get_signature_list()
    with_exit = {"inputs": ["features"],
                 "outputs": ["confidence", "features", "logits"]}
    assert signatures == {
        "stage_0": with_exit,
        "stage_1": with_exit,
        "stage_2": {"inputs": ["features"], "outputs": ["logits"]},
    }
    x = digits[2][:60]
    runner = EarlyExitRunner(int8_export.paths, policy.thresholds)
    logits, exits = runner.predict(x, batch_size=16)
    by_hand_logits, by_hand_exits = _by_hand(
        int8_export.paths, policy.thresholds, x, atol=2 / 256
    )
    np.testing.assert_array_equal(exits, by_hand_exits)
    np.testing.assert_allclose(logits, by_hand_logits, atol=1e-6)
    # The single file's signatures were calibrated on the same examples.
    single = EarlyExitRunner(int8_export.single_file, policy.thresholds)
    single_logits, single_exits = single.predict(x, batch_size=16)
    assert np.mean(single_exits == exits) >= 0.95
    assert np.mean(single_logits.argmax(-1) == logits.argmax(-1)) >= 0.95


def test_peak_memory_is_measured_per_mode(int8_export, policy, digits):
    report = measure_peak_memory(
        {
            "whole": (int8_export.single_file, False),
            "staged": (int8_export.paths, True),
        },
        digits[2][:10], policy.thresholds,
    )
    assert [row.name for row in report.rows] == ["whole", "staged"]
    for row in report.rows:
        assert row.reset and row.examples == 10
        assert row.peak_bytes > row.baseline_bytes > 0


def test_runner_refuses_bad_arguments(int8_export):
    with pytest.raises(ValueError, match="one threshold per exit"):
        EarlyExitRunner(int8_export.paths, [0.5])
    with pytest.raises(ValueError, match="per-stage files"):
        EarlyExitRunner(int8_export.single_file, [0.5, 0.5], staged=True)
    with pytest.raises(ValueError, match="calibration images"):
        export_stages(None, "unused", quantization="int8")
    runner = EarlyExitRunner(int8_export.paths, [0.5, 0.5])
    with pytest.raises(ValueError, match="batch dimension of 1"):
        runner.predict_one(np.zeros((8, 8, 1), np.float32))
