"""Resolve `--data` for the emotion task into features, tags and split groups.

    demo          synthetic audio with emotion cues, extracted into a feature store (cached)
    mer4q         ../shared/datasets/mer4q (or any folder with labels.csv + features/*.npz)
    cal500        ../shared/datasets/cal500 (or its copy): CAL500 emotions with the 68 aggregated
                  MULAN features per song; no sequences, so only the `mlp` tagger takes it
    STORE         a feature store made by `keras_music.extract`; labels from STORE/labels.csv
                  (or `labels=`), a CSV of clip_id + tag columns
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np

from keras_music.config import FeatureRecipe, config_from_dict
from keras_music.data.sequences import ClipSource
from keras_music.data.tags import TagTable, join_ids

logger = logging.getLogger(__name__)

SHARED_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEMO_VERSION = "emotion-demo-v1"


@dataclasses.dataclass
class EmotionData:
    """Everything a run needs: features, labels of the matched clips, and a group per clip.

    Sequence datasets have a `source` (mel + MFCC frames); aggregated ones (CAL500) have
    `vectors` (one feature vector per clip) and no source.
    """

    source: ClipSource | None
    tags: TagTable
    groups: dict[str, str]
    n_mels: int
    n_mfcc: int
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
        """One vector per clip: the dataset's own aggregated features, or else the mean and
        standard deviation over time of every mel and MFCC band (`(clips, 2 * (n_mels + n_mfcc))`)."""
        if self.vectors is not None:
            return np.stack([self.vectors[c] for c in clip_ids])
        pooled = {}
        for clip in self.source.dataset(clip_ids).as_numpy_iterator():
            frames = np.concatenate([clip["mel"], clip["mfcc"]], axis=1)
            pooled[clip["clip_id"].decode()] = np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
        return np.stack([pooled[c] for c in clip_ids])


def cache_dir() -> Path:
    """Where generated data lives: `$KERAS_MUSIC_CACHE`, else `~/.cache/keras_music`."""
    return Path(os.environ.get("KERAS_MUSIC_CACHE", Path.home() / ".cache" / "keras_music"))


def demo_store(root: Path | None = None) -> tuple[Path, Path]:
    """Synthesise the demo audio and extract it (same code path as real audio); cached.

    Returns `(store folder, labels CSV)`.
    """
    from keras_music.data.demo import make_emotion_demo
    from keras_music.extract import extract_folder

    root = root or cache_dir() / DEMO_VERSION
    make_emotion_demo(root)
    summary = extract_folder(root / "audio", root / "store")
    if summary.written:
        logger.info("Extracted %d demo clips into %s", summary.written, root / "store")
    return root / "store", root / "labels.csv"


def _matched(source: ClipSource | None, tags: TagTable, groups: dict[str, str], description: str, n_mels, n_mfcc,
             vectors: dict[str, np.ndarray] | None = None, recipe: FeatureRecipe | None = None):
    report = join_ids(tags, source.clip_ids() if source is not None else vectors)
    if not report.matched:
        raise ValueError(f"{description}: no clip has both features and labels (check the clip ids).")
    return EmotionData(source, tags.rows(report.matched), {c: groups.get(c, c) for c in report.matched},
                       n_mels, n_mfcc, description, vectors, recipe)


def load_emotion_data(data: str, labels: str | None = None) -> EmotionData:
    """Features + tags for `--data` (see the module docstring)."""
    from keras_music.data.mer4q import load_mer4q, tags_from_csv
    from keras_music.data.store import FeatureStore

    if data == "demo":
        store_path, labels_path = demo_store()
        store = FeatureStore(store_path)
        recipe = store.recipe
        return _matched(ClipSource.from_store(store), tags_from_csv(labels_path), {}, "demo", recipe.n_mels,
                        recipe.n_mfcc, recipe=recipe)
    path = SHARED_DATASETS / data if data in ("mer4q", "cal500") else Path(data)
    if (path / "mulan_features.csv").is_file():
        from keras_music.data.cal500 import load_cal500_emotions, load_cal500_vectors

        return _matched(None, load_cal500_emotions(path / "labels"), {}, str(path), 0, 0,
                        vectors=load_cal500_vectors(path / "mulan_features.csv"))
    if not path.exists():
        raise FileNotFoundError(f"--data {data!r}: {str(path)!r} does not exist (expected 'demo', 'mer4q', "
                                "'cal500', a feature store folder, or a folder with labels.csv + features/*.npz).")
    if (path / "features").is_dir():
        tags, clips, groups = load_mer4q(path)
        mel, mfcc = clips.load(clips.clip_ids()[0])
        # An .npz folder may say how it was computed (recipe.json); the shared 4Q folder
        # follows its README's recipe, which is FeatureRecipe's default.
        recipe_path = path / "recipe.json"
        recipe = (config_from_dict(FeatureRecipe, json.loads(recipe_path.read_text()), source=str(recipe_path))
                  if recipe_path.is_file() else FeatureRecipe())
        return _matched(ClipSource.from_npz(clips), tags, groups, str(path), mel.shape[1], mfcc.shape[1],
                        recipe=recipe)
    store = FeatureStore(path)
    recipe = store.recipe  # raises a clear StoreError when this is not a store
    labels_path = Path(labels) if labels else path / "labels.csv"
    return _matched(ClipSource.from_store(store), tags_from_csv(labels_path), {}, str(path), recipe.n_mels,
                    recipe.n_mfcc, recipe=recipe)


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
