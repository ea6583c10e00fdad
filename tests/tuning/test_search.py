"""KerasTuner search: spaces, hypermodels on the real builders, the CLI, resume, distributed search."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import keras_tuner as kt
import pytest

from keras_music.config import TrainingConfig
from keras_music.hparams import SearchSpaceError, configs_from_hparams, load_space
from keras_music.models.registry import REGISTRY
from tuning.hypermodels import declare

GENRE = REGISTRY["genre_mlp"]

REPO = Path(__file__).resolve().parents[2]
SEARCH = [sys.executable, "-m", "tuning.search"]


def run(command, env=None, timeout=600):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def trial_records(project: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(project.glob("trial_*/trial.json"))]


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_width": 3}, r"unknown hyperparameter\(s\) \['hidden_width'\].*valid names"),
    ({"units": {"type": "choice", "values": []}}, "'units': 'choice' needs a non-empty list"),
    ({"dropout": {"type": "float", "min": 0.5, "max": 0.1}}, "'dropout': needs numbers 'min' <= 'max'"),
    ({"learning_rate": {"type": "float", "min": 0, "max": 1, "sampling": "log"}}, "log sampling needs min > 0"),
    ({"layers": {"type": "integer", "min": 1, "max": 2}}, "type must be 'int', 'float' or 'choice'"),
    ({"layers": 2, "units": 64, "dropout": 0.1, "learning_rate": 1e-3, "batch_size": 64}, "search space is empty"),
])
def test_bad_spaces_are_named(overrides, message):
    with pytest.raises(SearchSpaceError, match=message):
        load_space(GENRE, overrides)


def test_space_file_overrides_and_fixes_entries(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"units": {"type": "choice", "values": [32, 64]}, "dropout": 0.25}))
    space = load_space(GENRE, path)
    hp = kt.HyperParameters()
    values = declare(hp, space)
    assert values["units"] == 32 and values["dropout"] == 0.25 and set(values) == set(GENRE.space)
    with pytest.raises(SearchSpaceError, match="does not exist"):
        load_space(GENRE, tmp_path / "missing.json")


def test_hyperparameters_map_onto_the_package_configs():
    genre, training = configs_from_hparams(GENRE, {"layers": 3, "units": 256, "dropout": 0.2,
                                                         "learning_rate": 3e-4, "batch_size": 128},
                                           GENRE.config(), TrainingConfig())
    assert genre.hidden_units == (256, 128, 64) and genre.dropout == 0.2 and genre.learning_rate == 3e-4
    assert training.batch_size == 128
    cnn, _ = configs_from_hparams(REGISTRY["cnn_lstm"], {"conv_blocks": 3, "conv_channels": 8, "lstm_units": 32},
                                  REGISTRY["cnn_lstm"].config(), TrainingConfig())
    assert cnn.conv_channels == (8, 16, 32) and cnn.lstm_units == 32
    with pytest.raises(SearchSpaceError, match="unknown hyperparameter"):
        configs_from_hparams(REGISTRY["mlp_lstm"], {"conv_blocks": 2}, REGISTRY["mlp_lstm"].config(),
                             TrainingConfig())


def test_sequence_hypermodels_build_the_package_models(mer4q_dir):
    from keras_music.data.emotion import load_emotion_data
    from keras_music.data.sequences import SequenceConfig
    from keras_music.training import EMOTION_TRAINING, TaggerFit, emotion_split
    from tuning.hypermodels import FamilyHyperModel

    emotion = load_emotion_data(str(mer4q_dir))
    train_ids, val_ids, _ = emotion_split(emotion, EMOTION_TRAINING)
    for name, layer in (("mlp_lstm", "frame_dense"), ("cnn_lstm", "mel_conv_0")):
        family = REGISTRY[name]
        hypermodel = FamilyHyperModel(family, TaggerFit(emotion, train_ids[:40], val_ids), family.config(),
                                      EMOTION_TRAINING, SequenceConfig())
        hp = kt.HyperParameters()
        model = hypermodel.build(hp)
        assert model.name == name and model.get_layer(layer) is not None
        assert set(hp.values) == set(family.space)
        if name == "cnn_lstm":
            convs = [layer.name for layer in model.layers if layer.name.startswith("mel_conv_")]
            assert len(convs) == hp.values["conv_blocks"]


@pytest.mark.slow
def test_genre_search_resumes_refuses_other_projects_and_feeds_train(tmp_path):
    common = ["--task", "genre", "--features", "seed", "--epochs", "3", "--directory", str(tmp_path)]
    first = run(SEARCH + common + ["--max-trials", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "| rank | trial | val_accuracy | layers | units |" in first.stdout
    project = tmp_path / "genre_mlp"
    assert [r["status"] for r in trial_records(project)] == ["COMPLETED"] * 2

    # Same command, more trials: the two finished trials are kept, one new trial runs.
    again = run(SEARCH + common + ["--max-trials", "3"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(": trial with ") == 1
    best = json.loads((project / "best_hparams.json").read_text())
    scores = [r["score"] for r in trial_records(project)]
    assert len(scores) == 3 and best["score"] == max(scores) and best["trials_finished"] == 3

    other = run(SEARCH + ["--task", "genre", "--features", "full", "--epochs", "3", "--max-trials", "1",
                         "--directory", str(tmp_path)])
    assert other.returncode == 1 and "holds a different search (features: 'seed' there, 'full' now)" in other.stderr
    assert "Traceback" not in other.stderr

    out = tmp_path / "run"
    trained = run([sys.executable, "-m", "keras_music.train", "--task", "genre", "--features", "seed", "--epochs", "2",
                   "--hparams", str(project / "best_hparams.json"), "--out", str(out), "--no-export"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    values = best["hyperparameters"]
    assert config["model_config"]["hidden_units"][0] == values["units"]
    assert len(config["model_config"]["hidden_units"]) == values["layers"]
    assert config["model_config"]["learning_rate"] == pytest.approx(values["learning_rate"])
    assert config["training_config"]["batch_size"] == values["batch_size"]

    wrong = run([sys.executable, "-m", "keras_music.train", "--task", "emotion", "--model", "mlp_lstm",
                 "--hparams", str(project / "best_hparams.json")])
    assert wrong.returncode == 1 and "searched for task 'genre'" in wrong.stderr


@pytest.mark.slow
def test_emotion_search_on_cal500_maximises_masked_macro_auc(tmp_path, cal500_labels):
    result = run(SEARCH + ["--task", "emotion", "--model", "mlp", "--data", str(cal500_labels.parent),
                           "--max-trials", "1", "--epochs", "2", "--directory", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best val_macro_auc = " in result.stdout and "| head_units |" in result.stdout
    best = json.loads((tmp_path / "tag_mlp" / "best_hparams.json").read_text())
    assert best["objective"] == "val_macro_auc" and best["direction"] == "max" and 0.5 < best["score"] <= 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_chief_and_two_workers_on_loopback(tmp_path):
    command = SEARCH + ["--task", "genre", "--features", "seed", "--max-trials", "4", "--epochs", "2",
                        "--directory", str(tmp_path)]
    port = str(free_port())
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": port}
        processes[tuner_id] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                               cwd=REPO, env=env)
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            stdout, stderr = process.communicate(timeout=600)
            outputs[tuner_id] = (process.returncode, stdout, stderr)
    finally:
        for process in processes.values():
            process.kill()
    for tuner_id, (code, _, stderr) in outputs.items():
        assert code == 0, f"{tuner_id}: {stderr[-3000:]}"

    records = trial_records(tmp_path / "genre_mlp")
    assert len(records) == 4 and all(r["status"] == "COMPLETED" for r in records)
    # Every trial ran exactly once, on a worker (the chief only serves the oracle).
    runs = [line.split(": trial with ", 1) for tuner_id in ("tuner0", "tuner1")
            for line in outputs[tuner_id][2].splitlines() if ": trial with " in line]
    assert len(runs) == 4
    assert sorted(json.dumps(json.loads(values), sort_keys=True) for _, values in runs) == sorted(
        json.dumps(r["hyperparameters"]["values"], sort_keys=True) for r in records)
    assert ": trial with " not in outputs["chief"][2]
    chief_out = outputs["chief"][1]
    best = max(r["score"] for r in records)
    reported = float(re.search(r"best val_accuracy = ([0-9.]+)", chief_out).group(1))
    assert reported == pytest.approx(best, abs=1e-4) and "4 trials finished" in chief_out
    assert "the chief prints the results" in outputs["tuner0"][2]




@pytest.mark.slow
def test_hyperband_search_runs_its_brackets(tmp_path):
    result = run(SEARCH + ["--task", "genre", "--features", "seed", "--tuner", "hyperband", "--epochs", "3",
                           "--directory", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    records = trial_records(tmp_path / "genre_mlp")
    assert records and all(r["status"] == "COMPLETED" for r in records)
    assert "best val_accuracy = " in result.stdout
