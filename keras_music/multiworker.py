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
"""

from __future__ import annotations

import json
import logging
import os
import time

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


def fit_multi_worker(strategy, model, train_dataset, clock, epochs: int, patience: int, min_epochs: int,
                     validate, on_epoch=None) -> list[dict]:
    """Train `model` (built and compiled in `strategy.scope()`) with early stopping on `validate()`.

    Args:
        train_dataset: batches of `(inputs, labels, mask)` at the global batch size, full
            batches only (`fill_last_batch=True`), training stream of `clock`.
        validate: callable returning the validation macro ROC-AUC of the current weights.
        on_epoch: optional callable `(epoch, logs)` for progress.

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

    history, best, best_weights, wait = [], -np.inf, None, 0
    for epoch in range(epochs):
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
        if epoch < min_epochs:
            continue
        if score > best:
            best, best_weights, wait = score, model.get_weights(), 0
        else:
            wait += 1
            if wait >= patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history
