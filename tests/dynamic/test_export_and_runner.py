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


def _by_hand(paths, thresholds, x):
    """The stages run one by one with the plain interpreter, per example."""
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
            if last or confidence(logits)[0] >= thresholds[index]:
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
    # Staged loading gives the same answers.
    staged = EarlyExitRunner(export.paths, policy.thresholds, staged=True)
    staged_logits, staged_exits = staged.predict(x, batch_size=16)
    np.testing.assert_array_equal(staged_exits, exits)
    np.testing.assert_allclose(staged_logits, logits, atol=1e-6)


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
    assert signatures == {
        "stage_0": {"inputs": ["features"], "outputs": ["features", "logits"]},
        "stage_1": {"inputs": ["features"], "outputs": ["features", "logits"]},
        "stage_2": {"inputs": ["features"], "outputs": ["logits"]},
    }
    x = digits[2][:60]
    runner = EarlyExitRunner(int8_export.paths, policy.thresholds)
    logits, exits = runner.predict(x, batch_size=16)
    by_hand_logits, by_hand_exits = _by_hand(
        int8_export.paths, policy.thresholds, x
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
