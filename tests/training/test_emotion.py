"""The emotion flow end to end on a small synthetic store: train, report, evaluate, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from keras_music.config import TrainingConfig
from keras_music.models.cnn_lstm import CNNLSTMConfig
from keras_music.models.tag_mlp import TagMLPConfig
from keras_music.data.demo import make_emotion_demo
from keras_music.data.emotion import DEMO_VERSION
from keras_music.data.sequences import SequenceConfig
from keras_music.evaluate import evaluate_emotion
from keras_music.data.extraction import extract_folder
from keras_music.training import train_emotion


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    root = make_emotion_demo(tmp_path_factory.mktemp("demo"), num_clips=60, seconds=4.0, seed=3)
    summary = extract_folder(root / "audio", root / "store", workers=1)
    assert summary.written == 60 and not summary.failed
    (root / "store" / "labels.csv").write_text((root / "labels.csv").read_text())
    return root / "store"


@pytest.mark.slow
def test_cnn_lstm_learns_the_demo_cues_and_the_run_rescores(demo_store, tmp_path):
    out = tmp_path / "run"
    training = TrainingConfig(epochs=25, batch_size=8, patience=25, min_epochs=0, seed=0,
                              validation_fraction=0.2, test_fraction=0.2)
    config = CNNLSTMConfig(conv_channels=(8, 16), lstm_units=32, head_units=32)
    report = train_emotion(str(demo_store), out, config, SequenceConfig(crop_frames=64, batch_size=8), training,
                           verbose=0)
    print(f"\ndemo test macro ROC-AUC {report['macro_roc_auc']:.3f} on {report['n']} clips")
    assert report["macro_roc_auc"] > 0.75  # chance is 0.5
    assert not report["constant_predictions"]
    for name in ("model.keras", "config.json", "history.csv", "history.png", "report.json"):
        assert (out / name).is_file(), name
    history = (out / "history.csv").read_text().splitlines()[0]
    assert "val_auc_happy" in history and "val_macro_auc" in history
    assert list((out / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    again = evaluate_emotion(out, str(demo_store), split="test")
    assert again["n"] == report["n"] and again["macro_roc_auc"] == pytest.approx(report["macro_roc_auc"], abs=1e-6)


@pytest.mark.slow
def test_cli_emotion_train_and_evaluate_json(demo_store, tmp_path):
    out = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "keras_music.train", "--task", "emotion", "--model", "mlp_lstm",
                              "--variant", "seed", "--data", str(demo_store), "--epochs", "2", "--out", str(out),
                              "--no-export"],
                             capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "macro_roc_auc=" in trained.stdout and "p_std" in trained.stdout
    assert "epoch 2/2" in trained.stderr
    scored = subprocess.run([sys.executable, "-m", "keras_music.evaluate", "--model", str(out), "--data",
                             str(demo_store), "--json"], capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr[-3000:]
    report = json.loads(scored.stdout)
    assert report["n"] == 60 and {"macro_roc_auc", "accuracy", "per_tag"} <= set(report)
    assert report["accuracy"] is None  # demo clips carry several tags, so no single-label accuracy


def test_cli_refuses_bad_combinations(tmp_path, capsys, monkeypatch):
    """Usage errors exit 2; a library error comes out naming the flag, not the parameter."""
    from keras_music.train import main

    with pytest.raises(SystemExit) as wrong:
        main(["--task", "genre", "--model", "cnn_lstm"])
    assert wrong.value.code == 2 and "does not fit --task genre" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r")]) == 1
    assert f"error: --data '{tmp_path / 'nothing'}': " in capsys.readouterr().err
    monkeypatch.delenv("KERAS_MUSIC_DATASETS", raising=False)
    assert main(["--data", "mer4q", "--out", str(tmp_path / "r")]) == 1
    assert "error: --data 'mer4q': a dataset name is looked up in $KERAS_MUSIC_DATASETS" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_main_job_defaults_run_on_the_generated_demo(tmp_path):
    """`python -m keras_music.train` with no data flags: synthesise, extract, train, report, export (2 epochs here)."""
    env = {**os.environ, "KERAS_MUSIC_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "keras_music.train", "--epochs", "2", "--out", str(tmp_path / "run"),
                          "--export-dir", str(tmp_path / "saved_models")],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Test report (cnn_lstm (default))" in run.stdout
    export = tmp_path / "saved_models" / "emotion_cnn_lstm" / "1"
    assert (export / "saved_model.pb").is_file() and (export / "assets" / "metadata.json").is_file()
    assert f"Exported for TF Serving: {export}" in run.stdout
    assert f"python -m keras_music.predict AUDIO_FILE_OR_FOLDER --model {export.parent}" in run.stdout
    assert (tmp_path / "cache" / DEMO_VERSION / "store" / "manifest.jsonl").is_file()
    assert len(list((tmp_path / "cache" / DEMO_VERSION / "audio").glob("*.wav"))) == 200


@pytest.mark.slow
def test_cal500_mlp_tagger_end_to_end(cal500_labels, tmp_path):
    """CAL500 has only per-song aggregated features: the mlp tagger trains on them; sequence models refuse."""
    data = str(cal500_labels.parent)
    report = train_emotion(data, tmp_path / "run", TagMLPConfig(), SequenceConfig(),
                           TrainingConfig(epochs=3, min_epochs=0, validation_fraction=0.15, test_fraction=0.15),
                           verbose=0)
    assert report["n"] == 75 and len(report["per_tag"]) == 18 and report["accuracy"] is None
    again = evaluate_emotion(tmp_path / "run", data, split="test")
    assert again["macro_roc_auc"] == pytest.approx(report["macro_roc_auc"], abs=1e-6)
    cli = subprocess.run([sys.executable, "-m", "keras_music.train", "--data", data, "--model", "mlp_lstm",
                          "--out", str(tmp_path / "seq")], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1 and "use --model mlp" in cli.stderr and "Traceback" not in cli.stderr


MIRRORED_SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_music.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn_lstm"])  # the harder case (convolution + pooling of empty batches)
def test_mirrored_strategy_on_two_logical_cpus(demo_store, tmp_path, model):
    run = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, "--data", str(demo_store), "--model", model,
                          "--strategy", "mirrored", "--epochs", "2", "--out", str(tmp_path / "run"), "--no-export"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    devices = [line for line in run.stderr.splitlines() if line.startswith("--strategy mirrored: ")]
    assert len(devices) == 1, run.stderr[-3000:]
    assert "2 replica(s) in sync" in devices[0] and "CPU:0" in devices[0] and "CPU:1" in devices[0], devices
    assert "macro_roc_auc=" in run.stdout


SPLIT_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_music.data.emotion import load_emotion_data
from keras_music.data.sequences import EpochClock, SequenceConfig, make_dataset
emotion = load_emotion_data(sys.argv[1])
ids = emotion.tags.clip_ids[:21]
dataset = make_dataset(emotion.sequences(), emotion.tags, ids, SequenceConfig(crop_frames=32, batch_size=16),
                       training=True, seed=0, fill_last_batch=True, clock=EpochClock())
strategy = tf.distribute.MirroredStrategy()
sizes, weights = [], 0.0
for inputs, labels, mask in strategy.experimental_distribute_dataset(dataset):
    local = strategy.experimental_local_results(inputs["length"])
    sizes.append([int(t.shape[0]) for t in local])
    weights += sum(float(tf.reduce_sum(m)) for m in strategy.experimental_local_results(mask))
print("REPLICA_BATCHES", sizes, "KNOWN_CELLS", weights, float(emotion.tags.rows(ids).mask.sum()))
"""


