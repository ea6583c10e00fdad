"""Training as a library: what `python -m keras_music.train`, `tuning/` and `bench/` call.

    genre.py    split by song, the genre MLP ensemble (`fit_genre_mlp`), `train_genre`
    emotion.py  split by artist, `build_tagger` for any registered family, `train_emotion`
    common.py   the run folder's model file and config readers, run identity, one-line epoch summaries

Resumable backups live in `keras_music.resume`, the multi-worker loop in
`keras_music.multiworker`; both are used from here only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Each public name and the module that owns it. They load on first use (PEP 562), so importing
# one light submodule (`training.common`, as `export` and `evaluate` do) does not start
# TensorFlow: `--help` and bad-argument errors stay instant and free of its start-up logs.
_EXPORTS = {
    "EMOTION_TRAINING": "keras_music.config", "GENRE_TRAINING": "keras_music.config",  # each task's defaults
    **dict.fromkeys(("epoch_summary", "print_epoch", "run_identity", "save_model"), "keras_music.training.common"),
    **dict.fromkeys(("TaggerFit", "build_tagger", "describe", "emotion_split", "train_emotion"),
                    "keras_music.training.emotion"),
    **dict.fromkeys(("GenreFit", "average_models", "class_weights", "fit_genre_mlp", "genre_split",
                     "load_genre_data", "train_genre"), "keras_music.training.genre"),
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what the names are, for type checkers and tests/test_architecture.py's import graph
    from keras_music.config import EMOTION_TRAINING, GENRE_TRAINING  # noqa: F401
    from keras_music.training.common import epoch_summary, print_epoch, run_identity, save_model  # noqa: F401
    from keras_music.training.emotion import TaggerFit, build_tagger, describe, emotion_split, train_emotion  # noqa: F401
    from keras_music.training.genre import (  # noqa: F401
        GenreFit, average_models, class_weights, fit_genre_mlp, genre_split, load_genre_data, train_genre)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
