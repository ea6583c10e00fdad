"""Kill training with SIGKILL mid-epoch, run the same command again: it resumes and ends as if never killed."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 14  # past the 10 epochs before early stopping may act, so its state matters too


def train_command(store: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "keras_music.train", "--data", str(store), "--model", "mlp_lstm",
            "--epochs", str(EPOCHS), "--batch-size", "8", "--seed", "3", "--out", str(out), "--no-export"]


def history(out: Path) -> list[dict]:
    with open(out / "history.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_resumes_and_matches_an_uninterrupted_run(small_emotion_store, tmp_path):
    reference = subprocess.run(train_command(small_emotion_store, tmp_path / "reference"), capture_output=True,
                               text=True, timeout=900, cwd=REPO)
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    process = subprocess.Popen(train_command(small_emotion_store, out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    pointer, deadline = out / "backup" / "LATEST", time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if pointer.is_file() and pointer.read_text().strip() == "epoch-00010":
            break  # epoch 11 is backed up; the process is now inside epoch 12
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "model.keras").exists()

    resumed = subprocess.run(train_command(small_emotion_store, out), capture_output=True, text=True, timeout=900,
                             cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    print("\n" + "\n".join(line for line in resumed.stderr.splitlines() if "Resuming" in line or "epoch" in line))
    assert "epoch 11 of this run had finished; continuing with epoch 12" in resumed.stderr
    assert "epoch 1/" not in resumed.stderr  # no epoch before the kill ran again
    assert not (out / "backup").exists()  # removed once training finished

    got, want = json.loads((out / "report.json").read_text()), json.loads((tmp_path / "reference" /
                                                                            "report.json").read_text())
    assert got["resumed_after_epoch"] == 11 and want["resumed_after_epoch"] is None
    assert got["epochs_run"] == want["epochs_run"]
    # Tolerance: 1e-6 absolute (CPU, same ops in the same order; measured identical).
    for key in ("macro_roc_auc", "macro_pr_auc", "macro_accuracy"):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    for tag in want["per_tag"]:
        assert got["per_tag"][tag]["probability_mean"] == pytest.approx(want["per_tag"][tag]["probability_mean"],
                                                                        abs=1e-6)
    resumed_history, reference_history = history(out), history(tmp_path / "reference")
    assert len(resumed_history) == len(reference_history)
    for a, b in zip(resumed_history, reference_history):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], atol=1e-6)


@pytest.mark.slow
def test_same_seed_gives_identical_emotion_metrics_on_cpu(small_emotion_store, tmp_path):
    from keras_music.config import TrainingConfig
    from keras_music.models.cnn_lstm import CNNLSTMConfig
    from keras_music.data.sequences import SequenceConfig
    from keras_music.training import train_emotion

    def run(name, seed):
        return train_emotion(str(small_emotion_store), tmp_path / name,
                             CNNLSTMConfig(conv_channels=(8, 16), lstm_units=16, head_units=16),
                             SequenceConfig(crop_frames=48, batch_size=8),
                             TrainingConfig(epochs=3, batch_size=8, min_epochs=0, seed=seed,
                                            validation_fraction=0.2, test_fraction=0.2), verbose=0)

    first, second, other = run("a", 0), run("b", 0), run("c", 1)
    print(f"\nseed 0 twice: macro ROC-AUC {first['macro_roc_auc']:.6f} / {second['macro_roc_auc']:.6f}; "
          f"seed 1: {other['macro_roc_auc']:.6f}")
    assert first == second  # every number of the report, exactly
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()
    assert first["per_tag"] != other["per_tag"]


def kill_when(process: subprocess.Popen, ready, timeout: float = 600) -> None:
    """SIGKILL `process` as soon as `ready()` is true (fails if it ended first)."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(0.02)
    assert process.poll() is None, "the process ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


