"""tf.data pipelines of padded named-feature sequences with labels and a label mask.

Each element is `(inputs, labels, mask)`, which `model.fit` takes as
`(x, y, sample_weight)`:

* `inputs`: dict with one entry per named feature of the source (for the 4Q recipe `mel`
  `(batch, T, n_mels)` and `mfcc` `(batch, T, n_mfcc)`), right-padded with zeros, and
  `length` `(batch,)`, the number of real frames of each example (models turn it into a
  time mask; right padding keeps the cuDNN LSTM path usable).
* `labels`, `mask`: float32 `(batch, tags)`; mask 0 marks unknown cells.

Training streams take a seeded random crop of `crop_frames` per clip per epoch (short
clips stay whole) in a seeded order; both depend only on `(seed, epoch)`, where the epoch
comes from an `EpochClock` that `model.fit` keeps in step, so a run resumed at epoch e
sees exactly the batches an uninterrupted run sees. Evaluation streams take whole clips,
optionally bucketed by length.
Scoring by windows of the training crop length every `window_hop` frames lives in
`keras_music.scoring` (one rule for evaluation, export and predict).
Normalisation statistics come from training clips only (`feature_statistics`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_music.data.tags import TagTable

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    """How clips are cut and batched.

    Args:
        crop_frames: int. Frames per training crop; 0 = whole clips. The default 216 is
            10 s at 22,050 Hz with hop 1024, as good as 20 s crops at half the cost.
        batch_size: int. Examples per batch.
        shuffle_buffer: int. Clips in the shuffle buffer (training only).
        bucket_boundaries: tuple of int. Length boundaries for `bucket_by_sequence_length`
            in evaluation streams (less padding); empty = one `padded_batch`.
        window_hop: int. Scoring: windows of `crop_frames` start every `window_hop` frames
            (the last one ends at the clip's end) and their logits are averaged per clip;
            0 scores whole clips in one pass. The default, half a crop, gives 5 windows per
            30 s clip and scored better than whole clips on 4Q validation data.
        validate_on_windows: bool. Validation (early stopping, the tuner's objective) scores
            clips as test clips are scored, by their windows' mean logits, instead of one
            pass over each whole clip; so the epoch kept is the best one by the test rule.
    """

    crop_frames: int = 216
    batch_size: int = 16
    shuffle_buffer: int = 1024
    bucket_boundaries: tuple[int, ...] = ()
    window_hop: int = 108
    validate_on_windows: bool = False


class EpochClock:
    """The epoch number that training streams draw their order and crops from.

    A training stream reads it whenever a new pass over the data starts (Keras starts one
    per epoch, after `on_epoch_begin`), so epoch e always gets the same batches, whatever
    ran before in this process. `callback()` keeps it in step with `model.fit`.
    """

    def __init__(self, epoch: int = 0):
        self.variable = tf.Variable(epoch, dtype=tf.int64, trainable=False, name="epoch_clock")

    def set(self, epoch: int) -> None:
        self.variable.assign(epoch)

    def callback(self):
        import keras

        clock = self

        class SetEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.set(epoch)

        return SetEpoch()


def _epoch_passes(clock: EpochClock, one_pass, cardinality: int) -> tf.data.Dataset:
    """A dataset whose every iteration is `one_pass(epoch)` for the clock's current epoch."""
    return tf.data.Dataset.from_tensors(0).flat_map(lambda _: one_pass(clock.variable.read_value())).apply(
        tf.data.experimental.assert_cardinality(cardinality))


class ClipSource:
    """Where sequences come from: a feature store or a folder of `.npz` clips.

    `dataset(clip_ids)` yields dicts `{"clip_id", **features}` for exactly those ids, one
    float32 `(T, dims)` tensor per name of `feature_names` (all with the same T).
    """

    def __init__(self, clip_ids, make_dataset, feature_names=("mel", "mfcc")):
        self._clip_ids = list(clip_ids)
        self._make_dataset = make_dataset
        self.feature_names = tuple(feature_names)

    @classmethod
    def from_store(cls, store) -> "ClipSource":
        ids = [entry["clip_id"] for entry in store.manifest()]
        features = store.features

        def with_shapes(clip):
            return {"clip_id": clip["clip_id"],
                    **{name: tf.ensure_shape(clip[name], [None, dims]) for name, dims in features.items()}}

        def make(wanted):
            table = id_table(wanted)
            dataset = store.dataset().filter(lambda clip: table.lookup(clip["clip_id"]) >= 0)
            return dataset.map(with_shapes)

        return cls(ids, make, tuple(features))

    @classmethod
    def from_npz(cls, clips) -> "ClipSource":
        """From `keras_music.data.mer4q.NpzClips`.

        The clips of a split are read (and checked) once, when its dataset is made, and
        held in memory as float16 ragged tensors (the 765 4Q clips take ~85 MB), so epochs
        never touch the files or the Python interpreter.
        """

        names = tuple(clips.feature_names)

        def make(wanted):
            arrays = [clips.load(clip_id) for clip_id in wanted]
            lengths = [features[names[0]].shape[0] for features in arrays]
            ragged = {name: tf.RaggedTensor.from_row_lengths(
                np.concatenate([features[name] for features in arrays]).astype("float16"), lengths)
                for name in names}
            dataset = tf.data.Dataset.from_tensor_slices({"clip_id": list(wanted), **ragged})
            return dataset.map(lambda c: {"clip_id": c["clip_id"],
                                          **{name: tf.cast(c[name], tf.float32) for name in names}})

        return cls(clips.clip_ids(), make, names)

    def clip_ids(self) -> list[str]:
        return list(self._clip_ids)

    def dataset(self, clip_ids) -> tf.data.Dataset:
        missing = sorted(set(clip_ids) - set(self._clip_ids))
        if missing:
            raise ValueError(f"{len(missing)} clip id(s) not in the feature source, e.g. {missing[:5]}.")
        return self._make_dataset(list(clip_ids))


def id_table(clip_ids) -> tf.lookup.StaticHashTable:
    """clip id -> row index (-1 when absent)."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(clip_ids)), tf.range(len(clip_ids), dtype=tf.int64)),
        default_value=-1)


def feature_statistics(source: ClipSource, clip_ids) -> dict[str, list[float]]:
    """Per-dimension mean and standard deviation of every named feature over all frames of `clip_ids`:
    `{"<name>_mean": [...], "<name>_std": [...]}` per name (e.g. `mel_mean`, which models read).

    Computed on training clips only, then used inside the model (or by `make_dataset`).
    """
    names = source.feature_names
    sums, squares, count = {}, {}, 0
    for clip in source.dataset(clip_ids).as_numpy_iterator():
        for key in names:
            values = clip[key].astype("float64")
            sums[key] = sums.get(key, 0.0) + values.sum(axis=0)
            squares[key] = squares.get(key, 0.0) + (values ** 2).sum(axis=0)
        count += clip[names[0]].shape[0]
    if count == 0:
        raise ValueError("no frames to compute statistics from (empty training split?).")
    stats = {}
    for key in names:
        mean = sums[key] / count
        std = np.sqrt(np.maximum(squares[key] / count - mean ** 2, 0.0))
        stats[f"{key}_mean"] = mean.tolist()
        stats[f"{key}_std"] = np.where(std > 1e-6, std, 1.0).tolist()
    return stats


NOT_FEATURES = ("clip_id", "length")  # keys of a clip dict that are not frame-sequence features


def feature_names(clip) -> list[str]:
    """The frame-sequence features of a clip dict (`mel`, `mfcc`, ...), in its own order."""
    return [name for name in clip if name not in NOT_FEATURES]


def random_crop(clip, crop_frames: int, seed):
    """A window of `crop_frames` frames of every feature at a random start (the whole clip when it is shorter).

    `seed` is a stateless seed pair, so the same pipeline seed gives the same crops in every
    run, and a new pair each epoch gives new crops.
    """
    names = feature_names(clip)
    frames = tf.shape(clip[names[0]])[0]
    start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=tf.maximum(frames - crop_frames, 0) + 1,
                                        dtype=tf.int32)
    end = tf.minimum(start + crop_frames, frames)
    return {**clip, **{name: clip[name][start:end] for name in names}}


def shuffle_blocks(dataset: tf.data.Dataset, block: int, seed) -> tf.data.Dataset:
    """Permute each run of `block` consecutive clips with a stateless seed pair.

    `Dataset.shuffle` cannot take a seed computed at run time (the epoch) in every case, so
    the order is drawn here: with `block` >= the number of clips (the default buffer of 1,024
    covers every shared dataset) it is a uniform shuffle of the whole split.
    """
    def permute(clips):
        count = tf.shape(clips["clip_id"], out_type=tf.int64)[0]
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=seed)
        return {key: tf.gather(value, order) for key, value in clips.items()}

    def dense(clip):
        return {key: value.to_tensor() if isinstance(value, tf.RaggedTensor) else value for key, value in clip.items()}

    return dataset.ragged_batch(block).map(permute).unbatch().map(dense)


def make_dataset(source: ClipSource, tags: TagTable, clip_ids, config: SequenceConfig = SequenceConfig(),
                 training: bool = False, seed: int = 0, stats: dict | None = None,
                 fill_last_batch: bool = False, clock: EpochClock | None = None) -> tf.data.Dataset:
    """The `(inputs, labels, mask)` stream of `clip_ids` (see the module docstring).

    Args:
        source: ClipSource. Features.
        tags: TagTable. Labels and mask; every id of `clip_ids` must be in it.
        clip_ids: the clips of one split.
        config: SequenceConfig. Cropping and batching.
        training: bool. Shuffle and crop when True; whole clips in order when False.
        seed: int. Seeds shuffling and crops (with the clock's epoch).
        clock: EpochClock. Required for training streams (see the module docstring).
        stats: dict or None. `feature_statistics` output to standardise in the pipeline;
            None leaves features raw (the models normalise inside).
        fill_last_batch: bool. Complete the last batch with copies of the first clip whose
            mask is all 0, so they change no loss or metric. For `MirroredStrategy`, which
            otherwise can hand a replica an empty batch, and TensorFlow's Conv2D returns
            wrongly shaped outputs for empty batches in graph mode.
    """
    clip_ids = list(clip_ids)
    if not clip_ids:
        raise ValueError("no clips in this split.")
    # Known length (a store filtered by id has none), so Keras knows the steps per epoch.
    dataset = source.dataset(clip_ids).apply(tf.data.experimental.assert_cardinality(len(clip_ids)))
    rows = tags.rows(clip_ids)
    row_of = id_table(rows.clip_ids)
    labels, mask = tf.constant(rows.labels), tf.constant(rows.mask)

    if training:
        if clock is None:
            raise ValueError("training streams need an EpochClock (its callback keeps it in step with fit).")
        stream, buffer = dataset, min(config.shuffle_buffer, len(clip_ids))

        def one_pass(epoch):
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            shuffled = shuffle_blocks(stream, buffer, epoch_seed)
            if not config.crop_frames:
                return shuffled
            return shuffled.enumerate().map(
                lambda i, clip: random_crop(clip, config.crop_frames,
                                            tf.random.experimental.stateless_fold_in(epoch_seed, i)),
                num_parallel_calls=AUTOTUNE, deterministic=True)

        dataset = _epoch_passes(clock, one_pass, len(clip_ids))

    names = source.feature_names

    def to_example(clip):
        inputs = {name: clip[name] for name in names}
        if stats is not None:
            inputs = {name: (value - stats[f"{name}_mean"]) / stats[f"{name}_std"] for name, value in inputs.items()}
        row = row_of.lookup(clip["clip_id"])
        inputs["length"] = tf.shape(inputs[names[0]])[0]
        return inputs, tf.gather(labels, row), tf.gather(mask, row)

    dataset = dataset.map(to_example, num_parallel_calls=AUTOTUNE)
    missing = -len(clip_ids) % config.batch_size
    if fill_last_batch and missing:
        filler = source.dataset(clip_ids[:1]).map(to_example).map(
            lambda inputs, label, weight: (inputs, label, tf.zeros_like(weight)))
        dataset = dataset.concatenate(filler.repeat(missing))
    if config.bucket_boundaries and not training:
        dataset = dataset.bucket_by_sequence_length(
            lambda inputs, *_: inputs["length"], bucket_boundaries=list(config.bucket_boundaries),
            bucket_batch_sizes=[config.batch_size] * (len(config.bucket_boundaries) + 1))
    else:
        dataset = dataset.padded_batch(config.batch_size)
    return dataset.prefetch(AUTOTUNE)


def make_vector_dataset(vectors: np.ndarray, tags: TagTable, batch_size: int, training: bool = False,
                        seed: int = 0, clock: EpochClock | None = None, repeats=None) -> tf.data.Dataset:
    """`({"features": (batch, dims)}, labels, mask)` for per-clip vectors, rows in `tags` order;
    training streams are shuffled by `(seed, clock epoch)`. `repeats[i]`: vectors of clip i
    (e.g. one per window; consecutive), each with the clip's labels; default one each."""
    repeats = np.ones(len(tags.clip_ids), "int64") if repeats is None else np.asarray(repeats)
    if len(vectors) != repeats.sum() or len(repeats) != len(tags.clip_ids):
        raise ValueError(f"{len(vectors)} vectors for {len(tags.clip_ids)} labelled clips ({int(repeats.sum())} "
                         "vectors expected).")
    columns = (tf.constant(vectors.astype("float32")), tf.constant(np.repeat(tags.labels, repeats, axis=0)),
               tf.constant(np.repeat(tags.mask, repeats, axis=0)))
    if not training:
        dataset = tf.data.Dataset.from_tensor_slices(columns)
    elif clock is None:
        raise ValueError("training streams need an EpochClock (its callback keeps it in step with fit).")
    else:
        def one_pass(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(len(vectors)), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order).map(lambda i: tuple(tf.gather(c, i) for c in columns))

        dataset = _epoch_passes(clock, one_pass, len(vectors))
    dataset = dataset.map(lambda features, labels, mask: ({"features": features}, labels, mask))
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
