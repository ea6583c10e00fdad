"""Hostile inputs, one table: each bad input gets a one-line error naming what is wrong; no raw traceback.

The audio cases run `keras_music.extract` as a process; the others call the CLIs' `main(argv)`
in this process (what `python -m` runs, without paying TensorFlow's start-up per case): an
exception escaping `main` would be a raw traceback, and fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def python(*args):
    return [sys.executable, "-m", *map(str, args)]


def cli(module: str, *args) -> tuple[str, list[str]]:
    """(module, argv) of an in-process CLI call."""
    return module, [str(a) for a in args]


def bad_audio_folder(tmp: Path) -> Path:
    """One folder holding a good WAV and every kind of bad audio file, as a user's music folder might."""
    folder = tmp / "audio"
    folder.mkdir()
    shutil.copy(SHARED / "audio" / "mozart_k545_bright_22k_mono_16bit.wav", folder / "good.wav")
    (folder / "cut.mp3").write_bytes(MP3.read_bytes()[:5000])
    (folder / "third.mp3").write_bytes(MP3.read_bytes()[: len(MP3.read_bytes()) // 3])  # kept: 6.6 of 20 s
    opus_file(folder / "tone.opus")  # kept
    zero_sample_wav(folder / "zero.wav")
    (folder / "empty.flac").write_bytes(b"")
    (folder / "notes.mp3").write_text("la la la\n")
    shutil.copy(SHARED / "audio" / "mozart_k545_bright_22k_mono_16bit.wav", folder / os.fsdecode(b"caf\xe9.wav"))
    return folder


def opus_file(path: Path) -> None:
    import soundfile

    t = np.arange(2 * 48000) / 48000
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype("float32"), 48000, format="OGG", subtype="OPUS")


def zero_sample_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(22050)


def npz_folder(tmp: Path, bad) -> list[str]:
    folder = tmp / "clips"
    (folder / "features").mkdir(parents=True)
    rows = []
    for i in range(40):
        mel, mfcc = np.zeros((20, 64), "float32"), np.zeros((20, 20), "float32")
        if i == 3:
            bad(mel)
        np.savez(folder / "features" / f"c{i}.npz", mel=mel, mfcc=mfcc)
        rows.append(f"c{i},Q{1 + i % 4}")
    (folder / "labels.csv").write_text("clip_id,quadrant\n" + "\n".join(rows) + "\n")
    return cli("keras_music.train", "--data", folder, "--epochs", "1", "--out", tmp / "run", "--no-export")


def cal500_with_inf(tmp: Path) -> list[str]:
    folder = tmp / "cal500"
    folder.mkdir()
    os.symlink(SHARED / "datasets" / "cal500" / "labels", folder / "labels")
    lines = (SHARED / "datasets" / "cal500" / "mulan_features.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[3] = "inf"
    lines[5] = ",".join(cells)
    (folder / "mulan_features.csv").write_text("\n".join(lines) + "\n")
    return cli("keras_music.train", "--data", folder, "--model", "mlp", "--epochs", "1", "--out", tmp / "run",
               "--no-export")


def store_with_labels(tmp: Path, store: Path, text: str) -> list[str]:
    (tmp / "labels.csv").write_text(text)
    return cli("keras_music.train", "--data", store, "--labels", tmp / "labels.csv", "--epochs", "1",
               "--out", tmp / "run", "--no-export")


MP3 = SHARED / "audio" / "mozart_k545_bright_44k_stereo_128k.mp3"
AUDIO_CASES = {  # all in one folder, one extract run: each is reported and skipped, the good file is kept
    "truncated MP3 (first 5,000 bytes; the first third of one is kept)": "cut.mp3: truncated: only 0.24 s decode",
    "WAV header with 0 samples": "zero.wav: decodes to zero samples",
    "0-byte file": "empty.flac: empty file (0 bytes)",
    "text file named .mp3": "notes.mp3: cannot decode as audio; the file may be truncated, corrupt or not audio "
                            "(decoder: libsndfile: unrecognised format or unreadable data)",
    "non-UTF-8 file name": "the file name is not valid UTF-8",
}
CASES = {
    "NaN in a feature sequence": (lambda tmp, fx: npz_folder(tmp, lambda mel: mel.__setitem__((4, 7), np.nan)),
                                  "c3.npz: mel contains NaN or infinite values"),
    "inf in CAL500's aggregated features": (lambda tmp, fx: cal500_with_inf(tmp), "not a finite number"),
    "labels file without clip_id column": (
        lambda tmp, fx: store_with_labels(tmp, fx["store"], "song,happy\nx,1\n"), "missing column 'clip_id'"),
    "song names that match no features": (
        lambda tmp, fx: store_with_labels(tmp, fx["store"], "clip_id,happy\nnot_a_clip,1\nanother,0\n"),
        "no clip has both features and labels"),
    "--data path that does not exist": (
        lambda tmp, fx: cli("keras_music.train", "--data", tmp / "nowhere", "--out", tmp / "run", "--no-export"),
        "does not exist"),
    "export to a version that exists": (
        lambda tmp, fx: (export_once(fx["run"], tmp),
                         cli("keras_music.export", "--model", fx["run"], "--base-dir", tmp, "--version", "1"))[1],
        "already exists; versions are never overwritten"),
}


def export_once(run: Path, base: Path) -> None:
    from keras_music.export import export_run

    export_run(run, None, base, version=1)


@pytest.fixture
def fixtures(small_emotion_store, emotion_run):
    return {"store": small_emotion_store, "run": emotion_run}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input(case, fixtures, tmp_path, capsys):
    import importlib

    make, expected = CASES[case]
    module, argv = make(tmp_path, fixtures)
    code = importlib.import_module(module).main(argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 1, output[-2000:]
    assert expected in output and "Traceback" not in output


@pytest.mark.slow
def test_hostile_audio_files_are_each_skipped_with_their_reason(tmp_path):
    folder = bad_audio_folder(tmp_path)
    result = subprocess.run(python("keras_music.extract", folder, "--out", tmp_path / "store", "--workers", "1"),
                            capture_output=True, text=True, timeout=600, cwd=REPO, errors="backslashreplace")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "8 audio files: 3 extracted" in output and "5 failed" in output  # good, partial MP3 and Opus kept
    assert "third.mp3: shorter than its header says: keeping the 6." in output
    skipped = [line.strip() for line in output.splitlines() if "skipped:" in line]
    for case, expected in AUDIO_CASES.items():
        line = next((line for line in skipped if expected in line), None)
        assert line is not None, f"{case}: {expected!r} not in {skipped}"

