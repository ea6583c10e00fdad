"""Folders of per-clip `.npz` features plus a `labels.csv`, e.g. the shared 4Q dataset.

Layout (as `../shared/datasets/mer4q/`):

    labels.csv           clip_id + label columns (categorical strings, or 0/1 with empty = unknown)
    metadata.csv         optional; an `artist` column gives groups for artist-disjoint splits
                         (also when the labels.csv beside it labels a feature store: `read_labels`)
    features/<clip_id>.npz   one array per named feature, same T: `mel` (T, n_mels) and `mfcc` (T, n_mfcc)
    recipe.json          optional; the FeatureRecipe (and so the feature names), else the 4Q recipe

Categorical columns become one tag per value (`quadrant` -> `quadrant_q1` ... `quadrant_q4`),
all known; 0/1 columns become one tag each, with empty cells unknown (mask 0).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from keras_music.data.tags import TagTable, slug

logger = logging.getLogger(__name__)

DEFAULT_COLUMNS = ("quadrant",)
# The shared 4Q labels.csv: its arousal and valence columns only restate the quadrant.
MER4Q_HEADER = ("clip_id", "quadrant", "arousal", "valence")


def tags_from_csv(path: str | Path, columns=None) -> TagTable:
    """A TagTable from a labels CSV with a `clip_id` column (see the module docstring).

    Args:
        path: the CSV.
        columns: label columns to use; None = every column except `clip_id`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Labels file {str(path)!r} does not exist (expected clip_id + label columns).")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "clip_id" not in frame.columns:
        raise ValueError(f"{path}: missing column 'clip_id'; found {list(frame.columns)}.")
    columns = [c for c in frame.columns if c != "clip_id"] if columns is None else list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing label column(s) {missing}; found {list(frame.columns)}.")
    duplicated = frame["clip_id"][frame["clip_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: clip_id {duplicated.iloc[0]!r} appears more than once.")
    tags, labels, mask = [], [], []
    for column in columns:
        values = frame[column].str.strip()
        if set(values) <= {"0", "1", ""}:
            tags.append(slug(column))
            labels.append((values == "1").to_numpy("float32"))
            mask.append((values != "").to_numpy("float32"))
            continue
        if (values == "").any():
            row = int(np.flatnonzero(values == "")[0])
            raise ValueError(f"{path}: column {column!r}, line {row + 2}: empty category.")
        for value in sorted(values.unique()):
            tags.append(slug(f"{column}_{value}"))
            labels.append((values == value).to_numpy("float32"))
            mask.append(np.ones(len(frame), "float32"))
    return TagTable(frame["clip_id"].tolist(), tags, np.stack(labels, axis=1), np.stack(mask, axis=1))


def artist_group(name: str) -> str:
    """The 4Q README's artist key: lower case, cut at ` & `/` and `/`feat.`/`with`/`, `, no leading "the"."""
    name = re.split(r" & | and | feat\.| with |, ", name.strip().lower())[0].strip()
    return re.sub(r"^the ", "", name)


@dataclasses.dataclass(frozen=True)
class NpzClips:
    """Per-clip `.npz` features in `root/features/`, loaded on demand.

    Args:
        root: the dataset folder.
        feature_names: tuple of str. The arrays every clip holds, one per named feature.
            Defaults to the 4Q recipe's `("mel", "mfcc")`.
    """

    root: Path
    feature_names: tuple[str, ...] = ("mel", "mfcc")

    @property
    def feature_dir(self) -> Path:
        return Path(self.root) / "features"

    def clip_ids(self) -> list[str]:
        if not self.feature_dir.is_dir():
            raise FileNotFoundError(f"{self.feature_dir} does not exist (expected features/<clip_id>.npz files).")
        return sorted(p.stem for p in self.feature_dir.glob("*.npz"))

    def load(self, clip_id: str) -> dict[str, np.ndarray]:
        """`{name: (T, dims)}` float32 per feature name, checked: 2-D, same frame count, finite values."""
        path = self.feature_dir / f"{clip_id}.npz"
        names = " and ".join(repr(name) for name in self.feature_names)
        try:
            with np.load(path) as arrays:
                features = {name: arrays[name].astype("float32") for name in self.feature_names}
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path}: cannot read arrays {names} ({error}).") from error
        shapes = {name: array.shape for name, array in features.items()}
        if any(len(shape) != 2 for shape in shapes.values()) or len({shape[0] for shape in shapes.values()}) != 1:
            raise ValueError(f"{path}: expected arrays {names}, each (T, dims) with the same T, got "
                             + ", ".join(f"{name} {shape}" for name, shape in shapes.items()) + ".")
        for name, array in features.items():
            if not np.isfinite(array).all():
                raise ValueError(f"{path}: {name} contains NaN or infinite values.")
        return features


def read_labels(path: str | Path, columns=None) -> tuple[TagTable, dict[str, str]]:
    """Tags of a labels CSV, and artist groups from a `metadata.csv` beside it (clip_id + artist).

    Why: features extracted again from a labelled folder's audio (a feature store) must keep
    its artist groups, or every split would silently become a split by clip.

    Args:
        path: the labels CSV.
        columns: label columns to use; None = every column except `clip_id`, except in the
            4Q labels file (`MER4Q_HEADER`), whose tags are the quadrant's (`DEFAULT_COLUMNS`),
            as in its own folder.

    Returns:
        `(tags, groups)` where `groups` maps clip id -> artist key (clip id itself for clips
        without one, i.e. each its own group).
    """
    path = Path(path)
    if columns is None and path.is_file() and tuple(pd.read_csv(path, nrows=0).columns) == MER4Q_HEADER:
        logger.info("%s: the 4Q labels (arousal and valence restate the quadrant): tags of %s only", path,
                    ", ".join(DEFAULT_COLUMNS))
        columns = DEFAULT_COLUMNS
    tags = tags_from_csv(path, columns)
    metadata = path.parent / "metadata.csv"
    groups = {c: c for c in tags.clip_ids}
    if metadata.is_file():
        meta = pd.read_csv(metadata, dtype=str, keep_default_na=False)
        if {"clip_id", "artist"} <= set(meta.columns):
            groups.update({c: "artist:" + artist_group(a) for c, a in zip(meta["clip_id"], meta["artist"])})
    return tags, groups


def load_mer4q(root: str | Path, columns=DEFAULT_COLUMNS,
               feature_names=("mel", "mfcc")) -> tuple[TagTable, NpzClips, dict[str, str]]:
    """Tags, features and artist groups of a 4Q-style folder.

    Returns:
        `(tags, clips, groups)` where `groups` maps clip id -> artist key (clip id itself when
        there is no `metadata.csv`, i.e. every clip its own group).
    """
    tags, groups = read_labels(Path(root) / "labels.csv", columns)
    return tags, NpzClips(Path(root), tuple(feature_names)), groups
