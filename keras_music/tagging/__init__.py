"""Tagging audio with an export of ours: the library behind `keras-music predict`, `Tagger` and Beam.

    exports.py    find an export and read its metadata (files only)
    inputs.py     which files to tag (folders recursively), checked before TensorFlow starts
    presets.py    models that ship with the package, built on first use
    streaming.py  reader threads, chunks of long files, batches through serve_audio
    results.py    TagResult: probabilities, tags, arousal/valence, the per-window curve, embedding
    writers.py    CSV/JSON text and the resumable collection file (ResultLog)
    tagger.py     Tagger: the Python API over all of the above

Importing this package does not start TensorFlow; loading a model does.
"""

from keras_music.tagging.results import TagResult, Window
from keras_music.tagging.tagger import Tagger

__all__ = ["TagResult", "Tagger", "Window"]
