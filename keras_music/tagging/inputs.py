"""Which files to tag: audio files and folders (recursive) given by a user, checked before TensorFlow starts."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.tagging.exports import resolve_export


def find_audio_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files of the given files and folders (folders recursively, by extension), and the
    `(path, reason)` of arguments that hold none."""
    from keras_music.data.extraction import find_audio

    files, bad = [], []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            try:
                files.extend(find_audio(path))
            except (ValueError, FileNotFoundError) as error:
                bad.append((str(name), str(error)))
        elif path.is_file():
            files.append(path)
        else:
            bad.append((str(name), "no such file or folder"))
    return files, bad


class InputError(Exception):
    """Nothing to tag, or the model is no export: its text is the `error: ...` lines a command prints."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(f"error: {problem}" for problem in problems))


def check_inputs(paths: list[str], model: str | None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The audio files of `paths` and the `(path, reason)` of bad ones, after every check that needs
    no TensorFlow, so a typo costs no start-up or model load (`predict`, `beam.tag`).

    Raises `InputError` when no path exists, none holds audio, or `model` (a `--model` flag) is no export."""
    if not any(os.path.exists(name) for name in paths):
        raise InputError([f"no such file or folder: {', '.join(map(str, paths))}"])
    files, failed = find_audio_files(paths)
    if not files:
        raise InputError([f"{name}: {reason}" for name, reason in failed] + ["no audio file to tag."])
    if model is not None:
        try:
            resolve_export(model, parameter="model")
        except ParameterError as error:
            raise InputError([error.for_flags({"model": "--model"})]) from None
    return files, failed
