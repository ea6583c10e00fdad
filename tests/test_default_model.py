"""The default model's builder: its model card reads scores from bench tables, installs swap whole folders, and
an incomplete package is refused by name (the packaged model itself: test_predict, built on first use)."""

from __future__ import annotations

import json

import pytest

from keras_music.default_model import (
    WEIGHTS,
    bench_row,
    cv_summary,
    install,
    packaged_config,
    robust_training_text,
    robustness_summary,
)
from keras_music.models.musicnn_head import MusicnnHeadConfig


def test_cv_summary_reads_the_packaged_configs_row_of_a_bench_table(tmp_path):
    both = 'musicnn_head (default, weights="MSD_musicnn+MTT_musicnn")'
    assert bench_row(MusicnnHeadConfig()) == "musicnn_head (default)"
    assert bench_row(MusicnnHeadConfig(weights=WEIGHTS)) == both
    assert bench_row(packaged_config()).startswith(both[:-1] + ", ")  # the packaged model's row: more fields
    table = {"setup": {"folds": 5, "seeds": [0, 1]}, "rows": [
        {"model": "prior (constant)", "key": "prior", "runs": 5, "accuracy": 0.25},
        {"model": "musicnn_head (default)", "key": "musicnn_head", "runs": 10, "accuracy": 0.7},
        {"model": both, "key": "musicnn_head", "runs": 10, "accuracy": 0.7412,
         "accuracy_std": 0.031, "macro_f1": 0.74, "macro_roc_auc": 0.91, "arousal_roc_auc": None}]}
    path = tmp_path / "cv.json"
    path.write_text(json.dumps(table))
    line = cv_summary(path, both)
    assert both in line and "accuracy 0.741 ± 0.031" in line and "10 runs" in line
    assert "arousal n/a" in line
    assert "accuracy 0.700 ± 0.000" in cv_summary(path, "musicnn_head (default)")
    with pytest.raises(ValueError, match="no row 'cnn_lstm \\(default\\)'"):
        cv_summary(path, "cnn_lstm (default)")
    with pytest.raises(ValueError, match="no row 'musicnn_head \\(default, weights="):
        cv_summary(path)  # the packaged config's row is not in this table
    path.write_text("not json")
    with pytest.raises(ValueError, match="not a bench.emotion result"):
        cv_summary(path)


def test_the_card_states_the_robustness_run_of_the_packaged_config_and_refuses_another(tmp_path):
    config = packaged_config()
    changes = {f: getattr(config, f) for f in ("level_normalization", "spectral_augment")}
    score = {"mean": 0.7, "std": 0.01, "n": 10}
    result = {"meta": "5 of 5 artist folds x seeds 0 1", "changes": changes,
              "rows": [{"name": "quieter", "what": "-20 dB", "scores": {"accuracy": score, "arousal_roc_auc": score,
                                                                      "valence_roc_auc": None}}],
              "reliability": {"ece": 0.04, "brier": 0.12, "bins": [
                  {"low": 0.0, "high": 0.1, "count": 900, "probability": 0.03, "positive_rate": 0.05}]}}
    path = tmp_path / "robustness.json"
    path.write_text(json.dumps(result))
    text = robustness_summary(path, config)
    assert "| quieter | -20 dB | 0.700 ± 0.010 | 0.700 ± 0.010 | n/a |" in text
    assert "expected calibration error 0.040" in text and "| 0.0-0.1 | 900 | 0.030 | 0.050 |" in text
    assert "one level" in robust_training_text(config) and robust_training_text(MusicnnHeadConfig()) == ""
    path.write_text(json.dumps({**result, "changes": {}}))
    with pytest.raises(ValueError, match="a run of musicnn_head with no changes, not the packaged config's"):
        robustness_summary(path, config)
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a bench.robustness result"):
        robustness_summary(path, config)


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
    from keras_music.tagging.presets import installed

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="lacks report.json, thresholds.json, head.weights.h5"):
        installed("emotion_4q", packaged=tmp_path)
    with pytest.raises(ValueError, match="name='emotion_5q': no such preset; the presets are emotion_4q"):
        installed("emotion_5q")


def test_what_ships_names_its_data_without_the_build_machines_folders(tmp_path, monkeypatch):
    from pathlib import Path

    from keras_music.default_model import make_portable

    (tmp_path / "shared" / "mer4q").mkdir(parents=True)
    (tmp_path / "shared" / "mer4q" / "labels.csv").write_text("clip_id,quadrant\n")
    monkeypatch.chdir(tmp_path / "shared")
    store, labels = tmp_path / "stores" / "mer4q-musicnn", Path("mer4q/labels.csv")  # --labels given relative
    shipped = tmp_path / "shipped"
    (shipped / "run").mkdir(parents=True)
    (shipped / "MODEL_CARD.md").write_text(f"thresholds: best F1 on 114 validation clips of {store}.\n")
    # As training writes them: the data as given, the labels resolved.
    for name in ("config.json", "report.json"):
        (shipped / "run" / name).write_text(json.dumps({"data": str(store), "labels": str(labels.resolve())}))
    (shipped / "run" / "thresholds.json").write_text(json.dumps({"source": f"clips of {store}"}))
    make_portable(shipped, [store, labels])
    texts = [path.read_text() for path in shipped.rglob("*") if path.is_file()]
    assert not any(str(tmp_path) in text for text in texts)
    config = json.loads((shipped / "run" / "config.json").read_text())
    assert config == {"data": "stores/mer4q-musicnn", "labels": "mer4q/labels.csv"}
    assert "validation clips of stores/mer4q-musicnn." in (shipped / "MODEL_CARD.md").read_text()

    (shipped / "run" / "config.json").write_text(json.dumps({"data": "/elsewhere/store", "labels": None}))
    with pytest.raises(ValueError, match="would ship this machine's folders: data '/elsewhere/store'"):
        make_portable(shipped, [store, labels])
