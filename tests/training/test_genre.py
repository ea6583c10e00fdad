"""End to end: training beats chance on the demo table; the CLIs run on tiny inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_music.config import TrainingConfig
from keras_music.models.genre_mlp import GenreMLPConfig
from keras_music.data.genre import load_genre_csv, split_by_song
from keras_music.evaluate import evaluate_genre
from keras_music.training import train_genre


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_training_on_demo_table_beats_chance_and_writes_the_run(tmp_path):
    out = tmp_path / "run"
    report = train_genre("demo", out, GenreMLPConfig(hidden_units=(64,)), TrainingConfig(epochs=15, seed=0),
                         verbose=0)
    chance = 1 / 11
    assert report["accuracy"] > 4 * chance, report["accuracy"]
    assert report["macro_f1"] > 3 * chance
    for name in ("model.keras", "config.json", "history.csv", "history.png", "report.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp*")), "temporary files left behind"
    assert json.loads((out / "report.json").read_text())["accuracy"] == report["accuracy"]

    # The saved run re-scores the same test split to the same numbers.
    frame = load_genre_csv_from_demo()
    test = frame.iloc[split_by_song(frame, 0, 0.1, 0.1).test]
    test_csv = tmp_path / "test.csv"
    to_raw_csv(test, test_csv)
    again = evaluate_genre(out, test_csv)
    assert again["n"] == report["n"]
    assert again["accuracy"] == pytest.approx(report["accuracy"])
    np.testing.assert_allclose(again["log_loss"], report["log_loss"], rtol=1e-5)


def load_genre_csv_from_demo():
    from keras_music.data.demo import make_genre_table
    from keras_music.data.genre import validate_genre_frame

    return validate_genre_frame(make_genre_table(), 11, source="demo")


def to_raw_csv(clean, path):
    """Write cleaned rows back with the Kaggle header (durations stay in ms)."""
    from keras_music.data.genre import GENRE_COLUMNS

    clean.rename(columns={v: k for k, v in GENRE_COLUMNS.items()}).to_csv(path, index=False)


@pytest.mark.slow
def test_cli_train_then_evaluate_json(tmp_path, demo_csv):
    out = tmp_path / "run"
    trained = run_cli("keras_music.train", "--task", "genre", "--data", str(demo_csv), "--features", "seed",
                      "--epochs", "3", "--seed", "1", "--out", str(out), "--no-export")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "accuracy=" in trained.stdout and "confusion matrix" in trained.stdout
    assert (out / "model.keras").is_file()

    scored = run_cli("keras_music.evaluate", "--model", str(out), "--data", str(demo_csv), "--json")
    assert scored.returncode == 0, scored.stderr[-2000:]
    report = json.loads(scored.stdout)  # the whole of stdout is one JSON object
    assert {"accuracy", "macro_f1", "log_loss", "n"} <= set(report)
    assert report["n"] == len(load_genre_csv(demo_csv))

    text = run_cli("keras_music.evaluate", "--model", str(out), "--data", str(demo_csv))
    assert text.returncode == 0 and "macro_f1=" in text.stdout


@pytest.mark.parametrize("module", ["keras_music.train", "keras_music.evaluate"])
def test_help_shows_a_real_example(module):
    result = run_cli(module, "--help")
    assert result.returncode == 0
    assert f"python -m {module} --" in result.stdout or f"python -m {module}\n" in result.stdout


def test_bad_inputs_give_one_line_errors(tmp_path, demo_csv, capsys):
    """In-process `main(argv)` (what `python -m` runs): an exception escaping it would be a traceback."""
    from keras_music.evaluate import main as evaluate
    from keras_music.train import main as train

    assert train(["--task", "genre", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r")]) == 1
    assert "absent.csv" in capsys.readouterr().err

    broken = tmp_path / "broken.csv"
    broken.write_text(demo_csv.read_text().replace("Class", "Genre", 1))
    assert train(["--task", "genre", "--data", str(broken), "--out", str(tmp_path / "r")]) == 1
    assert "missing column(s) ['Class']" in capsys.readouterr().err

    assert evaluate(["--model", str(tmp_path), "--data", str(demo_csv)]) == 1
    assert "model.keras" in capsys.readouterr().err

    with pytest.raises(SystemExit) as usage:
        train(["--features", "everything"])
    assert usage.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_same_seed_same_numbers_on_cpu(tmp_path):
    config, training = GenreMLPConfig(hidden_units=(32,)), TrainingConfig(epochs=4, seed=3)
    first = train_genre("demo", tmp_path / "a", config, training, verbose=0)
    second = train_genre("demo", tmp_path / "b", config, training, verbose=0)
    assert first["log_loss"] == second["log_loss"]
    assert first["confusion_matrix"] == second["confusion_matrix"]
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()
