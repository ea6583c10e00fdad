"""Padded, masked tf.data streams from a feature store or an .npz folder."""

from __future__ import annotations

import numpy as np
import pytest

from keras_music.config import FeatureRecipe
from keras_music.data.mer4q import NpzClips
from keras_music.data.sequences import ClipSource, EpochClock, SequenceConfig, feature_statistics, make_dataset
from keras_music.data.store import FeatureStore, serialize_clip
from keras_music.data.tags import TagTable

LENGTHS = {"c0": 7, "c1": 30, "c2": 12, "c3": 1, "c4": 25, "c5": 18}


def clip_features(clip_id):
    mel, mfcc = clip_arrays(clip_id)
    return {"mel": mel, "mfcc": mfcc}


def clip_arrays(clip_id):
    rng = np.random.default_rng(int(clip_id[1:]))
    frames = LENGTHS[clip_id]
    # float16-exact values, so store and npz round trips are lossless
    return (rng.integers(-100, 20, (frames, 8)).astype("float32"), rng.integers(-5, 5, (frames, 3)).astype("float32"))


@pytest.fixture
def tags():
    ids = sorted(LENGTHS)
    rng = np.random.default_rng(0)
    return TagTable(ids, ["x", "y"], rng.integers(0, 2, (6, 2)).astype("float32"),
                    rng.integers(0, 2, (6, 2)).astype("float32"))


@pytest.fixture(params=["npz", "store"])
def source(request, tmp_path):
    if request.param == "npz":
        (tmp_path / "features").mkdir()
        for clip_id in LENGTHS:
            mel, mfcc = clip_arrays(clip_id)
            np.savez(tmp_path / "features" / f"{clip_id}.npz", mel=mel, mfcc=mfcc)
        return ClipSource.from_npz(NpzClips(tmp_path))
    store = FeatureStore(tmp_path / "store")
    store.open_for_writing(FeatureRecipe(n_mels=8, n_mfcc=3))
    records = [({"clip_id": c, "source": c, "frames": LENGTHS[c], "seconds": 0.0}, serialize_clip(c, clip_features(c)))
               for c in ("c3", "c1", "c5", "c0", "c4", "c2")]  # stored out of id order
    store.write_shard(records[:4])
    store.write_shard(records[4:])
    return ClipSource.from_store(store)


def test_padded_batches_hold_exactly_each_unpadded_example(source, tags):
    ids = ["c0", "c1", "c2", "c3", "c4"]
    dataset = make_dataset(source, tags, ids, SequenceConfig(batch_size=2), training=False)
    seen = 0
    for inputs, labels, mask in dataset.as_numpy_iterator():
        for row in range(len(inputs["length"])):
            length = inputs["length"][row]
            clip_id = next(c for c in ids if LENGTHS[c] == length)
            mel, mfcc = clip_arrays(clip_id)
            np.testing.assert_array_equal(inputs["mel"][row, :length], mel)
            np.testing.assert_array_equal(inputs["mfcc"][row, :length], mfcc)
            assert not inputs["mel"][row, length:].any() and not inputs["mfcc"][row, length:].any()
            expected = tags.rows([clip_id])
            np.testing.assert_array_equal(labels[row], expected.labels[0])
            np.testing.assert_array_equal(mask[row], expected.mask[0])
            seen += 1
    assert seen == len(ids)


def test_training_crops_are_seeded_windows_of_the_clip(source, tags):
    config = SequenceConfig(crop_frames=10, batch_size=6)

    def one_epoch(seed):
        inputs, labels, _ = next(make_dataset(source, tags, sorted(LENGTHS), config, training=True,
                                              seed=seed, clock=EpochClock()).as_numpy_iterator())
        return inputs, labels

    first, again, other = one_epoch(3), one_epoch(3), one_epoch(4)
    np.testing.assert_array_equal(first[0]["mel"], again[0]["mel"])
    assert not np.array_equal(first[0]["mel"], other[0]["mel"])
    np.testing.assert_array_equal(np.sort(first[0]["length"]), sorted(min(n, 10) for n in LENGTHS.values()))
    for row, length in enumerate(first[0]["length"]):
        clip_id = next(c for c in LENGTHS if LENGTHS[c] == length) if length < 10 else None
        window = first[0]["mel"][row, :length]
        candidates = [c for c in LENGTHS if LENGTHS[c] >= length] if clip_id is None else [clip_id]
        assert any(any(np.array_equal(window, clip_arrays(c)[0][s:s + length])
                       for s in range(LENGTHS[c] - length + 1)) for c in candidates)


