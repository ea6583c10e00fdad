"""Scoring a clip by windows: the one rule shared by evaluation, the exported graphs and predict.

A sequence tagger is trained on crops of `SequenceConfig.crop_frames` frames, so a clip is
scored the same way everywhere: windows of `window` frames every `hop` frames, the last
one ending at the clip's end (`window_starts`), cut by `clip_windows`, and the clip's
logits are the mean of its windows' logits (`mean_logits` in graphs, `WindowMeans` in
numpy). `window` or `hop` 0 scores the whole clip in one pass.

* `keras_music.evaluate` (`tagger_logits`, `score_tagger`) scores feature sources through
  `window_dataset`;
* `keras_music.serving.signatures` builds the exported `serve_audio` graph with `clip_windows` +
  `mean_logits`;
* `keras_music.predict` sends whole files (or, for very long files, the chunks of
  `chunk_plan`, whose windows are exactly the file's windows) to `serve_audio`.

Feature dicts are `{name: (T, dims), ...}` (for example `mel`, `mfcc`); the keys
`clip_id` and `length` are not features.
"""

from __future__ import annotations

import dataclasses
import math
import weakref

import numpy as np
import tensorflow as tf

from keras_music.data.sequences import feature_names
from keras_music.models.family import CLIP_VECTOR_INPUT

def window_starts(frames, window: int, hop: int):
    """Start frames of `window`-frame windows every `hop` frames; the last ends at `frames`.

    A clip shorter than `window` gives one window, the whole clip. TF ops, so it works in
    graphs (the exported `serve_audio`) as well as eagerly.
    """
    last = tf.maximum(frames - window, 0)
    starts = tf.range(0, last + 1, hop)
    return tf.cond(starts[-1] < last, lambda: tf.concat([starts, [last]], axis=0), lambda: starts)


def clip_windows(features: dict, window: int, hop: int) -> dict:
    """One clip's features `{name: (T, dims)}` -> the model inputs of its windows.

    Returns `{name: (n, W, dims), "length": (n,)}` with W = min(window, T): every window
    is full (the last ends at the clip's end) and a shorter clip is one window, so no
    padding is needed. `window` or `hop` 0: the whole clip as one window.
    """
    names = feature_names(features)
    if not names:
        raise ValueError(f"no feature in the clip dict (keys: {sorted(features)}); expected e.g. mel, mfcc.")
    frames = tf.shape(features[names[0]])[0]
    if not (window and hop):
        return {**{name: features[name][None] for name in names}, "length": frames[None]}
    starts = window_starts(frames, window, hop)
    width = tf.minimum(frames, window)
    index = starts[:, None] + tf.range(width)[None, :]
    return {**{name: tf.gather(features[name], index) for name in names},
            "length": tf.fill(tf.shape(starts), width)}


def mean_logits(window_logits):
    """A clip's logits from its windows' `(n, tags)` logits (graph form of `WindowMeans`)."""
    return tf.reduce_mean(window_logits, axis=0)


class WindowMeans:
    """Running per-clip mean of window logits, for windows that arrive in batches.

    Sums in float64, so the order of batches (or chunks of a long file) does not matter.
    """

    def __init__(self, clips: int, tags: int):
        self.sums = np.zeros((clips, tags))
        self.counts = np.zeros(clips)

    def add(self, rows, logits) -> None:
        """Add windows' `logits` `(n, tags)` to the clips at `rows` `(n,)`."""
        np.add.at(self.sums, rows, np.asarray(logits))
        np.add.at(self.counts, rows, 1)

    def means(self) -> np.ndarray:
        if not self.counts.all():
            raise ValueError(f"{int((self.counts == 0).sum())} clip(s) produced no window (empty sequences?).")
        return self.sums / self.counts[:, None]


def window_dataset(source, clip_ids, window: int, hop: int, batch_size: int) -> tf.data.Dataset:
    """Batches of `(inputs, clip_index)`: every window of every clip (`clip_windows`),
    `clip_index` = position in `clip_ids`, so callers average outputs per clip.

    Args:
        source: `keras_music.data.sequences.ClipSource`.
    """
    from keras_music.data.sequences import AUTOTUNE, id_table

    index = id_table(list(clip_ids))

    def windows(clip):
        row = index.lookup(clip["clip_id"])
        cut = clip_windows({name: clip[name] for name in feature_names(clip)}, window, hop)
        return tf.data.Dataset.from_tensor_slices(cut).map(lambda inputs: (inputs, row))

    return source.dataset(clip_ids).flat_map(windows).padded_batch(batch_size).prefetch(AUTOTUNE)


_INFERENCE = weakref.WeakKeyDictionary()  # model -> its graph function (holds the model weakly)


def inference(model):
    """`model(inputs, training=False)` as a TensorFlow graph, made once per model: scoring calls
    it batch after batch, and eager calls of a recurrent model are about 20x slower (mlp_lstm,
    100 4Q clips by windows: 35 s eager, 1.5 s as a graph, the same logits)."""
    call = _INFERENCE.get(model)
    if call is None:
        held = weakref.ref(model)
        call = _INFERENCE[model] = tf.function(lambda inputs: held()(inputs, training=False), reduce_retracing=True)
    return call


