"""Feature store: sharded TFRecords of named feature sequences, a manifest, and the recipe.

Layout of a store folder:

    recipe.json          the FeatureRecipe every clip was computed with
    store.json           the record schema: {"schema": 2, "features": {"mel": 64, "mfcc": 20}}
    manifest.jsonl       one JSON line per stored clip: clip_id, source, frames, seconds, shard
    shards/NNNNN.tfrecord

Records (schema 2): one `tf.train.Example` per clip with `clip_id`, `frames`, and per named
feature of `store.json` one serialized float16 tensor `(frames, dims)` under the feature's
name. Schema 1 (stores written before `store.json` existed) is the same layout with the
names fixed to `mel` and `mfcc`, so it reads as schema 2 with those names; the next writer
adds its `store.json`. Other schemas raise `StoreError` asking to re-extract.

Crash safety: a shard is written under a pending name (`*.pending`, itself written as
`.tmp` and renamed when complete), then renamed to `NNNNN.tfrecord`, and only then is the
manifest replaced (temp file + rename) by one that lists its clips (`commit_shards`; the
Beam pipeline writes many pending shards in parallel and commits them in one step). The manifest is
the truth: readers only open shards it names, and the next writer deletes any other file
in `shards/` (a `.tmp`, or a shard renamed just before a crash); clips missing from the
manifest are simply extracted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_music.config import FeatureRecipe, atomic_path, config_to_dict, save_json

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.json"
STORE_FILE = "store.json"
MANIFEST_FILE = "manifest.jsonl"
SHARD_DIR = "shards"
SCHEMA = 2
LEGACY_FEATURES = ("mel", "mfcc")  # schema 1: no store.json, these names
RESERVED_KEYS = ("clip_id", "frames")  # record keys that are not features
PENDING_SUFFIX = ".pending"  # a written shard not yet committed (see `FeatureStore.commit_shards`)
REEXTRACT = "re-extract it with `python -m keras_music.extract AUDIO_DIR --out STORE --force`"


class StoreError(ValueError):
    """A feature store that is missing, inconsistent, or made with another recipe."""


def serialize_clip(clip_id: str, features: Mapping) -> bytes:
    """One `tf.train.Example`: id, frame count, and a float16 tensor per named feature.

    Args:
        clip_id: str.
        features: dict name -> `(T, dims)` array, all with the same T.
    """
    if not features:
        raise ValueError(f"{clip_id}: no features to store.")
    clashes = sorted(set(features) & set(RESERVED_KEYS))
    if clashes:
        raise ValueError(f"{clip_id}: feature name(s) {clashes} are reserved record keys.")
    frames = {name: np.shape(array)[0] for name, array in features.items()}
    if len(set(frames.values())) != 1:
        raise ValueError(f"{clip_id}: features differ in frame count: {frames}.")
    record = {
        "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode()])),
        "frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[next(iter(frames.values()))])),
    }
    for name, array in features.items():
        record[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[tf.io.serialize_tensor(np.asarray(array).astype("float16")).numpy()]))
    # deterministic: map keys sorted, so a record's bytes do not depend on the process that wrote it
    return tf.train.Example(features=tf.train.Features(feature=record)).SerializeToString(deterministic=True)


def parse_clip(record, names=LEGACY_FEATURES):
    """Inverse of `serialize_clip` inside tf.data: dict of clip_id, frames and each of `names` as float32."""
    spec = {"clip_id": tf.io.FixedLenFeature([], tf.string), "frames": tf.io.FixedLenFeature([], tf.int64)}
    spec.update({name: tf.io.FixedLenFeature([], tf.string) for name in names})
    parsed = tf.io.parse_single_example(record, spec)
    return {"clip_id": parsed["clip_id"], "frames": parsed["frames"],
            **{name: tf.cast(tf.io.parse_tensor(parsed[name], tf.float16), tf.float32) for name in names}}


class FeatureStore:
    """Read and append to one store folder (see the module docstring for the layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- reading ---------------------------------------------------------------------------
    @property
    def recipe(self) -> FeatureRecipe:
        path = self.root / RECIPE_FILE
        if not path.is_file():
            raise StoreError(f"{self.root} is not a feature store: {RECIPE_FILE} is missing "
                             "(create one with `python -m keras_music.extract AUDIO_DIR --out STORE`).")
        return FeatureRecipe.from_dict(json.loads(path.read_text()), source=str(path))

    @property
    def schema(self) -> int:
        """Record schema: 1 for stores without store.json, else its `schema`."""
        return self._store_info()[0]

    @property
    def features(self) -> dict[str, int]:
        """Named features of every record and their sizes, in order (`mel` first)."""
        return self._store_info()[1]

    def _store_info(self) -> tuple[int, dict[str, int]]:
        recipe, path = self.recipe, self.root / STORE_FILE
        if not path.is_file():  # schema 1: written before store.json; always mel + mfcc
            if tuple(recipe.feature_dims) != LEGACY_FEATURES:
                raise StoreError(f"{self.root}: {STORE_FILE} is missing and the recipe does not produce "
                                 f"{LEGACY_FEATURES}; the store is unreadable, {REEXTRACT}.")
            return 1, recipe.feature_dims
        try:
            info = json.loads(path.read_text())
            schema, features = info["schema"], {str(k): int(v) for k, v in info["features"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StoreError(f"{path}: expected {{\"schema\": {SCHEMA}, \"features\": {{name: size}}}} "
                             f"({type(error).__name__}: {error}); {REEXTRACT}.") from error
        if schema != SCHEMA:
            raise StoreError(f"{path}: record schema {schema!r}, this version reads schema 1 and {SCHEMA}; "
                             f"{REEXTRACT}.")
        if features != recipe.feature_dims:
            raise StoreError(f"{path}: features {features} but {RECIPE_FILE} produces {recipe.feature_dims}; "
                             f"{REEXTRACT}.")
        return schema, features

    def manifest(self) -> list[dict]:
        """Entries of every stored clip, in the order they were written."""
        path = self.root / MANIFEST_FILE
        if not path.is_file():
            return []
        entries = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise StoreError(f"{path}, line {number}: not valid JSON ({error.msg}).") from error
        return entries

    def shard_paths(self) -> list[Path]:
        return sorted((self.root / SHARD_DIR).glob("*.tfrecord"))

    def recorded_shards(self) -> list[Path]:
        """Shards named in the manifest: the store's content. Others are orphans of a crash."""
        names = dict.fromkeys(entry["shard"] for entry in self.manifest())
        return [self.root / SHARD_DIR / name for name in names]

    def dataset(self) -> tf.data.Dataset:
        """All clips as parsed dicts (see `parse_clip`), in the order they were written."""
        shards = [str(p) for p in self.recorded_shards()]
        if not shards:
            raise StoreError(f"{self.root}: the store holds no shards yet.")
        names = tuple(self.features)
        self._check_first_record(shards[0], names)
        return tf.data.TFRecordDataset(shards).map(lambda record: parse_clip(record, names),
                                                   num_parallel_calls=tf.data.AUTOTUNE)

    def _check_first_record(self, shard: str, names) -> None:
        """Fail now, with a StoreError, rather than inside tf.data when records lack the declared features."""
        try:
            record = next(iter(tf.data.TFRecordDataset([shard]).take(1)), None)
        except tf.errors.OpError as error:
            raise StoreError(f"{shard}: unreadable shard ({error.message[:200]}); {REEXTRACT}.") from error
        if record is None:
            return
        keys = set(tf.train.Example.FromString(record.numpy()).features.feature)
        missing = [key for key in (*RESERVED_KEYS, *names) if key not in keys]
        if missing:
            raise StoreError(f"{shard}: records lack {missing} (they hold {sorted(keys)}); {REEXTRACT}.")

    # --- writing ---------------------------------------------------------------------------
    def open_for_writing(self, recipe: FeatureRecipe) -> None:
        """Create the folder (or check an existing one was made with `recipe`) and drop leftovers."""
        (self.root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        recipe_path = self.root / RECIPE_FILE
        if recipe_path.is_file():
            if self.recipe != recipe:
                raise StoreError(f"{self.root} was made with another recipe ({self.recipe}); "
                                 f"use a new --out folder or --force to start over.")
            self.features  # noqa: B018 -- raises StoreError for a schema this version cannot extend
        else:
            save_json(recipe_path, config_to_dict(recipe))
        if not (self.root / STORE_FILE).is_file():
            # New store, or a schema-1 one: its records are schema 2 with names mel + mfcc.
            save_json(self.root / STORE_FILE, {"schema": SCHEMA, "features": recipe.feature_dims})
        recorded = set(self.recorded_shards())
        for leftover in (self.root / SHARD_DIR).iterdir():
            if leftover not in recorded:
                logger.info("Removing %s, left by an interrupted run (its clips are not in the manifest)",
                            leftover.name)
                leftover.unlink()

    def write_shard(self, clips: list[tuple[dict, bytes]]) -> Path:
        """Write `(manifest entry, serialized example)` pairs as the next shard, then record them."""
        pending = self.root / SHARD_DIR / f"local{PENDING_SUFFIX}"
        write_records(pending, [record for _, record in clips])
        return self.commit_shards([(pending, [entry for entry, _ in clips])])[0]

    def commit_shards(self, written: list[tuple[Path, list[dict]]]) -> list[Path]:
        """Number finished shard files and record their clips: the store's one commit step.

        `written` holds `(file in shards/ named *PENDING_SUFFIX, manifest entries of its records)`.
        Each file is renamed to the next `NNNNN.tfrecord`, then the manifest is replaced once by
        one that lists all their clips. A crash before that leaves only unrecorded files, which
        the next writer deletes. Beam workers write shards in parallel and one step commits them.
        """
        number = 1 + max((int(p.stem) for p in self.shard_paths()), default=-1)
        new, finals = [], []
        for pending, entries in written:
            final = self.root / SHARD_DIR / f"{number:05d}.tfrecord"
            Path(pending).replace(final)
            finals.append(final)
            new.extend(json.dumps({**entry, "shard": final.name}) + "\n" for entry in entries)
            number += 1
        manifest = self.root / MANIFEST_FILE
        old = manifest.read_text() if manifest.is_file() else ""
        with atomic_path(manifest) as tmp:  # the manifest is never half-written
            tmp.write_text(old + "".join(new))
        return finals


def write_records(path: str | Path, records) -> None:
    """Serialized examples -> one TFRecord file, written under a temporary name and renamed when complete."""
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in records:
            writer.write(record)
