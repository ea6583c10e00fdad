"""Feature store record schema: named features, schema 2 (store.json), and schema-1 stores still read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_music.config import FeatureRecipe, config_to_dict, save_json
from keras_music.data.sequences import ClipSource, feature_statistics
from keras_music.data.store import SHARD_DIR, STORE_FILE, FeatureStore, StoreError, serialize_clip

RNG = np.random.default_rng(0)
CLIPS = {f"c{i}": {"mel": RNG.integers(-90, 0, (5 + i, 8)).astype("float32"),
                   "mfcc": RNG.integers(-9, 9, (5 + i, 3)).astype("float32")} for i in range(3)}


def old_record(clip_id: str, mel: np.ndarray, mfcc: np.ndarray) -> bytes:
    """The schema-1 record exactly as `serialize_clip(clip_id, mel, mfcc)` wrote it before named features."""
    def tensor(array):
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[tf.io.serialize_tensor(array.astype("float16")).numpy()]))

    return tf.train.Example(features=tf.train.Features(feature={
        "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode()])),
        "frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[mel.shape[0]])),
        "mel": tensor(mel), "mfcc": tensor(mfcc)})).SerializeToString()


def v1_store(root, recipe=FeatureRecipe(n_mels=8, n_mfcc=3)) -> FeatureStore:
    """A store as the unversioned code wrote it: recipe.json (old fields only), manifest, one shard, no store.json."""
    (root / SHARD_DIR).mkdir(parents=True)
    old_fields = {k: v for k, v in config_to_dict(recipe).items() if k != "mel_compression"}
    save_json(root / "recipe.json", old_fields)
    with tf.io.TFRecordWriter(str(root / SHARD_DIR / "00000.tfrecord")) as writer:
        for clip_id, arrays in CLIPS.items():
            writer.write(old_record(clip_id, arrays["mel"], arrays["mfcc"]))
    (root / "manifest.jsonl").write_text("".join(
        json.dumps({"clip_id": c, "source": c, "frames": len(a["mel"]), "seconds": 0.0, "shard": "00000.tfrecord"})
        + "\n" for c, a in CLIPS.items()))
    return FeatureStore(root)


def read(store: FeatureStore) -> dict[str, dict]:
    return {clip["clip_id"].decode(): clip for clip in store.dataset().as_numpy_iterator()}


def test_a_schema_1_store_reads_as_mel_and_mfcc(tmp_path):
    store = v1_store(tmp_path / "store")
    assert store.schema == 1 and store.features == {"mel": 8, "mfcc": 3}
    clips = read(store)
    for clip_id, arrays in CLIPS.items():
        for name in ("mel", "mfcc"):
            np.testing.assert_array_equal(clips[clip_id][name], arrays[name])
    source = ClipSource.from_store(store)
    assert source.feature_names == ("mel", "mfcc")
    assert set(feature_statistics(source, list(CLIPS))) == {"mel_mean", "mel_std", "mfcc_mean", "mfcc_std"}


def test_new_records_of_the_4q_recipe_are_the_old_records(tmp_path):
    """Schema 2 with names mel + mfcc keeps schema 1's record layout, so a writer may extend an old store."""
    for clip_id, arrays in CLIPS.items():
        new = tf.train.Example.FromString(serialize_clip(clip_id, arrays))
        assert new == tf.train.Example.FromString(old_record(clip_id, arrays["mel"], arrays["mfcc"]))
    store = v1_store(tmp_path / "store")
    store.open_for_writing(FeatureRecipe(n_mels=8, n_mfcc=3))  # resuming an old store records its schema
    assert json.loads((tmp_path / "store" / STORE_FILE).read_text()) == {"schema": 2,
                                                                        "features": {"mel": 8, "mfcc": 3}}
    assert store.schema == 2 and len(read(store)) == 3


def test_a_store_of_other_named_features_round_trips(tmp_path):
    recipe = FeatureRecipe(n_mels=8, n_mfcc=0)
    store = FeatureStore(tmp_path / "store")
    store.open_for_writing(recipe)
    assert json.loads((tmp_path / "store" / STORE_FILE).read_text()) == {"schema": 2, "features": {"mel": 8}}
    store.write_shard([({"clip_id": c, "source": c, "frames": len(a["mel"]), "seconds": 0.0},
                        serialize_clip(c, {"mel": a["mel"]})) for c, a in CLIPS.items()])
    clips = read(store)
    assert set(clips["c1"]) == {"clip_id", "frames", "mel"}
    np.testing.assert_array_equal(clips["c1"]["mel"], CLIPS["c1"]["mel"])
    source = ClipSource.from_store(store)
    assert source.feature_names == ("mel",)
    assert set(feature_statistics(source, ["c0", "c2"])) == {"mel_mean", "mel_std"}


def test_serialize_clip_checks_its_features():
    with pytest.raises(ValueError, match="frame count"):
        serialize_clip("x", {"mel": np.zeros((3, 2)), "mfcc": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="reserved"):
        serialize_clip("x", {"mel": np.zeros((3, 2)), "frames": np.zeros((3, 2))})


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / STORE_FILE).write_text('{"schema": 3, "features": {"mel": 8, "mfcc": 3}}'),
     "record schema 3"),
    (lambda root: (root / STORE_FILE).write_text('{"schema": 2, "features": {"mel": 8}}'), "produces"),
    (lambda root: (root / STORE_FILE).write_text("not json"), "expected"),
    (lambda root: (root / STORE_FILE).write_text('{"schema": 2, "features": {"mel": 8, "mfcc": 3, "chroma": 12}}'),
     "produces"),
])
def test_unreadable_stores_ask_to_re_extract(tmp_path, damage, message):
    store = v1_store(tmp_path / "store")
    damage(tmp_path / "store")
    with pytest.raises(StoreError, match=message) as error:
        store.dataset()
    assert "re-extract" in str(error.value) and str(tmp_path / "store") in str(error.value)


def test_records_without_the_declared_features_are_refused(tmp_path):
    store = v1_store(tmp_path / "store")
    with tf.io.TFRecordWriter(str(tmp_path / "store" / SHARD_DIR / "00000.tfrecord")) as writer:
        writer.write(serialize_clip("c0", {"spectrum": CLIPS["c0"]["mel"]}))
    with pytest.raises(StoreError, match=r"lack \['mel', 'mfcc'\].*re-extract"):
        store.dataset()
