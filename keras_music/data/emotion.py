"""Resolve `--data` for the emotion task into features, tags and split groups.

    demo          synthetic audio with emotion cues, extracted into a feature store (cached)
    mer4q         ../shared/datasets/mer4q (or any folder with labels.csv + features/*.npz)
    STORE         a feature store made by `keras_music.extract`; labels from STORE/labels.csv
                  (or `labels=`), a CSV of clip_id + tag columns
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from keras_music.data.sequences import ClipSource
from keras_music.data.tags import TagTable, join_ids

logger = logging.getLogger(__name__)

SHARED_MER4Q = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mer4q"
DEMO_VERSION = "emotion-demo-v1"


@dataclasses.dataclass
class EmotionData:
    """Everything a run needs: features, labels of the matched clips, and a group per clip."""

    source: ClipSource
    tags: TagTable
    groups: dict[str, str]
    n_mels: int
    n_mfcc: int
    description: str


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


def _matched(source: ClipSource, tags: TagTable, groups: dict[str, str], description: str, n_mels, n_mfcc):
    report = join_ids(tags, source.clip_ids())
    if not report.matched:
        raise ValueError(f"{description}: no clip has both features and labels (check the clip ids).")
    return EmotionData(source, tags.rows(report.matched), {c: groups.get(c, c) for c in report.matched},
                       n_mels, n_mfcc, description)


def load_emotion_data(data: str, labels: str | None = None) -> EmotionData:
    """Features + tags for `--data` (see the module docstring)."""
    from keras_music.data.mer4q import load_mer4q, tags_from_csv
    from keras_music.data.store import FeatureStore

    if data == "demo":
        store_path, labels_path = demo_store()
        store = FeatureStore(store_path)
        recipe = store.recipe
        return _matched(ClipSource.from_store(store), tags_from_csv(labels_path), {}, "demo", recipe.n_mels,
                        recipe.n_mfcc)
    if data == "cal500":
        raise ValueError("CAL500 has no audio or frame sequences here, only 68 aggregated features per song: "
                         "use `--model mlp --data cal500` for it, or extract CAL500 audio you own into a store.")
    path = SHARED_MER4Q if data == "mer4q" else Path(data)
    if not path.exists():
        raise FileNotFoundError(f"--data {data!r}: {str(path)!r} does not exist (expected 'demo', 'mer4q', a "
                                "feature store folder, or a folder with labels.csv + features/*.npz).")
    if (path / "features").is_dir():
        tags, clips, groups = load_mer4q(path)
        mel, mfcc = clips.load(clips.clip_ids()[0])
        return _matched(ClipSource.from_npz(clips), tags, groups, str(path), mel.shape[1], mfcc.shape[1])
    store = FeatureStore(path)
    recipe = store.recipe  # raises a clear StoreError when this is not a store
    labels_path = Path(labels) if labels else path / "labels.csv"
    return _matched(ClipSource.from_store(store), tags_from_csv(labels_path), {}, str(path), recipe.n_mels,
                    recipe.n_mfcc)
