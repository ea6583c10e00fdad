"""Training that survives being killed: re-running the same command resumes it.

Keras' `BackupAndRestore` writes the weights and then the epoch number as two separate
files and knows nothing of early stopping, so a kill between the two, or a best epoch
before the kill, changes the result. `ResumableTraining` is its equivalent for this
package: after every epoch it writes one folder with the model and optimizer state, the
random-seed state of dropout (which `save_weights` leaves out), the early-stopping state (best score, patience counter, best weights) and every epoch's logs,
then switches a one-line `LATEST` pointer to it (an atomic rename). A run killed at any
moment restarts from the last finished epoch; with the epoch-indexed data pipeline
(`EpochClock`) it then sees the same batches and ends with the same weights as a run that
was never interrupted (tested on CPU).
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_music.config import atomic_path

logger = logging.getLogger("keras_music.resume")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose state can be saved and restored (`get_state` / `set_state`)."""

    def get_state(self) -> tuple[dict, list[np.ndarray] | None]:
        state = {"wait": self.wait, "best": None if self.best is None else float(self.best),
                 "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}
        return state, self.best_weights

    def set_state(self, state: dict, best_weights: list[np.ndarray] | None) -> None:
        self.wait, self.best_epoch, self.stopped_epoch = state["wait"], state["best_epoch"], state["stopped_epoch"]
        self.best = state["best"]
        self.best_weights = best_weights


class ResumableTraining(keras.callbacks.Callback):
    """Back up after every epoch into `backup_dir`; restore from it when `fit` starts.

    Put it after the `ResumableEarlyStopping` it saves in the callback list, so it saves
    that callback's state after the epoch's update and restores it after its reset. It
    also writes `history_csv` (every finished epoch's logs, rewritten atomically), and
    `history` holds the same logs, including epochs run before a restart. `identity` (any
    JSON-able description of the run: configs, data, seed) is stored with every backup, and
    a backup of a different run is refused instead of resumed. The caller removes the backup
    (`remove_backup`) once everything the run writes is written.
    """

    def __init__(self, backup_dir: str | Path, early_stopping: ResumableEarlyStopping | None = None,
                 history_csv: str | Path | None = None, identity: dict | None = None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.early_stopping = early_stopping
        self.history_csv = Path(history_csv) if history_csv else None
        self.identity = json.loads(json.dumps(identity or {}))  # as it reads back from JSON
        self.history: list[dict] = []
        self.resumed_from: int | None = None  # the last finished epoch found in the backup

    # --- restore ---
    def on_train_begin(self, logs=None):
        pointer = self.backup_dir / "LATEST"
        if not pointer.is_file():
            return
        folder = self.backup_dir / pointer.read_text().strip()
        state = json.loads((folder / "state.json").read_text())
        check_identity(self.backup_dir, state.get("identity", {}), self.identity)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(folder / "model.weights.h5")
        with np.load(folder / "non_trainable.npz") as arrays:  # incl. dropout's random-seed state
            for i, variable in enumerate(self.model.non_trainable_variables):
                variable.assign(arrays[f"v{i}"])
        self.model._initial_epoch = state["epoch"] + 1  # what keras' BackupAndRestore sets, too
        self.history = state["history"]
        if self.early_stopping is not None and state.get("early_stopping"):
            best = folder / "best_weights.npz"
            weights = None
            if best.is_file():
                with np.load(best) as arrays:
                    weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]
            self.early_stopping.set_state(state["early_stopping"], weights)
        self.resumed_from = state["epoch"]
        if state.get("early_stopping", {}).get("stopped_epoch"):
            self.model._initial_epoch = self.params["epochs"]  # it had stopped: run no more epochs
        logger.info("Resuming from %s: epoch %d of this run had finished; continuing with epoch %d.",
                    folder, state["epoch"] + 1, state["epoch"] + 2)

    # --- back up ---
    def on_epoch_end(self, epoch, logs=None):
        self.history.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        name = f"epoch-{epoch:05d}"
        staging = self.backup_dir / f"{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.model.save_weights(staging / "model.weights.h5")  # weights and optimizer state
        # save_weights leaves out the seed-generator states of Dropout & co.; without them a
        # resumed run would draw other dropout masks.
        np.savez(staging / "non_trainable.npz",
                 **{f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(self.model.non_trainable_variables)})
        state = {"epoch": epoch, "history": self.history, "identity": self.identity}
        if self.early_stopping is not None:
            early, best_weights = self.early_stopping.get_state()
            state["early_stopping"] = early
            if best_weights is not None:
                np.savez(staging / "best_weights.npz", **{f"w{i}": w for i, w in enumerate(best_weights)})
        (staging / "state.json").write_text(json.dumps(state))
        shutil.rmtree(self.backup_dir / name, ignore_errors=True)
        staging.rename(self.backup_dir / name)
        with atomic_path(self.backup_dir / "LATEST") as tmp:  # the commit point
            tmp.write_text(name + "\n")
        for old in self.backup_dir.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        if self.history_csv is not None:
            write_history_csv(self.history, self.history_csv)

    def remove_backup(self) -> None:
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def check_identity(backup_dir: Path, saved: dict, current: dict) -> None:
    """Refuse to resume a backup written by a different run (other configs, data or seed)."""
    different = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if different:
        raise ValueError(f"{backup_dir} holds the backup of a different run (differs in: {', '.join(different)}); "
                         "delete it to start over, or choose another --out.")


def write_history_csv(history: list[dict], path: Path) -> None:
    """One row per epoch, the union of all keys as columns (atomic)."""
    keys = ["epoch"] + sorted({k for row in history for k in row} - {"epoch"})
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
