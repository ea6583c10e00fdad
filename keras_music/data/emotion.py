"""Resolve `--data` for the emotion task into features, tags and split groups.

    demo          synthetic audio with emotion cues, extracted into a feature store (cached)
    mer4q         $KERAS_MUSIC_DATASETS/mer4q: the 4Q dataset's folder (labels.csv + features/*.npz;
                  any such folder can also be given by its path)
    cal500        $KERAS_MUSIC_DATASETS/cal500: CAL500 emotions with the 68 aggregated MULAN
                  features per song; no sequences, so only the `mlp` tagger takes it
    STORE         a feature store made by `keras_music.extract`; labels from STORE/labels.csv
                  (or `labels=`), a CSV of clip_id + tag columns, and artist groups from a
                  metadata.csv beside it (`mer4q.read_labels`: as in the 4Q folder)

Folders are read by the one entry of `READERS` that recognises their layout; a new layout
is a module with its loader plus one `DatasetReader` entry there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from pathlib import Path

import numpy as np

from keras_music.config import FeatureRecipe, cache_dir
from keras_music.data.sequences import ClipSource
from keras_music.data.store import SHARD_DIR
from keras_music.data.tags import TagTable, join_ids
from keras_music.errors import MissingPathError, ParameterError
from keras_music.remote import fetch, has_scheme, mirror

logger = logging.getLogger(__name__)

# A folder holding the public datasets by name (mer4q/, cal500/): where `data="mer4q"` looks.
DATASETS_ENV = "KERAS_MUSIC_DATASETS"
DATASET_NAMES = ("mer4q", "cal500")
DEMO_VERSION = "emotion-demo-v2"  # v2: decoded with libsndfile, resampled with soxr


@dataclasses.dataclass
class EmotionData:
    """Everything a run needs: features, labels of the matched clips, and a group per clip.

    Sequence datasets have a `source` (named feature frames, sizes in `feature_dims`);
    aggregated ones (CAL500) have `vectors` (one feature vector per clip), no source and
    empty `feature_dims`.
    """

    source: ClipSource | None
    tags: TagTable
    groups: dict[str, str]
    feature_dims: dict[str, int]
    description: str
    vectors: dict[str, np.ndarray] | None = None
    recipe: FeatureRecipe | None = None  # how the sequences were computed (None: aggregated features)

    def sequences(self) -> ClipSource:
        """The frame-sequence source, or a clear error for aggregated-only data (CAL500)."""
        if self.source is None:
            raise ValueError(f"{self.description} has no frame sequences (only aggregated features per clip): "
                             "sequence models need them; use --model mlp.")
        return self.source

    def clip_vectors(self, clip_ids) -> np.ndarray:
        """One vector per clip: the dataset's own aggregated features, or else the mean and then the
        standard deviation over time of every band of every named feature, features in name order
        (`(clips, 2 * sum(feature_dims))`; for the 4Q recipe mel then mfcc)."""
        if self.vectors is not None:
            return np.stack([self.vectors[c] for c in clip_ids])
        names = self.source.feature_names
        pooled = {}
        for clip in self.source.dataset(clip_ids).as_numpy_iterator():
            frames = np.concatenate([clip[name] for name in names], axis=1)
            pooled[clip["clip_id"].decode()] = np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
        return np.stack([pooled[c] for c in clip_ids])


def demo_store(root: Path | None = None) -> tuple[Path, Path]:
    """Synthesise the demo audio and extract it (same code path as real audio); cached.

    Returns `(store folder, labels CSV)`.
    """
    from keras_music.data.demo import make_emotion_demo
    from keras_music.data.extraction import extract_folder

    root = root or cache_dir() / DEMO_VERSION
    make_emotion_demo(root)
    summary = extract_folder(root / "audio", root / "store")
    if summary.written:
        logger.info("Extracted %d demo clips into %s", summary.written, root / "store")
    return root / "store", root / "labels.csv"


def _matched(source: ClipSource | None, tags: TagTable, groups: dict[str, str], description: str,
             feature_dims: dict[str, int], vectors: dict[str, np.ndarray] | None = None,
             recipe: FeatureRecipe | None = None) -> EmotionData:
    report = join_ids(tags, source.clip_ids() if source is not None else vectors)
    if not report.matched:
        raise ValueError(f"{description}: no clip has both features and labels (check the clip ids).")
    return EmotionData(source, tags.rows(report.matched), {c: groups.get(c, c) for c in report.matched},
                       dict(feature_dims), description, vectors, recipe)


# --- dataset readers: one entry per layout ---------------------------------------------------

def _read_cal500(path: Path, labels: str | None) -> EmotionData:
    from keras_music.data.cal500 import load_cal500_emotions, load_cal500_vectors

    return _matched(None, load_cal500_emotions(path / "labels"), {}, str(path), {},
                    vectors=load_cal500_vectors(path / "mulan_features.csv"))


def _read_npz_folder(path: Path, labels: str | None) -> EmotionData:
    from keras_music.data.mer4q import load_mer4q

    # An .npz folder may say how it was computed (recipe.json); the shared 4Q folder
    # follows its README's recipe, which is FeatureRecipe's default.
    recipe_path = path / "recipe.json"
    recipe = (FeatureRecipe.from_dict(json.loads(recipe_path.read_text()), source=str(recipe_path))
              if recipe_path.is_file() else FeatureRecipe())
    tags, clips, groups = load_mer4q(path, feature_names=tuple(recipe.feature_dims))
    first = clips.load(clips.clip_ids()[0])
    dims = {name: array.shape[1] for name, array in first.items()}
    return _matched(ClipSource.from_npz(clips), tags, groups, str(path), dims, recipe=recipe)


def _read_store(path: Path, labels: str | None) -> EmotionData:
    from keras_music.data.mer4q import read_labels
    from keras_music.data.store import FeatureStore

    store = FeatureStore(path)
    tags, groups = read_labels(Path(labels) if labels else path / "labels.csv")
    return _matched(ClipSource.from_store(store), tags, groups, str(path), store.features, recipe=store.recipe)


@dataclasses.dataclass(frozen=True)
class DatasetReader:
    """One on-disk layout `load_emotion_data` accepts: `recognise(path)` says whether a folder
    has this layout, `load(path, labels)` reads it; `layout` describes it in error messages.
    Only a layout with `takes_labels` reads a separate labels CSV; the others bring their own,
    so `labels=` there is an error rather than silently ignored."""

    name: str
    layout: str
    recognise: typing.Callable[[Path], bool]
    load: typing.Callable[[Path, str | None], EmotionData]
    takes_labels: bool = False


READERS = [
    DatasetReader("cal500", "a CAL500 folder (mulan_features.csv + labels/)",
                  lambda path: (path / "mulan_features.csv").is_file(), _read_cal500),
    DatasetReader("npz", "a folder with labels.csv + features/*.npz",
                  lambda path: (path / "features").is_dir(), _read_npz_folder),
    DatasetReader("store", "a feature store folder (recipe.json + shards/, from keras_music.extract)",
                  lambda path: (path / "recipe.json").is_file() and (path / SHARD_DIR).is_dir(), _read_store,
                  takes_labels=True),
]


def dataset_aliases() -> dict[str, Path]:
    """`{name: folder}` of the datasets under `$KERAS_MUSIC_DATASETS` ({} when it is not set)."""
    import os

    root = os.environ.get(DATASETS_ENV)
    return {name: Path(root) / name for name in DATASET_NAMES} if root else {}


def _accepted() -> str:
    return ", ".join(["'demo'", *(repr(name) for name in DATASET_NAMES), *(reader.layout for reader in READERS)])


def load_emotion_data(data: str | Path, labels: str | Path | None = None) -> EmotionData:
    """Features + tags for `data` (see the module docstring): a dataset name, or a folder one reader
    of `READERS` recognises (exactly one must). Errors name the parameter (`ParameterError`)."""
    data = str(data)
    labels = None if labels is None else str(labels)
    if data == "demo":
        if labels:
            raise ParameterError("labels", labels, "data='demo' brings its own labels; a labels CSV goes with a "
                                 "feature store (data=STORE, from keras_music.extract).")
        store_path, labels_path = demo_store()
        return dataclasses.replace(_read_store(store_path, str(labels_path)), description="demo")
    if has_scheme(data):  # a store on object storage (built on a cluster): read from a local mirror
        data = str(mirror(data, parameter="data"))
    if labels is not None and has_scheme(labels):
        labels = str(fetch(labels, parameter="labels"))
    aliases = dataset_aliases()
    if data in DATASET_NAMES and data not in aliases and not Path(data).exists():
        raise MissingPathError("data", data, f"a dataset name is looked up in ${DATASETS_ENV} (a folder holding "
                               f"{', '.join(n + '/' for n in DATASET_NAMES)}), which is not set; set it, or give "
                               "the dataset's folder.")
    path = aliases.get(data, Path(data))
    if not path.exists():
        raise MissingPathError("data", data, f"{str(path)!r} does not exist (expected {_accepted()}).")
    matches = [reader for reader in READERS if reader.recognise(path)]
    if not matches:
        raise ParameterError("data", data, f"{str(path)!r} has none of the accepted layouts (expected {_accepted()}).")
    if len(matches) > 1:
        raise ParameterError("data", data, f"{str(path)!r} looks like several layouts at once "
                             f"({', '.join(reader.name for reader in matches)}); keep one.")
    reader = matches[0]
    if labels and not reader.takes_labels:
        raise ParameterError("labels", labels, f"data={data!r}: {str(path)!r} is {reader.layout}, which brings its "
                             "own labels; a labels CSV goes with a feature store (from keras_music.extract).")
    return reader.load(path, labels)


def emotion_dataset(emotion: EmotionData, clip_ids, sequence_config, vectors: bool, training: bool = False,
                    seed: int = 0, fill_last_batch: bool = False, clock=None):
    """The tf.data stream a tagger consumes: per-clip vectors (the `mlp` tagger) or padded sequences
    (training streams need the `EpochClock` of the fit)."""
    from keras_music.data.sequences import make_dataset, make_vector_dataset

    if vectors:
        return make_vector_dataset(emotion.clip_vectors(clip_ids), emotion.tags.rows(clip_ids),
                                   sequence_config.batch_size, training=training, seed=seed, clock=clock)
    return make_dataset(emotion.sequences(), emotion.tags, clip_ids, sequence_config, training=training, seed=seed,
                        fill_last_batch=fill_last_batch, clock=clock)
