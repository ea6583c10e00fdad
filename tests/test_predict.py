"""Tag audio files with an exported model: windows, aggregation, formats, bad files skipped and reported."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_music.audio import wav_bytes
from keras_music.export import export_run
from keras_music.predict import window_bounds

REPO = Path(__file__).resolve().parents[1]


def predict(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "keras_music.predict", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def export(emotion_run, tmp_path_factory):
    return export_run(emotion_run, "tagger", tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize("seconds, window, hop, expected", [
    (5.0, 30, 30, [(0, 5)]),                       # shorter than a window: the whole file
    (70.0, 30, 30, [(0, 30), (30, 60), (60, 70)]),  # the rest (10 s) becomes a last, shorter window
    (60.5, 30, 30, [(0, 30), (30, 60)]),            # a 0.5 s rest is dropped
    (50.0, 30, 10, [(0, 30), (10, 40), (20, 50)]),
])
def test_window_bounds(seconds, window, hop, expected):
    rate = 100
    bounds = window_bounds(int(seconds * rate), rate, window, hop)
    assert [(s / rate, e / rate) for s, e in bounds] == expected


@pytest.mark.slow
def test_predict_folder_tags_every_readable_file_and_reports_the_rest(export, audio_dir, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(audio_dir, folder)
    (folder / "notes.mp3").write_text("not audio at all\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "empty.wav").write_bytes(b"")
    result = predict(folder, "--model", export.parent)
    assert result.returncode == 1  # some files failed
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    good = sorted(p.name for p in audio_dir.iterdir() if p.suffix in (".wav", ".mp3", ".flac", ".ogg"))
    assert sorted(Path(r["file"]).name for r in rows) == good
    tags = json.loads((export / "assets" / "metadata.json").read_text())["labels"]
    for row in rows:
        assert all(0.0 <= float(row[t]) <= 1.0 for t in tags) and float(row["seconds"]) > 5
    assert "skipped" in result.stderr and "notes.mp3" in result.stderr and "empty.wav: " in result.stderr
    assert "empty file (0 bytes)" in result.stderr and "Traceback" not in result.stderr
    assert f"Tagged {len(good)} file(s)" in result.stderr


@pytest.mark.slow
def test_long_file_per_window_json_and_file_output(export, tmp_path):
    rate = 22050
    t = np.arange(int(47 * rate)) / rate
    long_file = tmp_path / "long.wav"
    long_file.write_bytes(wav_bytes(0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(t)), rate))
    out = tmp_path / "tags.json"
    result = predict(long_file, "--model", export, "--window", "20", "--hop", "10", "--format", "json",
                     "--per-window", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""
    (entry,) = json.loads(out.read_text())
    assert [(w["start"], w["end"]) for w in entry["windows"]] == [(0, 20), (10, 30), (20, 40), (30, 47)]
    labels = list(entry["probabilities"])
    window_logits = np.array([[np.log(w["probabilities"][t] / (1 - w["probabilities"][t])) for t in labels]
                              for w in entry["windows"]])
    expected = 1 / (1 + np.exp(-window_logits.mean(axis=0)))
    np.testing.assert_allclose([entry["probabilities"][t] for t in labels], expected, atol=1e-4)
    thresholds = json.loads((export / "assets" / "metadata.json").read_text())["thresholds"]
    assert entry["tags"] == [t for t in labels if entry["probabilities"][t] >= thresholds[t]]


@pytest.mark.slow
def test_bad_model_folder_is_one_line_error(tmp_path):
    result = predict(tmp_path, "--model", tmp_path / "nothing")
    assert result.returncode == 1 and "no saved_model.pb there" in result.stderr and "Traceback" not in result.stderr
