"""bench.progress_log: the finished runs of a table survive a kill, in a file whose format
resumes tables started by earlier versions (bench/results/parts/*.progress.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.progress_log import ProgressLog, differing_keys, progress_path

SETTINGS = {"data": "mer4q", "folds": 2, "seeds": [0], "models": ["prior", "tag_mlp"], "set": None}
# Two lines as bench.emotion wrote them before this module existed (the settings, one finished run).
EARLIER = (
    '{"data": "mer4q", "folds": 2, "seeds": [0], "models": ["prior", "tag_mlp"], "set": null}\n'
    '{"row": "tag_mlp (default)", "repeat": 0, "fold": 1, "fold_seed": 0, "seed": 0, "seconds": 3364.120080094, '
    '"epochs": 41, "accuracy": 0.5974025974025974, "macro_f1": 0.5831424245416543, "constant_predictions": []}\n')


def run(fold: int, seed, accuracy: float) -> dict:
    return {"repeat": 0, "fold": fold, "fold_seed": 0, "seed": seed, "seconds": 1.5, "accuracy": accuracy}


def test_the_progress_file_sits_beside_the_table():
    out = progress_path(Path("bench/results/parts/emotion-mer4q-5fold-prior.json"))
    assert out.as_posix() == "bench/results/parts/emotion-mer4q-5fold-prior.progress.jsonl"


def test_finished_runs_are_found_again_after_a_kill(tmp_path):
    path = tmp_path / "t.progress.jsonl"
    log = ProgressLog(path, SETTINGS, "bench.emotion")
    assert log.done == {} and json.loads(path.read_text()) == SETTINGS  # the settings line comes first
    log.add("prior (constant)", run(0, None, 0.25))
    log.add("tag_mlp (default)", run(0, 0, 0.5))
    with path.open("a") as file:
        file.write('{"row": "tag_mlp (default)", "repeat": 0, "fo')  # a line cut short by the kill

    again = ProgressLog(path, SETTINGS, "bench.emotion")  # the same command, run again
    assert again.get("prior (constant)", 0, 0, None) == run(0, None, 0.25)  # without its row name
    assert again.get("tag_mlp (default)", 0, 0, 0) == run(0, 0, 0.5)
    assert again.get("tag_mlp (default)", 0, 0, 1) is None and again.get("tag_mlp (default)", 0, 1, 0) is None
    assert len(path.read_text().splitlines()) == 3  # the cut-short line is gone: that run runs again


def test_a_file_of_an_earlier_version_resumes_unchanged(tmp_path):
    path = tmp_path / "t.progress.jsonl"
    path.write_text(EARLIER)
    log = ProgressLog(path, SETTINGS, "bench.emotion")
    assert log.get("tag_mlp (default)", 0, 1, 0)["seconds"] == 3364.120080094
    assert path.read_text() == EARLIER  # rewritten byte for byte


def test_other_settings_or_another_file_are_refused_and_kept(tmp_path):
    path = tmp_path / "t.progress.jsonl"
    path.write_text(EARLIER)
    with pytest.raises(ValueError, match=r"other settings \(models \['prior', 'tag_mlp'\] there, \['prior'\] now\)"):
        ProgressLog(path, {**SETTINGS, "models": ["prior"]}, "bench.emotion")
    assert path.read_text() == EARLIER
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="not a progress file of bench.emotion"):
        ProgressLog(path, SETTINGS, "bench.emotion")


def test_a_fit_trains_in_the_work_folder_which_goes_with_the_file(tmp_path):
    path = tmp_path / "t.progress.jsonl"
    stale = tmp_path / "t.work" / "left-by-a-deleted-file"
    stale.mkdir(parents=True)
    log = ProgressLog(path, SETTINGS, "bench.emotion")
    assert not stale.exists()  # a new file starts with an empty work folder
    fit = log.fit_dir("cnn_lstm (default, spec_augment=0.1)", 1, 3, 0)
    assert fit == tmp_path / "t.work" / "cnn_lstm-default-spec_augment-0-1-r1-f3-s0"
    fit.mkdir(parents=True)
    assert ProgressLog(path, SETTINGS, "bench.emotion").fit_dir("x", 0, 0, None).parent.exists()  # kept on resume
    log.remove()
    assert not path.exists() and not (tmp_path / "t.work").exists()


def test_differing_keys_counts_a_missing_key_as_none():
    assert differing_keys({"a": 1, "b": None}, {"a": 2, "c": 3}) == ["a", "c"]
    assert differing_keys({"a": [0, 1]}, {"a": [0, 1], "b": None}) == []
