"""Folders on object storage (`gs://bucket/...`), used from one machine: a local mirror, and uploads.

A feature store built on a cluster, or an export kept in a bucket, is read here through a
local mirror (`mirror`; a single file such as a labels CSV: `fetch`): the folder's files are copied once into the cache
(`$KERAS_MUSIC_CACHE/remote/`) and copied again only when their size changes, so `train
--data gs://...` and `predict --model gs://...` read local files after the first use. `upload`
copies a local folder (an export) to object storage, each file whole.

All remote I/O goes through Apache Beam's `FileSystems` (`pip install keras_music[beam]`),
which knows `gs://` (and S3, Azure, HDFS with their packages) and is the filesystem the Beam
pipelines write with. TensorFlow's own `gs://` filesystem could stream a store without a
mirror, but it talks to storage.googleapis.com only: it cannot be pointed at a local
emulator, so that path could not be tested here (docs/scale-out.md). Layer 0: the standard
library, and Beam imported only when a remote path is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from keras_music.config import cache_dir
from keras_music.errors import MissingPathError, ParameterError

BEAM_HINT = "reading and writing object storage (gs://...) needs Apache Beam's filesystems: pip install 'keras_music[beam]'"


def has_scheme(path) -> bool:
    """`gs://bucket/x` and other Beam filesystems, as opposed to a local path."""
    return "://" in str(path)


def filesystems():
    """Beam's `FileSystems` (every filesystem Beam knows), or an ImportError saying how to install it."""
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError as error:
        raise ImportError(BEAM_HINT) from error
    return FileSystems


def remote_files(url: str, parameter: str = "path") -> dict[str, int]:
    """`{path relative to url: size}` of every file below the remote folder `url`."""
    try:
        file_systems = filesystems()
    except ImportError:
        raise ParameterError(parameter, url, f"{BEAM_HINT}.") from None
    root = url.rstrip("/")
    try:
        matched = file_systems.match([file_systems.join(root, "**")])[0].metadata_list
    except Exception as error:  # Beam's reason: no such bucket, no credentials, an unknown scheme
        raise ParameterError(parameter, url, f"could not be listed ({error}).") from None
    return {m.path[len(root) + 1:]: m.size_in_bytes for m in matched if m.path.startswith(root + "/")}


def mirror(url: str, parameter: str = "path", root: Path | None = None) -> Path:
    """A local copy of the remote folder `url`, kept in the cache and brought up to date.

    Files missing locally or of another size are copied, each under a temporary name renamed
    when complete, so an interrupted mirror is finished by the next call.
    """
    files = remote_files(url, parameter)
    if not files:
        raise MissingPathError(parameter, url, "no files there (expected a folder: a feature store or an export).")
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    # the folder keeps its name and its parent's (an export's NAME/VERSION: what its identity reads)
    local = (root or cache_dir() / "remote") / digest / Path(*url.rstrip("/").split("://", 1)[1].split("/")[-2:])
    for relative, size in sorted(files.items()):
        target = local / relative
        if not (target.is_file() and target.stat().st_size == size):
            copy_file(f"{url.rstrip('/')}/{relative}", target)
    return local


def fetch(url: str, parameter: str = "path", root: Path | None = None) -> Path:
    """A local copy of the remote file `url` (a labels CSV), in the cache, copied again when its size changes."""
    folder, _, name = url.rstrip("/").rpartition("/")
    files = remote_files(folder, parameter)
    if name not in files:
        raise MissingPathError(parameter, url, "no such file.")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = (root or cache_dir() / "remote") / digest / name
    if not (target.is_file() and target.stat().st_size == files[name]):
        copy_file(url, target)
    return target


def copy_file(url: str, target: Path) -> None:
    """Copy the remote file `url` to `target` under a temporary name, renamed when complete."""
    file_systems = filesystems()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial")
    with file_systems.open(url) as source, open(partial, "wb") as out:
        while block := source.read(1 << 22):
            out.write(block)
    os.replace(partial, target)


def upload(folder: Path, url: str, last: str | None = None) -> str:
    """Copy the local `folder` to the remote folder `url` (each file written whole); returns `url`.

    `last`: a file name copied after all others (an export's `saved_model.pb`: a server polling
    the folder finds the graph only once the rest is there)."""
    file_systems = filesystems()
    for path in sorted((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: (p.name == last, str(p))):
        target = file_systems.join(url.rstrip("/"), path.relative_to(folder).as_posix())
        with open(path, "rb") as source, file_systems.create(target) as out:
            while block := source.read(1 << 22):
                out.write(block)
    return url
