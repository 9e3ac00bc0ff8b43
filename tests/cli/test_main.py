import json

import keras
import pytest

from tfcompress.cli import main
from tfcompress.models import small_mobilenet_v2

COMMANDS = (
    "demo", "profile", "inspect", "export", "verify", "bench", "prune",
    "decompose", "quantize", "compress",
)


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    assert "Exit codes: 0 success, 1 failure" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_json_and_verbose(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out and "--verbose" in out


def test_missing_required_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "model.keras"])
    assert exit_info.value.code == 2
    assert "--sparsity" in capsys.readouterr().err


def test_demo_help_explains_each_option(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for option in ("--epochs", "--output-dir", "--threads", "--runs", "--seed"):
        assert option in out


def test_bad_option_values_are_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["profile", "m.keras", "--input-shape", "32,x"])
    assert "comma-separated positive integers" in capsys.readouterr().err


def test_profile_prints_the_table(tmp_path, capsys):
    path = tmp_path / "model.keras"
    small_mobilenet_v2((8, 8, 1), num_classes=10).save(path)
    assert main(["profile", str(path)]) == 0
    out = capsys.readouterr().out
    params = keras.saving.load_model(path).count_params()
    assert f"{params:,}" in out
    assert "block2" in out
    assert main(["profile", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == params


def test_profile_missing_file(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "nope.keras")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_profile_unreadable_file(tmp_path, capsys):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip archive")
    assert main(["profile", str(path)]) == 2
    assert "could not load" in capsys.readouterr().err
