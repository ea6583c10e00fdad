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
import json
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_music.data.sequences import EpochClock, make_vector_dataset
from keras_music.models.compile import compile_tagger
from keras_music.models.spectral_layers import SpectralAugment
from keras_music.scoring import WindowMeans

logger = logging.getLogger("keras_music.training")

_CACHE: dict[str, dict[str, tuple[int, np.ndarray]]] = {}  # disk file -> clip -> (frames, windows)


def split_at(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """`(front, head)`: the model up to `layer`'s output, and the rest from there (same layers)."""
    boundary = model.get_layer(layer).output
    return keras.Model(model.inputs, boundary, name=f"{model.name}_front"), \
        keras.Model(boundary, model.output, name=f"{model.name}_head")


def inference_architecture(front: keras.Model) -> str:
    """The front end's architecture as inference runs it, canonical JSON (layers by name, keys
    sorted): `SpectralAugment` layers, the identity outside training, taken out and their outputs
    read from their inputs. So a front end with augmentation has the clean windows (and the cache)
    of the same front end without it."""
    config = json.loads(front.to_json())
    layers = config["config"]["layers"]
    bypass = {layer["name"]: layer["inbound_nodes"][0]["args"][0][0]["config"]["keras_history"]
              for layer in layers if layer["class_name"] == "SpectralAugment"}

    def rewire(value):
        if isinstance(value, dict):
            history = value.get("keras_history")
            if history and history[0] in bypass:
                return {**value, "keras_history": bypass[history[0]]}
            return {k: rewire(v) for k, v in value.items()}
        return [rewire(v) for v in value] if isinstance(value, list) else value

    config["config"]["layers"] = sorted((rewire(layer) for layer in layers if layer["name"] not in bypass),
                                        key=lambda layer: layer["name"])
    return json.dumps(config, sort_keys=True)


def front_fingerprint(front: keras.Model) -> str:
    """What the front end computes at inference: its architecture (`inference_architecture`), its
    weights and this package's version."""
    from keras_music.version import __version__

    digest = hashlib.sha1(__version__.encode())
    digest.update(inference_architecture(front).encode())
    for weight in front.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def embedding_cache_dir() -> Path:
    """Where window embeddings are cached: `$KERAS_MUSIC_CACHE/window_embeddings`."""
    from keras_music.config import cache_dir

    return cache_dir() / "window_embeddings"


def _disk_path(key: tuple) -> Path:
    return embedding_cache_dir() / (hashlib.sha1(json.dumps(key).encode()).hexdigest()[:24] + ".npz")


def _read_disk(path: Path) -> dict[str, tuple[int, np.ndarray]]:
    if not path.is_file():
        return {}
    try:
        with np.load(path) as arrays:
            return {clip: (int(arrays[f"frames/{clip}"]), arrays[f"windows/{clip}"])
                    for clip in (name.split("/", 1)[1] for name in arrays.files if name.startswith("windows/"))}
    except Exception as error:  # noqa: BLE001  (any damage: recomputed, never trusted)
        logger.warning("ignoring the embedding cache %s (%s: %s)", path, type(error).__name__, error)
        return {}


def _write_disk(path: Path, cached: dict[str, tuple[int, np.ndarray]]) -> None:
    """Write the cache file through a temporary file of its own (parallel writers never share
    one) renamed into place; a failure only costs the cache, never the run."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **{f"windows/{c}": w for c, (_, w) in cached.items()},
                         **{f"frames/{c}": np.int64(n) for c, (n, _) in cached.items()})
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as error:
        logger.warning("could not write the embedding cache %s (%s)", path, error)


def _clip_frames(emotion, clip_ids):
    """`(clip id, {name: (T, dims)})` of each clip, in the source's order."""
    source = emotion.sequences()
    for clip in source.dataset(clip_ids):
        yield clip["clip_id"].numpy().decode(), {name: clip[name] for name in source.feature_names}


def augmenter_of(front: keras.Model):
    """The front end's `SpectralAugment` layer, or None: its `copies` augmented passes join the clean one."""
    return next((layer for layer in front.layers if isinstance(layer, SpectralAugment)), None)


def clip_draws(clip_id: str, copy: int) -> list[int]:
    """A seed-generator state for augmented pass `copy` of a clip: the same draws for the same clip
    on every machine and in every subset of clips computed together."""
    digest = hashlib.sha1(f"{copy}:{clip_id}".encode()).digest()
    return [int.from_bytes(digest[:4], "little") >> 1, int.from_bytes(digest[4:8], "little") >> 1]


def window_embeddings(front: keras.Model, emotion, clip_ids, sequence_config, copy: int = 0
                      ) -> dict[str, np.ndarray]:
    """`{clip id: (windows, D)}`: the frozen front end on every scoring window of each clip.

    Each clip's windows are one batch, so a clip's vectors never depend on which other clips
    were computed with it. Cached in memory and on disk (`$KERAS_MUSIC_CACHE/window_embeddings`)
    by (resolved data path and recipe, front end: package version, architecture and weights;
    window, hop). An entry keeps its clip's frame count; entries read from disk are checked
    against the data once per process, and a clip whose length changed is recomputed (a store
    re-extracted in place with the same lengths is not detected: delete the cache then).

    `copy` >= 1: the front end's augmented pass number `copy` (its `SpectralAugment` layer in
    training mode, seeded per clip and pass by `clip_draws`; frozen batch norms stay in inference
    mode), cached apart from the clean pass (0)."""
    from keras_music.config import config_to_dict
    from keras_music.scoring import clip_windows

    window, hop = sequence_config.crop_frames, sequence_config.window_hop
    recipe = config_to_dict(emotion.recipe) if emotion.recipe else None
    where = str(Path(emotion.description).resolve()) if Path(emotion.description).exists() else emotion.description
    augmenter = augmenter_of(front) if copy else None
    if copy and augmenter is None:
        raise ValueError(f"{front.name}: augmented pass {copy} asked, but the front end has no SpectralAugment layer.")
    augmentation = (copy, json.dumps(augmenter.get_config(), sort_keys=True)) if copy else ()
    path = _disk_path((where, recipe, front_fingerprint(front), window, hop) + augmentation)
    if str(path) not in _CACHE:
        stored = _read_disk(path)
        lengths = ({c: len(next(iter(f.values()))) for c, f in _clip_frames(emotion, [c for c in emotion.tags.clip_ids
                                                                                     if c in stored])}
                   if stored else {})
        _CACHE[str(path)] = {c: entry for c, entry in stored.items() if lengths.get(c) == entry[0]}
    cached = _CACHE[str(path)]
    missing = [c for c in dict.fromkeys(clip_ids) if c not in cached]
    if missing:
        logger.info("%s: frozen front end on the windows of %d clips (computed once, then cached in %s)",
                    front.name, len(missing), path.parent)
        for clip, features in _clip_frames(emotion, missing):
            windows = clip_windows(features, window, hop)
            if augmenter is not None:
                augmenter.seed_generator.state.assign(np.asarray(clip_draws(clip, copy), "uint32"))
            cached[clip] = (int(features[next(iter(features))].shape[0]),
                            np.asarray(front(windows, training=bool(copy))))
        _write_disk(path, cached)
    return {c: cached[c][1] for c in clip_ids}


def training_embeddings(front: keras.Model, emotion, clip_ids, sequence_config) -> dict[str, np.ndarray]:
    """`{clip id: (windows, D)}` the head trains on: each clip's clean windows, then those of every
    augmented pass of the front end's `SpectralAugment` (none without one)."""
    augmenter = augmenter_of(front)
    passes = [window_embeddings(front, emotion, clip_ids, sequence_config, copy)
              for copy in range(augmenter.copies + 1 if augmenter else 1)]
    return {c: np.concatenate([p[c] for p in passes]) for c in clip_ids}


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
    if not train_ids or not val_ids:
        raise ValueError(f"{emotion.description}: the head needs training and validation clips, got "
                         f"{len(train_ids)} and {len(val_ids)}.")
    train = training_embeddings(front, emotion, train_ids, sequence_config)
    validation = window_embeddings(front, emotion, val_ids, sequence_config)
    clock = clock or EpochClock()
    return head.fit(
        _window_stream(train, emotion, train_ids, sequence_config.batch_size, True, training.seed, clock),
        validation_data=_window_stream(validation, emotion, val_ids, sequence_config.batch_size, False, 0, None),
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