@pytest.mark.slow
def test_mirrored_strategy_splits_each_global_batch_evenly(demo_store):
    run = subprocess.run([sys.executable, "-c", SPLIT_SCRIPT, str(demo_store)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("REPLICA_BATCHES"))
    # 21 clips, global batch 16 -> 2 global batches (the last filled with masked copies), 8 + 8 per replica;
    # every known label cell is seen exactly once, the fillers add none.
    assert line.startswith("REPLICA_BATCHES [[8, 8], [8, 8]]")
    known, expected = map(float, line.split("KNOWN_CELLS ")[1].split())
    assert known == expected


@pytest.mark.slow
def test_windowed_validation_scores_clips_as_the_test_does_and_early_stopping_keeps_its_best(demo_store, tmp_path):
    """`validate_on_windows`: each epoch's validation is the mean logits of each clip's windows
    (what the test report scores), under Keras' own names; the kept epoch is the best by it."""
    import numpy as np
    import pandas as pd
    from keras_music.data.emotion import load_emotion_data
    from keras_music.scoring import tagger_logits
    from keras_music.training.common import load_run
    from keras_music.training.emotion import WindowedValidation

    out = tmp_path / "run"
    training = TrainingConfig(epochs=5, batch_size=8, patience=5, min_epochs=0, seed=0, validation_fraction=0.2,
                              test_fraction=0.2)
    sequences = SequenceConfig(crop_frames=64, window_hop=32, batch_size=8, validate_on_windows=True)
    train_emotion(str(demo_store), out, CNNLSTMConfig(conv_channels=(8, 16), lstm_units=16, head_units=16),
                  sequences, training, verbose=0)
    history = pd.read_csv(out / "history.csv")
    assert {"val_loss", "val_macro_auc", "val_auc_happy"} <= set(history.columns)
    model, config = load_run(out)
    assert config["sequence_config"]["validate_on_windows"] is True
    emotion, val_ids = load_emotion_data(str(demo_store)), config["splits"]["validation"]
    logs = {}
    check = WindowedValidation(emotion, val_ids, sequences)
    check.set_model(model)
    check.on_epoch_end(0, logs)
    best = int(history["val_macro_auc"].idxmax())
    assert logs["val_macro_auc"] == pytest.approx(history["val_macro_auc"][best], abs=1e-6)
    assert logs["val_loss"] == pytest.approx(history["val_loss"][best], abs=1e-5)
    logits, labels, mask = tagger_logits(model, emotion, val_ids, sequences)
    bce = np.logaddexp(0, logits) - labels * logits
    assert logs["val_loss"] == pytest.approx(float((bce * mask).sum() / mask.sum()), abs=1e-5)
