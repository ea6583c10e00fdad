"""bench.genre on a small synthetic table with the Kaggle header: the single split and K folds by song."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.genre import evaluation_splits, main
from keras_music.data.genre import load_genre_csv, song_keys


def test_folds_by_song_test_every_row_once_and_keep_songs_whole(demo_csv):
    frame = load_genre_csv(demo_csv)
    splits = evaluation_splits(frame, 3, split_seed=0)
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested) == list(range(len(frame)))  # every row tested exactly once
    keys = song_keys(frame).to_numpy()
    for s in splits:
        parts = [set(keys[rows]) for rows in (s.train, s.validation, s.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    [one] = evaluation_splits(frame, 1, split_seed=0)
    assert len(one.test) < len(frame) / 5


def test_folds_mode_reports_mean_and_spread_over_folds(demo_csv, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["--data", str(demo_csv), "--folds", "3", "--seeds", "0", "1", "--models", "majority", "hgb",
                 "leaky", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["setup"]["folds"] == 3 and "3-fold cross-validation by song" in result["meta"]
    names = [(r["features"], r["model"]) for r in result["rows"]]
    assert names == [("seed", "majority class"), ("seed", "HistGradientBoosting"), ("full", "majority class"),
                     ("full", "HistGradientBoosting"),
                     ("seed", "HistGradientBoosting + raw duration (LEAKY: unit reveals class)")]
    hgb = result["rows"][1]
    assert hgb["runs"] == 6 and {(r["fold"], r["seed"]) for r in hgb["per_run"]} == {(f, s) for f in range(3)
                                                                                       for s in (0, 1)}
    assert hgb["accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in hgb["per_run"]]))
    assert result["rows"][0]["runs"] == 3 and result["rows"][0]["seeds"] == []  # no randomness: once per fold
    assert "| seed | HistGradientBoosting |" in (tmp_path / "g.md").read_text()
    with pytest.raises(SystemExit):
        main(["--folds", "0"])
    assert "--folds must be 1" in capsys.readouterr().err


@pytest.mark.slow
def test_set_changes_the_mlp_row_on_the_same_folds(demo_csv, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["--data", str(demo_csv), "--folds", "2", "--seeds", "0", "--models", "mlp", "--features", "seed",
                 "--set", "heads=3", "ensemble_size=1", "hidden_units=[8]", "epochs=2", "--out", str(out)]) == 0
    [row] = json.loads(out.read_text())["rows"]
    assert row["model"] == "keras_music MLP (3 heads in one network) hidden_units=[8], epochs=2"
    assert row["runs"] == 2 and all(r["epochs"] == [2] for r in row["per_run"])
    assert "--set heads=3 ensemble_size=1 hidden_units=[8] epochs=2" in json.loads(out.read_text())["meta"]
    assert main(["--data", str(demo_csv), "--set", "hedas=3"]) == 1
    assert "--set hedas: not a field of the genre MLP" in capsys.readouterr().err


def test_compare_pairs_rows_fold_by_fold_against_gradient_boosting(demo_csv, tmp_path, capsys):
    base, other = tmp_path / "base.json", tmp_path / "other.json"
    assert main(["--data", str(demo_csv), "--folds", "3", "--seeds", "0", "1", "--models", "hgb", "logistic",
                 "--features", "seed", "--out", str(base)]) == 0
    assert main(["--data", str(demo_csv), "--folds", "3", "--split-seed", "1", "--seeds", "0", "--models", "hgb",
                 "--features", "seed", "--out", str(other)]) == 0
    out = tmp_path / "cmp.json"
    assert main(["--compare", str(base), str(base), "--out", str(out)]) == 0
    table = json.loads(out.read_text())["table"]
    [row] = [line for line in table.splitlines() if "| logistic regression |" in line]
    rows = {r["model"]: r for r in json.loads(base.read_text())["rows"]}
    diffs = [np.mean([r["accuracy"] for r in rows["logistic regression"]["per_run"] if r["fold"] == f]) -
             np.mean([r["accuracy"] for r in rows["HistGradientBoosting"]["per_run"] if r["fold"] == f])
             for f in range(3)]
    assert f"| {np.mean(diffs):+.3f} ({min(diffs):+.3f}..{max(diffs):+.3f}) | {sum(d > 0 for d in diffs)} of 3 |" in row
    assert "| HistGradientBoosting | HistGradientBoosting |" not in table  # the baseline is not compared to itself
    with pytest.raises(ValueError, match="not measured on the same folds"):
        main(["--compare", str(base), str(other), "--out", str(out)])
