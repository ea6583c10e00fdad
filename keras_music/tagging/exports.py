"""Finding an export of ours on disk and what it says about itself (files only, no TensorFlow).

An export is what `keras_music.export` writes: `NAME/VERSION/saved_model.pb` plus
`assets/metadata.json` (labels, thresholds, sample rate, recipe, window and hop, signatures).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from keras_music.errors import MissingPathError, ParameterError
from keras_music.remote import has_scheme, mirror
from keras_music.serving.versions import existing_versions


def resolve_export(path: str | Path, parameter: str = "path") -> tuple[Path, dict]:
    """The version folder `path` names (its newest version when it names a model folder) and its
    metadata, or a `ParameterError` naming `parameter`.

    Only emotion exports with a `serve_audio` signature (sequence taggers) tag audio files.
    """
    given = path
    if has_scheme(path):  # an export on object storage: loaded from a local mirror (keras_music.remote)
        path = mirror(str(path), parameter=parameter)
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        versions = existing_versions(path)
        if not versions:
            raise MissingPathError(parameter, given, "no saved_model.pb there and no version folders under it "
                                   "(expected saved_models/NAME or saved_models/NAME/VERSION).")
        path = path / str(versions[-1])
    metadata_path = path / "assets" / "metadata.json"
    if not metadata_path.is_file():
        raise MissingPathError(parameter, given, f"{metadata_path} does not exist: not an export of keras_music.export.")
    metadata = json.loads(metadata_path.read_text())
    if metadata.get("task") != "emotion" or "serve_audio" not in metadata.get("signatures", {}):
        raise ParameterError(parameter, given, f"{path} ({metadata.get('task')} {metadata.get('model')}) has no "
                             "serve_audio signature; tagging audio needs an emotion model on sequences (for example "
                             "cnn_lstm, mlp_lstm or musicnn_head).")
    return path, metadata


def export_identity(path: Path) -> str:
    """`NAME/VERSION:digest` of an export's graph, weights index and metadata: what a resumed output
    file must have been written with."""
    digest = hashlib.sha256()
    for part in ("saved_model.pb", "variables/variables.index", "assets/metadata.json"):
        if (path / part).is_file():
            digest.update((path / part).read_bytes())
    return f"{path.parent.name}/{path.name}:{digest.hexdigest()[:12]}"
