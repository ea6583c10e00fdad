"""Files on any filesystem Beam has (a local disk, `gs://`, HDFS...): listing audio and reading it.

Beam pipelines read their audio where it lies: the launcher lists it (`list_audio`), and a
worker that needs a local file for the decoder copies a remote one to a temporary file
(`local_copy`). Both go through Beam's `FileSystems`, so the pipeline's options (credentials,
`--hdfs_host`...) apply.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from keras_music.data.extraction import AUDIO_EXTENSIONS, find_audio
from keras_music.remote import copy_file, has_scheme


def list_audio(audio_dir: str, options=None) -> list[str]:
    """Audio files below `audio_dir`, sorted: `find_audio` for a local folder (what the local
    extractor lists), Beam's `FileSystems.match` for a remote one, with the pipeline's `options`
    (credentials, `--hdfs_host`...) applied to the listing as to the pipeline."""
    if not has_scheme(audio_dir):
        return [str(path) for path in find_audio(Path(audio_dir))]
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems

    if options is not None:
        FileSystems.set_options(options)
    try:  # an unknown scheme, a missing client library, no credentials, no such bucket: Beam's reason
        matches = FileSystems.match([FileSystems.join(audio_dir.rstrip("/"), "**")])
    except BeamIOError as error:
        raise ValueError(f"{audio_dir}: Beam could not list this folder ({error}).") from error
    files = sorted(m.path for result in matches for m in result.metadata_list
                   if os.path.splitext(m.path)[1].lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"No audio files in {audio_dir!r} or below (looked for {', '.join(AUDIO_EXTENSIONS)}).")
    return files


@contextlib.contextmanager
def local_copy(source: str):
    """A local path of `source`: itself, or a temporary copy of a remote file (same extension)."""
    if not has_scheme(source):
        yield Path(source)
        return
    folder = tempfile.mkdtemp(prefix="keras_music-")
    try:
        path = Path(folder) / f"clip{os.path.splitext(source)[1]}"
        copy_file(source, path)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
