"""Fitting the head of a tagger whose front end is frozen, on window embeddings computed once.

A family such as `musicnn_head` keeps a pretrained network frozen up to one layer (its
`ModelFamily.frozen_output`); only what follows trains. That layer's output depends on
nothing but the window it sees, so this module computes it once for every scoring window
of every clip (`scoring.clip_windows`: `crop_frames` frames every `window_hop`) and fits
the head on those vectors: one example per window, labelled with its clip's tags, masked
loss and early stopping on validation windows as every tagger. The head shares its layers
with the full model, so the full model (front end + head) is what gets saved, exported and
scored, and a clip's score is still the mean of its window logits: `score_from_embeddings`
equals `scoring.score_tagger` on the full model (tested). On 2 CPU cores this turns hours of
frozen musicnn passes per fit into one pass over the data (cached in memory across the
folds and seeds of a benchmark) and seconds of head training.
"""

from __future__ import annotations

import hashlib
import logging

import keras
import numpy as np
import tensorflow as tf

from keras_music.data.sequences import EpochClock, make_vector_dataset
from keras_music.models.layers import compile_tagger
from keras_music.scoring import WindowMeans, window_dataset

logger = logging.getLogger("keras_music.training")

_CACHE: dict[tuple, dict[str, np.ndarray]] = {}


def split_at(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """`(front, head)`: the model up to `layer`'s output, and the rest from there (same layers)."""
    boundary = model.get_layer(layer).output
    return keras.Model(model.inputs, boundary, name=f"{model.name}_front"), \
        keras.Model(boundary, model.output, name=f"{model.name}_head")


def _fingerprint(front: keras.Model) -> str:
    digest = hashlib.sha1()
    for weight in front.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def window_embeddings(front: keras.Model, emotion, clip_ids, sequence_config) -> dict[str, np.ndarray]:
    """`{clip id: (windows, D)}`: the frozen front end on every scoring window of each clip.

    Cached in memory by (data, front-end weights, window, hop), so the folds and seeds of a
    benchmark compute each clip's windows once."""
    window, hop = sequence_config.crop_frames, sequence_config.window_hop
    key = (emotion.description, _fingerprint(front), window, hop)
    cached = _CACHE.setdefault(key, {})
    missing = [c for c in dict.fromkeys(clip_ids) if c not in cached]
    if missing:
        logger.info("%s: frozen front end on the windows of %d clips (computed once, then cached)",
                    front.name, len(missing))
        parts: dict[int, list[np.ndarray]] = {}
        for inputs, rows in window_dataset(emotion.sequences(), missing, window, hop, 64):
            outputs = np.asarray(front(inputs, training=False))
            for row, vector in zip(rows.numpy(), outputs):
                parts.setdefault(int(row), []).append(vector)
        for row, clip in enumerate(missing):
            cached[clip] = np.stack(parts[row])
    return {c: cached[c] for c in clip_ids}


def _window_stream(embeddings: dict, emotion, clip_ids, batch_size: int, training: bool, seed: int, clock):
    """`(vector, labels, mask)` batches, one row per window, labelled with its clip's tags."""
    vectors = np.concatenate([embeddings[c] for c in clip_ids])
    stream = make_vector_dataset(vectors, emotion.tags.rows(clip_ids), batch_size, training=training, seed=seed,
                                 clock=clock, repeats=[len(embeddings[c]) for c in clip_ids])
    return stream.map(lambda inputs, labels, mask: (inputs["features"], labels, mask))


def fit_head(model, frozen_output: str, emotion, train_ids, val_ids, training, sequence_config,
             epochs: int | None = None, verbose: int = 0, callbacks=(), clock: EpochClock | None = None):
    """Fit what follows `frozen_output` in `model` (the head shares the model's layers) on the
    windows of the training clips, validating on the windows of the validation clips."""
    front, head = split_at(model, frozen_output)
    # The model's own optimizer: the head's trainable variables are the model's, so the optimizer
    # state saved with the model matches it on reload.
    compile_tagger(head, emotion.tags.tags, 0.0, optimizer=model.optimizer)
    train_ids, val_ids = list(train_ids), list(val_ids)
    embeddings = window_embeddings(front, emotion, train_ids + val_ids, sequence_config)
    clock = clock or EpochClock()
    return head.fit(
        _window_stream(embeddings, emotion, train_ids, sequence_config.batch_size, True, training.seed, clock),
        validation_data=_window_stream(embeddings, emotion, val_ids, sequence_config.batch_size, False, 0, None),
        epochs=epochs or training.epochs, shuffle=False, verbose=verbose, callbacks=[clock.callback(), *callbacks])


def score_from_embeddings(model, frozen_output: str, emotion, clip_ids, sequence_config) -> dict:
    """`scoring.score_tagger` of `model` on `clip_ids`, its front end's window outputs cached."""
    from keras_music.reports import tagging_report

    front, head = split_at(model, frozen_output)
    clip_ids = list(clip_ids)
    embeddings = window_embeddings(front, emotion, clip_ids, sequence_config)
    means = WindowMeans(len(clip_ids), len(emotion.tags.tags))
    for row, clip in enumerate(clip_ids):
        windows = embeddings[clip]
        means.add(np.full(len(windows), row), head(tf.constant(windows), training=False))
    rows = emotion.tags.rows(clip_ids)
    return tagging_report(emotion.tags.tags, rows.labels, rows.mask, means.means())