@pytest.mark.slow
def test_sigkilled_extraction_resumes_without_losing_or_duplicating_clips(audio_dir, tmp_path):
    import shutil

    from keras_music.data.store import FeatureStore

    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(16):
        shutil.copy(audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", folder / f"clip{i:02d}.wav")
    store = tmp_path / "store"
    command = [sys.executable, "-m", "keras_music.extract", str(folder), "--out", str(store), "--workers", "1",
               "--shard-size", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    manifest = store / "manifest.jsonl"
    kill_when(process, lambda: manifest.is_file() and len(manifest.read_text().splitlines()) >= 4)
    done_before = len(FeatureStore(store).manifest())
    assert 4 <= done_before < 16

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{16 - done_before} extracted, {done_before} already in the store" in again.stdout + again.stderr
    ids = [entry["clip_id"] for entry in FeatureStore(store).manifest()]
    assert sorted(ids) == [f"clip{i:02d}" for i in range(16)]  # every clip exactly once
    assert not list((store / "shards").glob("*.tmp"))


@pytest.mark.slow
def test_sigkilled_search_resumes_and_runs_every_trial_once(tmp_path):
    command = [sys.executable, "-m", "tuning.search", "--task", "genre", "--features", "seed", "--max-trials", "4",
               "--epochs", "4", "--directory", str(tmp_path)]
    project = tmp_path / "genre_mlp"

    def finished_trials():
        """Trials KerasTuner counts as finished: COMPLETED in their trial.json and no longer ongoing in
        oracle.json. It writes the two one after the other, so a kill between them leaves a trial
        that says COMPLETED but is still ongoing for the oracle, and the rerun retries it."""
        try:
            ongoing = set(json.loads((project / "oracle.json").read_text())["ongoing_trials"].values())
        except (OSError, ValueError, KeyError):
            return []  # not written yet, or caught half-written
        finished = []
        for path in project.glob("trial_*/trial.json"):
            try:  # KerasTuner rewrites trial.json in place: it can be caught half-written
                trial = json.loads(path.read_text())
                if trial["status"] == "COMPLETED" and trial["trial_id"] not in ongoing:
                    finished.append(path)
            except (ValueError, KeyError):
                pass
        return finished

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    kill_when(process, lambda: len(finished_trials()) >= 2)
    before = len(finished_trials())
    assert 2 <= before < 4

    again = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert again.returncode == 0, again.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in project.glob("trial_*/trial.json")]
    assert len(records) == 4 and all(r["status"] == "COMPLETED" for r in records)
    # Only the unfinished trials ran again (the interrupted one is retried, finished ones are kept).
    assert again.stderr.count(": trial with ") == 4 - before
    assert "4 trials finished" in again.stdout


@pytest.mark.slow
def test_sigkilled_genre_ensemble_keeps_finished_members_and_matches(tmp_path):
    def command(out):
        return [sys.executable, "-m", "keras_music.train", "--task", "genre", "--features", "seed", "--epochs", "4",
                "--ensemble", "2", "--seed", "2", "--out", str(out), "--no-export"]

    reference = subprocess.run(command(tmp_path / "reference"), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert reference.returncode == 0, reference.stderr[-3000:]
    out = tmp_path / "killed"
    process = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    kill_when(process, lambda: (out / "backup" / "member-0.keras").is_file())
    resumed = subprocess.run(command(out), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Member 1/2: finished before the restart" in resumed.stderr
    assert not (out / "backup").exists()
    got, want = (json.loads((d / "report.json").read_text()) for d in (out, tmp_path / "reference"))
    assert got["accuracy"] == want["accuracy"] and got["log_loss"] == pytest.approx(want["log_loss"], abs=1e-6)


def test_a_backup_of_another_run_is_refused(tmp_path):
    import keras

    from keras_music.resume import ResumableTraining

    def model():
        inputs = keras.Input((3,))
        built = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        built.compile("adam", "mse")
        return built

    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    first = ResumableTraining(tmp_path / "backup", identity={"seed": 0})
    model().fit(x, y, epochs=2, verbose=0, callbacks=[first])
    assert (tmp_path / "backup" / "LATEST").read_text().strip() == "epoch-00001"
    with pytest.raises(ValueError, match=r"holds the backup of a different run \(differs in: seed\)"):
        model().fit(x, y, epochs=3, verbose=0, callbacks=[ResumableTraining(tmp_path / "backup",
                                                                            identity={"seed": 1})])
    resumed = ResumableTraining(tmp_path / "backup", identity={"seed": 0})
    model().fit(x, y, epochs=3, verbose=0, callbacks=[resumed])
    assert resumed.resumed_from == 1 and [row["epoch"] for row in resumed.history] == [0, 1, 2]
