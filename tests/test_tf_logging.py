"""TensorFlow's C++ start-up lines: filtered by TF_CPP_MIN_LOG_LEVEL, everything else kept."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_music.tf_logging import ABSL_BANNER, filter_startup_lines

REPO = Path(__file__).resolve().parents[1]
INFO = "I0000 00:00:1796159262.785838   19320 port.cc:153] oneDNN custom operations are on.\n"
WARN = "W0000 00:00:1796159262.786890   19320 gpu.cc:31] a warning\n"
ERROR = "E0000 00:00:1796159176.812400   19124 op_kernel.cc:1839] an error worth reading\n"
PYTHON = "/x/y.py:3: UserWarning: numpy says something\n"
# Error lines that are no error of the user's (a CPU machine; a CPU without AVX-512): hidden below level 0.
CUINIT = ("E0000 00:00:1796652451.413845   20834 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          "Failed call to cuInit: UNKNOWN ERROR (303)\n")
ONEDNN = ("E0000 00:00:1796653005.972815     611 util.cc:131] oneDNN supports DT_HALF only on platforms with AVX-512. "
          "Falling back to the default Eigen-based implementation if present.\n")
STARTUP = ABSL_BANNER + "\n" + INFO + WARN + CUINIT + PYTHON + ERROR + ONEDNN


def env_without_level() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("level, kept", [
    (0, [ABSL_BANNER + "\n", INFO, WARN, CUINIT, PYTHON, ERROR, ONEDNN]),
    (1, [WARN, PYTHON, ERROR]),
    (2, [PYTHON, ERROR]),
    (3, [PYTHON]),
])
def test_filter_follows_tf_cpp_min_log_level(level, kept):
    assert filter_startup_lines(STARTUP, level) == "".join(kept)


def test_capture_passes_python_output_and_errors_through_in_order(tmp_path):
    # A module that writes to file descriptor 2 from "C" (os.write) and from Python while it loads.
    (tmp_path / "noisy.py").write_text(
        "import os, sys\n"
        f"os.write(2, {(ABSL_BANNER + chr(10) + INFO).encode()!r})\n"
        "print('python line', file=sys.stderr)\n"
        f"os.write(2, {ERROR.encode()!r})\n")
    code = ("import sys\nfrom keras_music.tf_logging import import_filtered\n"
            "print('before', file=sys.stderr)\nimport_filtered('noisy')\nprint('after', file=sys.stderr)\n")
    env = {**env_without_level(), "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "before\npython line\n" + ERROR + "after\n"


@pytest.mark.parametrize("level", ["2", "0"])
def test_lines_printed_after_start_up_are_filtered_inside_filtered_stderr(level):
    """cuInit's and oneDNN's error lines come at device start and at the first graph run, not at import:
    `filtered_stderr` drops them there (what Tagger's first serve_audio call runs in), keeps a real error
    and Python output in order, and shows everything at TF_CPP_MIN_LOG_LEVEL=0."""
    code = ("import os, sys\nfrom keras_music.tf_logging import filtered_stderr\n"
            "print('before', file=sys.stderr)\nwith filtered_stderr():\n"
            f"    os.write(2, {CUINIT.encode()!r})\n    print('python line', file=sys.stderr)\n"
            f"    os.write(2, {(ONEDNN + ERROR).encode()!r})\n"
            "print('after', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], env={**env_without_level(), "TF_CPP_MIN_LOG_LEVEL": level},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    shown = CUINIT + "python line\n" + ONEDNN + ERROR if level == "0" else "python line\n" + ERROR
    assert result.stderr == "before\n" + shown + "after\n"


def test_import_tensorflow_starts_the_devices_without_the_cuinit_line():
    """On a machine without a GPU driver the CUDA platform's start printed `E0000 ... failed call to cuInit` at
    the first op; import_tensorflow starts it inside its capture (physical devices only: settings stay possible)."""
    code = ("import sys\nfrom keras_music.tf_logging import import_tensorflow\nimport_tensorflow()\n"
            "import tensorflow as tf\ntf.config.set_visible_devices(tf.config.list_physical_devices('CPU'))\n"
            "print(float(tf.reduce_sum(tf.ones(3))), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], env={**env_without_level(), "TF_CPP_MIN_LOG_LEVEL": "2"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "3.0\n"


def test_train_help_shows_no_tensorflow_startup_lines():
    raw = subprocess.run([sys.executable, "-c", "import tensorflow"], env={**env_without_level(), "TF_CPP_MIN_LOG_LEVEL": "2"},
                         capture_output=True, text=True, timeout=120)
    if ABSL_BANNER not in raw.stderr:
        pytest.skip("this TensorFlow writes no absl lines before InitializeLog: nothing to filter")
    result = subprocess.run([sys.executable, "-m", "keras_music.train", "--help"], env=env_without_level(),
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m keras_music.train")
    assert result.stderr == "", f"train --help wrote to stderr:\n{result.stderr}"


@pytest.mark.parametrize("level, expected", [
    ("2", "WARNING:tensorflow:a warning\n"),
    ("0", "INFO:tensorflow:assets written\nWARNING:tensorflow:a warning\n"),
])
def test_tensorflow_python_lines_print_once_after_the_command_configures_logging(level, expected):
    # What every command does: import_tensorflow, then logging.basicConfig at INFO (export's
    # "Assets written to" came out twice, through TensorFlow's handler and the root logger's).
    code = ("import logging, sys\nfrom keras_music.tf_logging import import_tensorflow\nimport_tensorflow()\n"
            "logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stderr)\n"
            "import tensorflow as tf\ntf.get_logger().info('assets written')\ntf.get_logger().warning('a warning')\n"
            "logging.getLogger('keras_music.x').info('ours')\n")
    result = subprocess.run([sys.executable, "-c", code], env={**env_without_level(), "TF_CPP_MIN_LOG_LEVEL": level},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines(keepends=True)
             if any(text in line for text in ("assets written", "a warning", "ours"))]
    assert "".join(lines) == expected + "ours\n"


def test_musicnn_weights_error_is_the_only_line_on_stderr(tmp_path):
    """The weights command loads TensorFlow to read a checkpoint; a bad folder gets its one error line,
    without TensorFlow's INFO/WARNING start-up lines (ERROR-level absl lines would still show)."""
    result = subprocess.run([sys.executable, "-m", "keras_music.musicnn_weights", "--checkpoint", str(tmp_path)],
                            env=env_without_level(), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert ABSL_BANNER not in lines and not [line for line in lines if line[:1] in "IW" and line[1:5] == "0000"]
    assert [line for line in lines if line.startswith("error: ")] == [
        f"error: {tmp_path}: not a musicnn checkpoint folder: it has no `.index` file (musicnn 0.1.0 saved each "
        "model as `<folder>/.index` + `<folder>/.data-00000-of-00001`, e.g. the wheel's musicnn/MSD_musicnn/)."]
    assert "RuntimeWarning" not in result.stderr  # (running a models/ module as __main__ imported it twice)


def test_mistyped_paths_answer_before_tensorflow_starts(tmp_path):
    """extract/evaluate/export/predict check the paths they were given first: a typo is one error
    line naming the path (two for predict's folder without audio), and TensorFlow (~6 s) never starts."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here\n")
    typo, store, kept = tmp_path / "typo", tmp_path / "store", tmp_path / "earlier-store"
    kept.mkdir()
    (kept / "manifest.jsonl").write_text("{}\n")  # what `--force` would delete: not on a typo
    cases = [
        ("extract", [str(typo), "--out", str(store)], f"error: Audio folder {str(typo)!r} does not exist"),
        ("extract", [str(empty), "--out", str(kept), "--force"], f"error: No audio files in {str(empty)!r} or below"),
        ("extract", [str(empty), "--out", str(store), "--recipe", "nope"], "error: --recipe 'nope': neither a named"),
        ("extract", [str(typo), "--out", str(store), "--runner", "DirectRunner"],
         f"error: Audio folder {str(typo)!r} does not exist"),
        ("evaluate", ["--model", str(typo), "--data", "demo"],
         f"error: {str(typo / 'model.keras')!r} does not exist; --model must be a run folder"),
        ("export", ["--model", str(empty), "--base-dir", str(tmp_path / "served")],
         f"error: {str(empty / 'model.keras')!r} does not exist; --model must be a run folder"),
        ("predict", [str(empty)], f"error: {empty}: No audio files in {str(empty)!r} or below"),
        ("predict", [str(empty / "notes.txt"), "--model", str(typo)],
         f"error: --model {str(typo)!r}: no saved_model.pb there and no version folders"),
    ]
    if importlib.util.find_spec("apache_beam"):  # the `beam` extra; CI installs it
        cases.append(("beam.tag", [str(typo), "--out", str(tmp_path / "tags")],
                      f"error: no such file or folder: {typo}"))
    for cli, argv, expected in cases:
        code = (f"import sys\nfrom keras_music.{cli} import main\nrc = main({argv!r})\n"
                "print(rc, 'tensorflow' in sys.modules)")
        result = subprocess.run([sys.executable, "-c", code], env=env_without_level(), capture_output=True,
                                text=True, timeout=120, cwd=REPO)
        assert result.stdout.split() == ["1", "False"], (cli, argv, result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert result.stderr.startswith(expected) and all(line.startswith("error: ") for line in lines), lines
        assert len(lines) == (2 if "No audio" in expected and cli == "predict" else 1), lines  # + "no audio file to tag"
    assert not store.exists() and not (tmp_path / "served").exists() and (kept / "manifest.jsonl").is_file()
