"""The parts of a TF Serving export, one concern per module; `keras_music.export` puts them together.

    signatures.py  the ExportArchive of each kind of model, and how metadata.json describes its signatures
    warmup.py      assets.extra/tf_serving_warmup_requests: a PredictionLog record per signature
    versions.py    BASE/NAME/VERSION folders: the next free version, written aside and renamed into place
"""


class ExportError(ValueError):
    """An export that cannot be written; the message says why."""


# What an export serves, as a number: raised whenever a new keras_music writes a different graph or
# metadata.json from the same run (2: `serve_audio` gives arousal, valence and the front end's tag sets),
# so the packaged model's cached build (`tagging.presets.installed`) is rebuilt.
EXPORT_FORMAT = 2
