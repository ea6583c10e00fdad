"""Multi-worker training: two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy (TF_CONFIG)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.slow
def test_two_workers_train_one_model_and_worker_zero_writes_it(small_emotion_store, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_music.train", "--data", str(small_emotion_store), "--model", "mlp_lstm",
             "--strategy", "multi_worker", "--epochs", "3", "--batch-size", "8", "--out", str(tmp_path / f"run{index}"),
             "--no-export"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env))
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=600)
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            process.kill()
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
    chief_report = json.loads((tmp_path / "run0" / "report.json").read_text())
    assert chief_report["workers"] == 2 and chief_report["epochs_run"] == 3
    assert (tmp_path / "run0" / "model.keras").is_file() and not (tmp_path / "run1").exists()
    assert "Worker finished" in outputs[1][1]
    # Synchronous data parallelism: both workers saw the same global loss and validation score every epoch.
    curves = [re.findall(r"epoch \d+/3  loss ([0-9.]+)  val_macro_auc ([0-9.]+)", stderr) for _, _, stderr in outputs]
    assert len(curves[0]) == 3 and curves[0] == curves[1]


def test_missing_tf_config_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "keras_music.train", "--strategy", "multi_worker", "--epochs", "1",
                             "--out", str(tmp_path / "r"), "--no-export"], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env=env)
    assert result.returncode == 1 and "needs TF_CONFIG" in result.stderr and "Traceback" not in result.stderr
