"""Feature store: sharded TFRecords of (mel, mfcc) sequences, a manifest, and the recipe.

Layout of a store folder:

    recipe.json          the FeatureRecipe every clip was computed with
    manifest.jsonl       one JSON line per stored clip: clip_id, source, frames, seconds, shard
    shards/NNNNN.tfrecord

Crash safety: a shard is written as `NNNNN.tfrecord.tmp` and renamed when complete, and
only then is the manifest replaced (temp file + rename) by one that lists its clips. The manifest is
the truth: readers only open shards it names, and the next writer deletes any other file
in `shards/` (a `.tmp`, or a shard renamed just before a crash); clips missing from the
manifest are simply extracted again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_music.config import FeatureRecipe, atomic_path, config_from_dict, config_to_dict, save_json

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.json"
MANIFEST_FILE = "manifest.jsonl"
SHARD_DIR = "shards"


class StoreError(ValueError):
    """A feature store that is missing, inconsistent, or made with another recipe."""


def serialize_clip(clip_id: str, mel: np.ndarray, mfcc: np.ndarray) -> bytes:
    """One `tf.train.Example`: id, frame count, and float16 `mel` `(T, n_mels)` / `mfcc` `(T, n_mfcc)`."""
    if mel.shape[0] != mfcc.shape[0]:
        raise ValueError(f"{clip_id}: mel has {mel.shape[0]} frames but mfcc {mfcc.shape[0]}.")
    feature = {
        "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode()])),
        "frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[mel.shape[0]])),
        "mel": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[tf.io.serialize_tensor(mel.astype("float16")).numpy()])),
        "mfcc": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[tf.io.serialize_tensor(mfcc.astype("float16")).numpy()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_clip(record):
    """Inverse of `serialize_clip` inside tf.data: dict of clip_id, frames, float32 mel and mfcc."""
    parsed = tf.io.parse_single_example(record, {
        "clip_id": tf.io.FixedLenFeature([], tf.string),
        "frames": tf.io.FixedLenFeature([], tf.int64),
        "mel": tf.io.FixedLenFeature([], tf.string),
        "mfcc": tf.io.FixedLenFeature([], tf.string),
    })
    return {
        "clip_id": parsed["clip_id"],
        "frames": parsed["frames"],
        "mel": tf.cast(tf.io.parse_tensor(parsed["mel"], tf.float16), tf.float32),
        "mfcc": tf.cast(tf.io.parse_tensor(parsed["mfcc"], tf.float16), tf.float32),
    }


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
        return config_from_dict(FeatureRecipe, json.loads(path.read_text()), source=str(path))

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
        return tf.data.TFRecordDataset(shards).map(parse_clip, num_parallel_calls=tf.data.AUTOTUNE)

    # --- writing ---------------------------------------------------------------------------
    def open_for_writing(self, recipe: FeatureRecipe) -> None:
        """Create the folder (or check an existing one was made with `recipe`) and drop leftovers."""
        (self.root / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        recipe_path = self.root / RECIPE_FILE
        if recipe_path.is_file():
            if self.recipe != recipe:
                raise StoreError(f"{self.root} was made with another recipe ({self.recipe}); "
                                 f"use a new --out folder or --force to start over.")
        else:
            save_json(recipe_path, config_to_dict(recipe))
        recorded = set(self.recorded_shards())
        for leftover in (self.root / SHARD_DIR).iterdir():
            if leftover not in recorded:
                logger.info("Removing %s, left by an interrupted run (its clips are not in the manifest)",
                            leftover.name)
                leftover.unlink()

    def write_shard(self, clips: list[tuple[dict, bytes]]) -> Path:
        """Write `(manifest entry, serialized example)` pairs as the next shard, then record them."""
        number = 1 + max((int(p.stem) for p in self.shard_paths()), default=-1)
        final = self.root / SHARD_DIR / f"{number:05d}.tfrecord"
        with atomic_path(final) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
            for _, record in clips:
                writer.write(record)
        manifest = self.root / MANIFEST_FILE
        old = manifest.read_text() if manifest.is_file() else ""
        new = "".join(json.dumps({**entry, "shard": final.name}) + "\n" for entry, _ in clips)
        with atomic_path(manifest) as tmp:  # the manifest is never half-written
            tmp.write_text(old + new)
        return final