def tagger_logits(model, emotion, clip_ids, sequence_config):
    """`(logits, labels, mask)` of a tagger on `clip_ids`: per-clip vectors, or sequences scored
    as the mean logits of their windows (`SequenceConfig.window_hop`; whole clips when 0)."""
    from keras_music.data.emotion import emotion_dataset

    clip_ids = list(clip_ids)
    call = inference(model)
    vectors = CLIP_VECTOR_INPUT in model.input  # a `clip_vector` family's model
    if vectors or not (sequence_config.window_hop and sequence_config.crop_frames):
        # A store streams clips in its own order: take labels from the same elements.
        batches = [(np.asarray(call(inputs)), label.numpy(), mask.numpy())
                   for inputs, label, mask in emotion_dataset(emotion, clip_ids, sequence_config, vectors)]
        logits, labels, masks = (np.concatenate(part) for part in zip(*batches))
        return logits, labels, masks
    rows = emotion.tags.rows(clip_ids)
    means = WindowMeans(len(clip_ids), len(emotion.tags.tags))
    for inputs, row in window_dataset(emotion.sequences(), clip_ids, sequence_config.crop_frames,
                                      sequence_config.window_hop, sequence_config.batch_size):
        means.add(row.numpy(), call(inputs))
    return means.means(), rows.labels, rows.mask


def score_tagger(model, emotion, clip_ids, sequence_config) -> dict:
    """`tagging_report` of a tagger on `clip_ids` (see `tagger_logits`)."""
    from keras_music.reports import tagging_report

    logits, labels, masks = tagger_logits(model, emotion, clip_ids, sequence_config)
    return tagging_report(emotion.tags.tags, labels, masks, logits)


# --- long files in chunks -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Chunk:
    """Samples `[start, end)` of a file, scored alone; its frame 0 is the file's frame
    `first_frame`, and it contributes the file's windows starting in `[keep_from, keep_to)`."""

    start: int
    end: int
    first_frame: int
    keep_from: int
    keep_to: float


def chunk_plan(num_samples: int, recipe, window: int, hop: int, max_samples: int) -> list[Chunk]:
    """Chunks of at most about `max_samples` samples whose kept windows are exactly the file's windows.

    Why it is exact: a chunk starts on a frame boundary (a multiple of `hop_length` samples)
    that is also on the window grid (a multiple of `hop` frames), so its window starts are
    file window starts; it starts `margin` frames (a multiple of `hop`) before the first
    window it keeps and ends after the last sample the frames of its last kept window read,
    so those frames (centred STFT included) see the same samples as in the whole file. The
    last chunk ends at the file's end and also keeps the file's last, off-grid window.

    Args:
        recipe: `FeatureRecipe` (`n_fft`, `hop_length`, `center`, `num_frames`).
        window, hop: frames, the model's scoring window and hop.
        max_samples: longest chunk wanted; a file no longer than that is one chunk.
    """
    frames = recipe.num_frames(num_samples)
    whole = [Chunk(0, num_samples, 0, 0, math.inf)]
    if not (window and hop) or frames <= window or num_samples <= max_samples:
        return whole
    offset = recipe.n_fft // 2 if recipe.center else 0  # frame f reads samples [f*hl - offset, +n_fft)
    hl = recipe.hop_length
    margin = math.ceil(math.ceil(offset / hl) / hop) * hop
    tail_frames = math.ceil(recipe.n_fft / hl)
    # Grid windows kept per chunk; the last chunk may also hold up to `hop` more frames (the file's end).
    per_chunk = (max_samples // hl - margin - window - tail_frames) // hop
    if per_chunk < 1:
        raise ValueError(f"chunks of {max_samples} samples are too short for windows of {window} frames every "
                         f"{hop} (hop_length {hl}); use at least {(margin + window + tail_frames + hop) * hl} samples.")
    last_start = frames - window
    chunks, first = [], 0
    while True:
        keep_to = first + per_chunk * hop
        begin = max(0, first - margin)
        if keep_to > last_start:
            chunks.append(Chunk(begin * hl, num_samples, begin, first, math.inf))
            return chunks
        end = (keep_to - hop + window - 1) * hl - offset + recipe.n_fft
        chunks.append(Chunk(begin * hl, min(end, num_samples), begin, first, keep_to))
        first = keep_to


def kept_windows(chunk: Chunk, recipe, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """`(positions, file_starts)`: which of the chunk's windows (in `window_starts` order) it
    contributes, and their start frames in the file."""
    local = window_starts(recipe.num_frames(chunk.end - chunk.start), window, hop).numpy() if window and hop \
        else np.zeros(1, "int64")
    starts = local + chunk.first_frame
    # Only the last chunk ends where the file ends; another's own last, off-grid window reads past its end.
    on_grid = (starts % hop == 0) if hop and chunk.keep_to != math.inf else True
    positions = np.flatnonzero((starts >= chunk.keep_from) & (starts < chunk.keep_to) & on_grid)
    return positions, starts[positions]
