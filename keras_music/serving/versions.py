"""TF Serving's model folders: `BASE/NAME/VERSION/` with integer versions.

A new export takes the next free version and never overwrites one. It is written to a hidden
temporary folder beside it and renamed into place, so a crash never leaves a half-written
version that a server could pick up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from keras_music.serving import ExportError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def existing_versions(model_root: Path) -> list[int]:
    """Integer version folders under `model_root` (TF Serving ignores anything else)."""
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def version_dir(base_dir: Path, name: str, version: int | None) -> Path:
    """`base_dir/name/version`: the next free version, or `version` if it is free."""
    if not NAME_PATTERN.match(name):
        raise ExportError(f"model name {name!r}: use letters, digits, '_', '.', '-' (it becomes a folder and "
                          "the TF Serving model name).")
    root = base_dir / name
    versions = existing_versions(root)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}.")
    target = root / str(version)
    if target.exists():
        raise ExportError(f"{target} already exists; versions are never overwritten (existing: {versions}). "
                          "Leave out --version to take the next one.")
    return target


@contextlib.contextmanager
def staged_version(target: Path):
    """Yields a hidden folder beside `target` to write the version into; renames it to `target`
    when the block ends, or removes it when the block fails (or `target` appeared meanwhile).

    Example:

    ```python
    with staged_version(Path("saved_models/genre/3")) as staging:
        archive.write_out(str(staging))
    ```
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        if target.exists():  # another export took this version meanwhile
            raise ExportError(f"{target} appeared while exporting; versions are never overwritten.")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
