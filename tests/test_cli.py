"""`keras-music`: one command over every `python -m` tool."""

from __future__ import annotations

import importlib
import shutil
import subprocess

import pytest

from keras_music.cli import COMMANDS, main


def test_help_lists_every_command_with_its_line(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name, (_, summary) in COMMANDS.items():
        assert f"  {name}" in text and summary in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_a_module_with_main(name):
    module_name = COMMANDS[name][0]
    spec = importlib.util.find_spec(module_name)
    assert spec is not None, f"{name}: no module {module_name}"
    source = spec.loader.get_source(module_name)
    assert "def main(argv=None)" in source and '__name__ == "__main__"' in source, module_name


def test_a_command_runs_the_modules_main(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["predict", "--help"])
    assert stopped.value.code == 0 and "--chunk-seconds" in capsys.readouterr().out
    assert main(["predict", "/nonexistent/song.mp3"]) == 1
    assert "no such file or folder: /nonexistent/song.mp3" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error(capsys):
    assert main(["pred"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'pred'" in err and "did you mean predict" in err


@pytest.mark.skipif(shutil.which("keras-music") is None, reason="keras-music is not on PATH (package not installed)")
def test_the_installed_console_script():
    result = subprocess.run(["keras-music", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "predict" in result.stdout
    version = subprocess.run(["keras-music", "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip().startswith("keras_music ")
