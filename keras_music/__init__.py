"""keras_music: tag music with what it is (genre) and how it feels (emotion), from audio, with Keras 3.

    import keras_music as km

    tagger = km.Tagger.from_preset("emotion_4q")
    result = tagger.tag("song.mp3")
    print(result.tags, result.arousal, result.valence)

The names below load on first use, so `import keras_music` (and every `python -m
keras_music.<command>`) starts without TensorFlow; a model starts it when it loads.
"""

from __future__ import annotations

import importlib
import typing

from keras_music.version import __version__

# name -> module that defines it
_PUBLIC = {
    "Tagger": "keras_music.tagging.tagger",
    "TagResult": "keras_music.tagging.results",
    "Window": "keras_music.tagging.results",
    "FeatureStore": "keras_music.api",
    "TrainedRun": "keras_music.api",
    "fit_tagger": "keras_music.api",
    "ParameterError": "keras_music.errors",
    "build_report": "keras_music.collection_report",
    "read_collection": "keras_music.tagging.records",
    "SimilarityIndex": "keras_music.similarity",
}

if typing.TYPE_CHECKING:
    from keras_music.api import FeatureStore, TrainedRun, fit_tagger
    from keras_music.collection_report import build_report
    from keras_music.errors import ParameterError
    from keras_music.similarity import SimilarityIndex
    from keras_music.tagging.records import read_collection
    from keras_music.tagging.results import TagResult, Window
    from keras_music.tagging.tagger import Tagger

__all__ = ["FeatureStore", "ParameterError", "SimilarityIndex", "TagResult", "Tagger", "TrainedRun", "Window", "__version__",
           "build_report", "fit_tagger", "read_collection"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_music' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
