"""The default model's builder: its model card reads scores from bench tables, installs swap whole folders, and
an incomplete package is refused by name (the packaged model itself: test_predict, built on first use)."""

from __future__ import annotations

import json

import pytest

from keras_music.default_model import cv_summary, install


def test_cv_summary_reads_the_family_row_of_a_bench_table(tmp_path):
    table = {"setup": {"folds": 5, "seeds": [0, 1]}, "rows": [
        {"model": "prior (constant)", "key": "prior", "runs": 5, "accuracy": 0.25},
        {"model": "musicnn_head (default)", "key": "musicnn_head", "runs": 10, "accuracy": 0.7412,
         "accuracy_std": 0.031, "macro_f1": 0.74, "macro_roc_auc": 0.91, "arousal_roc_auc": None}]}
    path = tmp_path / "cv.json"
    path.write_text(json.dumps(table))
    line = cv_summary(path)
    assert "musicnn_head (default)" in line and "accuracy 0.741 ± 0.031" in line and "10 runs" in line
    assert "arousal n/a" in line
    with pytest.raises(ValueError, match="no cnn_lstm row"):
        cv_summary(path, "cnn_lstm")
    path.write_text("not json")
    with pytest.raises(ValueError, match="not a bench.emotion result"):
        cv_summary(path)


def test_install_swaps_in_a_whole_folder(tmp_path):
    built, out = tmp_path / "built", tmp_path / "emotion_4q"
    (built / "1").mkdir(parents=True)
    (built / "1" / "saved_model.pb").write_text("new")
    (out / "1").mkdir(parents=True)
    (out / "1" / "saved_model.pb").write_text("old")
    install(built, out)
    assert (out / "1" / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "emotion_4q"]  # no .new / .old left


def test_an_incomplete_package_names_what_it_lacks(tmp_path):
    from keras_music.default_model import installed

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="lacks report.json, thresholds.json, head.weights.h5"):
        installed(tmp_path)