def test_bucketed_evaluation_keeps_every_clip(source, tags):
    config = SequenceConfig(batch_size=2, bucket_boundaries=(10, 20))
    lengths = [n for inputs, _, _ in make_dataset(source, tags, sorted(LENGTHS), config).as_numpy_iterator()
               for n in inputs["length"]]
    assert sorted(lengths) == sorted(LENGTHS.values())


def test_statistics_use_only_the_given_clips(source):
    stats = feature_statistics(source, ["c1", "c4"])
    frames = np.concatenate([clip_arrays("c1")[0], clip_arrays("c4")[0]])
    np.testing.assert_allclose(stats["mel_mean"], frames.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["mel_std"], frames.std(axis=0), rtol=1e-5)


def test_normalised_stream(source, tags):
    stats = feature_statistics(source, sorted(LENGTHS))
    inputs, _, _ = next(make_dataset(source, tags, ["c1"], stats=stats).as_numpy_iterator())
    expected = (clip_arrays("c1")[0] - stats["mel_mean"]) / stats["mel_std"]
    np.testing.assert_allclose(inputs["mel"][0], expected, rtol=1e-5, atol=1e-5)


def test_unknown_clip_ids_are_named(source, tags):
    with pytest.raises(ValueError, match="not in the feature source"):
        make_dataset(source, tags, ["c0", "nope"])


def test_each_epoch_draws_new_crops_and_order_from_the_clock_alone(source, tags):
    clock = EpochClock()
    dataset = make_dataset(source, tags, sorted(LENGTHS), SequenceConfig(crop_frames=5, batch_size=6),
                           training=True, seed=0, clock=clock)

    def epoch(number):
        clock.set(number)
        inputs, labels, _ = next(dataset.as_numpy_iterator())
        return inputs["mel"], labels

    first, second, third = epoch(0), epoch(1), epoch(2)
    assert not np.array_equal(first[0], second[0]) and not np.array_equal(second[0], third[0])
    # Epoch 1 again, after other passes, in a fresh dataset (as after a restart): the same batch.
    again = make_dataset(source, tags, sorted(LENGTHS), SequenceConfig(crop_frames=5, batch_size=6),
                         training=True, seed=0, clock=clock)
    clock.set(1)
    inputs, labels, _ = next(again.as_numpy_iterator())
    np.testing.assert_array_equal(inputs["mel"], second[0])
    np.testing.assert_array_equal(labels, second[1])
    with pytest.raises(ValueError, match="need an EpochClock"):
        make_dataset(source, tags, ["c1"], training=True)


def test_vector_stream_order_follows_the_clock(tags):
    from keras_music.data.sequences import make_vector_dataset

    clock = EpochClock()
    vectors = np.arange(12, dtype="float32").reshape(6, 2)
    dataset = make_vector_dataset(vectors, tags, batch_size=6, training=True, seed=1, clock=clock)
    orders = []
    for number in (0, 1, 0):
        clock.set(number)
        orders.append(next(dataset.as_numpy_iterator())[0]["features"][:, 0].tolist())
    assert sorted(orders[0]) == [0, 2, 4, 6, 8, 10] and orders[0] == orders[2] != orders[1]


def test_filled_last_batch_adds_only_masked_rows(source, tags):
    config = SequenceConfig(batch_size=4)
    batches = list(make_dataset(source, tags, sorted(LENGTHS), config, fill_last_batch=True).as_numpy_iterator())
    assert [len(b[0]["length"]) for b in batches] == [4, 4]  # 6 clips + 2 fillers
    masks = np.concatenate([b[2] for b in batches])
    lengths = np.concatenate([b[0]["length"] for b in batches])
    assert sorted(lengths[:6]) == sorted(LENGTHS.values())  # every real clip once (store order may differ)
    assert masks[:6].sum() == tags.mask.sum() and not masks[6:].any()
