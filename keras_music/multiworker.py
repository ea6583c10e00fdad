"""Multi-worker data-parallel training: `MultiWorkerMirroredStrategy` stepped by a small loop.

`model.fit` under `MultiWorkerMirroredStrategy` fails with Keras 3.15.1
(keras-team/keras#20585: every worker raises `ValueError: Attempt to convert a value
(PerReplica:{...}) with an unsupported type`), when Keras reduces the step's logs across
workers. This module is the one workaround, and the only place that knows about it: the
same model, loss, optimizer and data pipeline, with the training step run by
`strategy.run` and the loss reduced by hand. Everything else is TensorFlow's: the cluster
comes from `TF_CONFIG`, gradients are all-reduced by the strategy (the Keras optimizer sums
them across replicas), and each global batch is split over the workers.

The loss of a global batch is the mean over the known cells of the whole batch: each
replica divides its masked sum by the all-reduced count of known cells, so the summed
gradients equal those of one device on the whole batch. Validation runs on every worker on
the same clips with the same (synchronised) weights, so all workers take the same
early-stopping decision.

Resuming (`WorkerCheckpoint`): after every epoch each worker saves, with
`tf.train.CheckpointManager`, the model's variables (weights and dropout seed states), the
optimizer's, the epoch, the early-stopping state and the history; worker 0 writes into the
run's `backup/` folder, the others into scratch folders they delete at once (TensorFlow's
multi-worker checkpoint recipe: every worker takes part in the save). Killed workers, the job
started again with the same command (and the same `--out`, a folder every worker sees)
restore worker 0's last checkpoint and go on from the next epoch. Batches are drawn per epoch
from `(seed, epoch)` (`EpochClock`), so the resumed run is the uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

logger = logging.getLogger("keras_music.multiworker")


def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy of the cluster in `TF_CONFIG` (create it before any other TensorFlow work)."""
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError("--strategy multi_worker needs TF_CONFIG, e.g. "
                         '{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
                         '"task": {"type": "worker", "index": 0}} (one process per worker).')
    try:
        parsed = json.loads(config)
        parsed["cluster"]["worker"], parsed["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a valid cluster spec ({error!r}): {config[:200]}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy) -> bool:
    """Worker 0 (or a chief task) writes the run folder; the others only train."""
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (resolver.task_type == "worker" and resolver.task_id == 0)


class WorkerCheckpoint:
    """The resumable state of `fit_multi_worker`, saved after every epoch (see the module docstring).

    Args:
        strategy: the run's MultiWorkerMirroredStrategy.
        model: the compiled model; its optimizer is built here so its slots can be restored.
        directory: worker 0's checkpoint folder (`backup/` of the run); read by every worker.
        identity: what the run is (data, configs); a checkpoint of another run is refused.
    """

    def __init__(self, strategy, model, directory: str | Path, identity: dict | None = None):
        self.directory, self.chief, self.model = Path(directory), is_chief(strategy), model
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # epochs finished
        self.best = tf.Variable(-np.inf, dtype=tf.float64, trainable=False)
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.history = tf.Variable("[]", dtype=tf.string, trainable=False)
        self.identity = json.loads(json.dumps(identity or {}))
        self.resumed_after = None  # the number of epochs a restored checkpoint had finished
        weights = [v.value for v in model.variables]  # Keras 3 models are not tracked by tf.train
        self.state = tf.train.Checkpoint(model=weights, optimizer=[v.value for v in model.optimizer.variables],
                                         epoch=self.epoch, best=self.best, wait=self.wait, history=self.history)
        self.best_weights = tf.train.Checkpoint(model=weights)
        task = strategy.cluster_resolver.task_id or 0
        self.write_dir = self.directory if self.chief else self.directory.parent / f"{self.directory.name}-worker{task}"
        self.managers = {name: tf.train.CheckpointManager(checkpoint, str(self.write_dir / name), max_to_keep=1)
                         for name, checkpoint in (("last", self.state), ("best", self.best_weights))}

    def restore(self) -> tuple[int, list | None]:
        """Load worker 0's last checkpoint, if any: `(epochs already finished, the best epoch's
        weights or None)`. Without one, worker 0 clears what an earlier run left in the folder.

        Read at the start only: then no worker is saving (saves need every worker), so each
        reads worker 0's files as they are.
        """
        latest = tf.train.latest_checkpoint(str(self.directory / "last"))
        if latest is None:
            if self.chief:  # a "best" or identity of a run killed before its first "last"
                shutil.rmtree(self.directory, ignore_errors=True)
            return 0, None
        from keras_music.resume import check_identity

        marker = self.directory / "identity.json"
        if marker.is_file():
            check_identity(self.directory, json.loads(marker.read_text()), self.identity)
        best_weights = None
        best = tf.train.latest_checkpoint(str(self.directory / "best"))
        if best is not None:  # into the model, kept, then overwritten by "last"
            self.best_weights.restore(best).assert_existing_objects_matched()
            best_weights = self.model.get_weights()
        self.state.restore(latest).assert_existing_objects_matched()
        self.resumed_after = int(self.epoch.numpy())
        logger.info("Resuming from %s: %d epoch(s) finished", latest, self.resumed_after)
        print(f"Resuming: {self.resumed_after} epoch(s) finished (checkpoint {latest})", flush=True)
        return self.resumed_after, best_weights

    def save(self, epoch: int, improved: bool, history: list[dict]) -> None:
        """Record epoch `epoch` as finished (after the early-stopping update); every worker calls it."""
        if self.chief and not (self.directory / "identity.json").is_file():
            from keras_music.config import save_json

            self.directory.mkdir(parents=True, exist_ok=True)
            save_json(self.directory / "identity.json", self.identity)
        if improved:  # before "last": a kill in between redoes this epoch, which saves it again
            self.managers["best"].save(checkpoint_number=epoch)  # read back only when resuming
        self.epoch.assign(epoch + 1)
        self.history.assign(json.dumps(history))
        self.managers["last"].save(checkpoint_number=epoch)
        if not self.chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)

    def remove(self) -> None:
        """Worker 0, once the run folder is complete: the checkpoints are no longer needed."""
        if self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)


