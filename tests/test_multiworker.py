"""Multi-worker training: two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


EPOCHS = 4


def start_workers(store: Path, out: Path, logs: Path) -> list[subprocess.Popen]:
    """Two workers on 127.0.0.1 running the same command (same --out, as on a shared filesystem);
    worker i writes its stdout and stderr to `logs/i.out` and `logs/i.err`."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_music.train", "--data", str(store), "--model", "mlp_lstm",
             "--strategy", "multi_worker", "--epochs", str(EPOCHS), "--batch-size", "8", "--out", str(out),
             "--no-export"], stdout=(logs / f"{index}.out").open("w"), stderr=(logs / f"{index}.err").open("w"),
            text=True, cwd=REPO, env=env))
    return processes


def finish(processes, logs: Path) -> list[tuple[int, str, str]]:
    """Wait for the workers; `(return code, stdout, stderr)` of each."""
    try:
        for process in processes:
            process.wait(timeout=600)
    finally:
        for process in processes:
            process.kill()
    return [(p.returncode, (logs / f"{i}.out").read_text(), (logs / f"{i}.err").read_text())
            for i, p in enumerate(processes)]


def epoch_curve(stderr: str) -> list[tuple[str, str]]:
    return re.findall(rf"epoch \d+/{EPOCHS}  loss ([0-9.]+)  val_macro_auc ([0-9.]+)", stderr)


@pytest.mark.slow
def test_two_workers_train_one_model_and_a_killed_worker_resumes(small_emotion_store, tmp_path):
    # An uninterrupted run.
    outputs = finish(start_workers(small_emotion_store, tmp_path / "run", tmp_path / "logs"), tmp_path / "logs")
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["workers"] == 2 and report["epochs_run"] == EPOCHS and report["resumed_after_epoch"] is None
    assert (tmp_path / "run" / "model.keras").is_file()
    assert not (tmp_path / "run" / "backup").exists() and not (tmp_path / "run" / "backup-worker1").exists()
    assert "Worker finished" in outputs[1][1]
    # Synchronous data parallelism: both workers saw the same global loss and validation score every epoch.
    curves = [epoch_curve(stderr) for _, _, stderr in outputs]
    assert len(curves[0]) == EPOCHS and curves[0] == curves[1]

    # The same job, worker 1 SIGKILLed in the middle of epoch 3, then the whole job started again.
    out, logs = tmp_path / "killed", tmp_path / "logs-killed"
    processes = start_workers(small_emotion_store, out, logs)
    deadline = time.monotonic() + 600
    while len(epoch_curve((logs / "0.err").read_text())) < 2:
        assert time.monotonic() < deadline and processes[0].poll() is None, (logs / "0.err").read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)  # into epoch 3
    processes[1].send_signal(signal.SIGKILL)
    processes[0].kill()  # the survivor waits on the lost worker's collectives; the job is restarted
    finish(processes, logs)
    assert not (out / "report.json").exists()
    outputs = finish(start_workers(small_emotion_store, out, tmp_path / "logs-resumed"), tmp_path / "logs-resumed")
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
    resumed = json.loads((out / "report.json").read_text())
    finished = resumed["resumed_after_epoch"]
    assert 2 <= finished < EPOCHS and all(f"Resuming: {finished} epoch(s) finished" in o for _, o, _ in outputs)
    assert [epoch_curve(stderr) for _, _, stderr in outputs] == [curves[0][finished:]] * 2
    for key in ("macro_roc_auc", "macro_pr_auc", "macro_accuracy"):  # tolerance 1e-6; equal in practice
        assert report[key] is not None and abs(resumed[key] - report[key]) <= 1e-6, key
    assert resumed["epochs_run"] == EPOCHS and not (out / "backup").exists()


def test_missing_tf_config_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "keras_music.train", "--strategy", "multi_worker", "--epochs", "1",
                             "--out", str(tmp_path / "r"), "--no-export"], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=env)
    assert result.returncode == 1 and "needs TF_CONFIG" in result.stderr and "Traceback" not in result.stderr


RESUME_SCRIPT = r"""
import json, sys
import numpy as np, tensorflow as tf, keras
from keras_music.data.sequences import EpochClock
from keras_music.losses import MaskedBinaryCrossentropy
from keras_music.multiworker import WorkerCheckpoint, fit_multi_worker

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # no TF_CONFIG: one worker, this process
directory, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
SCORES = [0.5, 0.7, 0.6, 0.8, 0.75, 0.74, 0.9]  # validation: best at epoch 3, stop after epoch 5 (patience 2)
keras.utils.set_random_seed(0)
with strategy.scope():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MaskedBinaryCrossentropy())
rng = np.random.default_rng(0)
data = tf.data.Dataset.from_tensor_slices((rng.normal(size=(64, 4)).astype("float32"),
                                           rng.integers(0, 2, (64, 2)).astype("float32"),
                                           np.ones((64, 2), "float32"))).batch(8, drop_remainder=True)
epochs_seen = []

def validate():
    epoch = len(epochs_seen) + (checkpoint.resumed_after or 0)
    epochs_seen.append(epoch)
    if epoch == kill_at:
        sys.exit(3)  # killed before this epoch is saved
    return SCORES[epoch]

checkpoint = WorkerCheckpoint(strategy, model, directory, identity={"run": "test"})
history = fit_multi_worker(strategy, model, data, EpochClock(), epochs=len(SCORES), patience=2, min_epochs=1,
                           validate=validate, checkpoint=checkpoint)
np.savez(out, *model.get_weights())
print(json.dumps({"history": [[h["epoch"], h["loss"], h["val_macro_auc"]] for h in history],
                  "resumed_after": checkpoint.resumed_after, "epochs_run_here": epochs_seen}))
"""


@pytest.mark.slow
def test_early_stopping_state_and_best_weights_survive_a_restart(tmp_path):
    """fit_multi_worker alone (one worker): killed after the best epoch and again after the stop, it ends
    with the history and best weights of an uninterrupted run."""
    def run(directory, out, kill_at=-1):
        return subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(directory), str(out), str(kill_at)],
                              capture_output=True, text=True, timeout=300, cwd=REPO,
                              env={k: v for k, v in os.environ.items() if k != "TF_CONFIG"})

    def result(completed):
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads(completed.stdout.strip().splitlines()[-1])

    reference = result(run(tmp_path / "a", tmp_path / "a.npz"))
    assert [h[0] for h in reference["history"]] == [0, 1, 2, 3, 4, 5]  # stopped after epoch 5
    killed = run(tmp_path / "b", tmp_path / "b.npz", kill_at=5)  # epochs 0-4 saved, the best is epoch 3
    assert killed.returncode == 3
    resumed = result(run(tmp_path / "b", tmp_path / "b.npz"))
    assert resumed["resumed_after"] == 5 and resumed["epochs_run_here"] == [5]
    assert resumed["history"] == reference["history"]
    again = result(run(tmp_path / "b", tmp_path / "c.npz"))  # a finished (stopped) run: nothing to train
    assert again["epochs_run_here"] == [] and again["history"] == reference["history"]
    for other in ("b.npz", "c.npz"):
        want, got = np.load(tmp_path / "a.npz"), np.load(tmp_path / other)
        assert len(want.files) == len(got.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key])  # the best epoch's weights (epoch 3)
