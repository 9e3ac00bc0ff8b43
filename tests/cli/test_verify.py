"""`tfcompress verify`: Keras against LiteRT on the same examples."""

import json

from tests.cli.conftest import run_cli


def test_float32_file_matches(cli_files, capsys):
    code, stdout, _ = run_cli(
        capsys, "verify", cli_files["model"], cli_files["float32"],
        "--data", cli_files["x"], "--json",
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["num_examples"] == 24
    assert result["top1_agreement"] == 1.0
    assert result["relative_error"] < 1e-5


def test_thresholds_decide_the_exit_code(cli_files, capsys):
    args = ["verify", cli_files["model"], cli_files["int8"], "--data",
            cli_files["x"]]
    code, stdout, _ = run_cli(capsys, *args, "--max-relative-error", "0.1")
    assert code == 0
    assert "relative_error" in stdout
    # An int8 file is not exact: a zero tolerance fails, exit code 1.
    code, stdout, _ = run_cli(
        capsys, *args, "--max-relative-error", "0", "--json"
    )
    assert code == 1
    result = json.loads(stdout)
    assert result["passed"] is False
    assert 0 < result["relative_error"] < 0.1


def test_verify_bad_inputs(tmp_path, cli_files, capsys):
    model, x = cli_files["model"], cli_files["x"]
    for args, message in [
        ([model, cli_files["int8"], "--data", cli_files["wrong_shape"]],
         "--data: examples of shape (5,)"),
        ([model, model, "--data", x], "expected a .tflite file"),
        ([model, cli_files["int8"], "--data", tmp_path / "none.npy"],
         "--data: no such file"),
        ([cli_files["x"], cli_files["int8"], "--data", x],
         "expected a .keras file"),
    ]:
        code, stdout, err = run_cli(capsys, "verify", *args)
        assert code == 2, err
        assert message in err and stdout == ""