def fit_multi_worker(strategy, model, train_dataset, clock, epochs: int, patience: int, min_epochs: int,
                     validate, on_epoch=None, checkpoint: WorkerCheckpoint | None = None) -> list[dict]:
    """Train `model` (built and compiled in `strategy.scope()`) with early stopping on `validate()`.

    Args:
        train_dataset: batches of `(inputs, labels, mask)` at the global batch size, full
            batches only (`fill_last_batch=True`), training stream of `clock`.
        validate: callable returning the validation macro ROC-AUC of the current weights.
        on_epoch: optional callable `(epoch, logs)` for progress.
        checkpoint: WorkerCheckpoint or None. Saves after every epoch and resumes from the
            last finished one (see the module docstring).

    Returns:
        Per-epoch logs (`loss`, `val_macro_auc`); the best epoch's weights are restored.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    distributed = strategy.experimental_distribute_dataset(train_dataset.with_options(options))
    loss = model.loss

    @tf.function
    def train_step(batch):
        def step(inputs, labels, mask):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                local = tf.reduce_sum(loss.call(labels, logits) * mask)
                known = tf.distribute.get_replica_context().all_reduce("sum", tf.reduce_sum(mask))
                scaled = local / tf.maximum(known, 1.0)
            gradients = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return local, tf.reduce_sum(mask)

        local, known = strategy.run(step, args=batch)
        return strategy.reduce("SUM", local, axis=None), strategy.reduce("SUM", known, axis=None)

    history, best, best_weights, wait, first = [], -np.inf, None, 0, 0
    if checkpoint is not None:
        first, best_weights = checkpoint.restore()
    if first:
        best, wait = float(checkpoint.best.numpy()), int(checkpoint.wait.numpy())
        history = json.loads(checkpoint.history.numpy().decode())
        stopped = first > min_epochs and wait >= patience
        first = epochs if stopped else first
    for epoch in range(first, epochs):
        clock.set(epoch)
        start, total, count = time.perf_counter(), 0.0, 0.0
        for batch in distributed:
            batch_loss, batch_known = train_step(batch)
            total, count = total + float(batch_loss), count + float(batch_known)
        score = float(validate())
        logs = {"loss": total / max(count, 1.0), "val_macro_auc": score, "seconds": time.perf_counter() - start}
        history.append({"epoch": epoch, **logs})
        if on_epoch:
            on_epoch(epoch, logs)
        improved = epoch >= min_epochs and score > best
        if improved:  # every worker holds the same (synchronised) weights
            best, wait, best_weights = score, 0, model.get_weights()
        elif epoch >= min_epochs:
            wait += 1
        if checkpoint is not None:
            checkpoint.best.assign(best)
            checkpoint.wait.assign(wait)
            checkpoint.save(epoch, improved, history)
        if epoch >= min_epochs and wait >= patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history
