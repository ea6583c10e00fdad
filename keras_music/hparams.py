"""Hyperparameters as data: search spaces (declared by each model family), space files, and
the `best_hparams.json` that `python -m tuning.search` writes and `train --hparams` reads.

Kept apart from `tuning/` (which needs KerasTuner) so that training can apply searched
values without importing the tuner. Space entries (JSON):

    {"type": "int", "min": 1, "max": 3}                      # keras_tuner hp.Int
    {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}
    {"type": "choice", "values": [64, 128, 256]}
    0.3                                                      # a fixed value (hp.Fixed)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from keras_music.models.family import ModelFamily
from keras_music.models.registry import get_family

logger = logging.getLogger(__name__)


class SearchSpaceError(ValueError):
    """A search space or hyperparameter file that cannot be used; the message says why."""


def _read_json(path: str | Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SearchSpaceError(f"{what} {str(path)!r} does not exist.") from None
    except json.JSONDecodeError as error:
        raise SearchSpaceError(f"{what} {str(path)!r}: not valid JSON ({error}).") from None


def load_best_hparams(path: str | Path, family: ModelFamily, features: str | None = None) -> dict:
    """The hyperparameter values of a `best_hparams.json` written by `tuning.search`, checked
    against the family they are applied to (a genre feature set other than the searched one
    is allowed, with a warning)."""
    saved = _read_json(path, "--hparams file")
    if not isinstance(saved, dict) or not isinstance(saved.get("hyperparameters"), dict):
        raise SearchSpaceError(f"--hparams {path}: expected an object with 'hyperparameters' "
                               "(the best_hparams.json of python -m tuning.search).")
    if saved.get("task", family.task) != family.task:
        raise SearchSpaceError(f"--hparams {path}: searched for task {saved['task']!r}, but this run trains "
                               f"task {family.task!r}.")
    searched = saved.get("model")
    if searched is not None and get_family(searched, saved.get("task", family.task)).name != family.name:
        raise SearchSpaceError(f"--hparams {path}: searched for model {searched!r}, but this run trains "
                               f"model {family.name!r}.")
    if features and saved.get("features") and saved["features"] != features:
        logger.warning("--hparams %s was searched with --features %s; training with --features %s.", path,
                       saved["features"], features)
    return saved["hyperparameters"]


def load_space(family: ModelFamily, overrides: str | Path | dict | None = None) -> dict:
    """The family's declared space with `overrides` (a dict or JSON file) applied.

    Raises:
        SearchSpaceError: unknown hyperparameter name, a malformed entry, or a space with
            nothing left to search.
    """
    space = dict(family.space)
    source = "search space"
    if isinstance(overrides, (str, Path)):
        source = str(overrides)
        overrides = _read_json(overrides, "search space file")
    if overrides is not None and not isinstance(overrides, dict):
        raise SearchSpaceError(f"{source}: expected a JSON object of hyperparameter name -> entry.")
    unknown = sorted(set(overrides or {}) - set(space))
    if unknown:
        raise SearchSpaceError(f"{source}: unknown hyperparameter(s) {unknown} for {family.name}; "
                               f"valid names: {sorted(space)}.")
    space.update(overrides or {})
    for name, entry in space.items():
        _check_entry(source, name, entry)
    if all(not isinstance(entry, dict) for entry in space.values()):
        raise SearchSpaceError(f"{source}: every hyperparameter of {family.name} is fixed; the search space is "
                               "empty (give at least one entry a range or choices).")
    return space


def _check_entry(source: str, name: str, entry) -> None:
    where = f"{source}: hyperparameter {name!r}"
    if not isinstance(entry, dict):
        if not isinstance(entry, (int, float)) or isinstance(entry, bool):
            raise SearchSpaceError(f"{where}: a fixed value must be a number, got {entry!r}.")
        return
    kind = entry.get("type")
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{where}: 'choice' needs a non-empty list 'values', got {values!r}.")
    elif kind in ("int", "float"):
        low, high = entry.get("min"), entry.get("max")
        if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or low > high:
            raise SearchSpaceError(f"{where}: needs numbers 'min' <= 'max', got min={low!r}, max={high!r}.")
        if entry.get("sampling", "linear") not in ("linear", "log", "reverse_log"):
            raise SearchSpaceError(f"{where}: sampling must be linear, log or reverse_log.")
        if entry.get("sampling") == "log" and low <= 0:
            raise SearchSpaceError(f"{where}: log sampling needs min > 0, got {low}.")
    else:
        raise SearchSpaceError(f"{where}: type must be 'int', 'float' or 'choice', got {kind!r}.")


def configs_from_hparams(family: ModelFamily, values: dict, model_config, training):
    """`(model_config, training)` with the hyperparameter `values` applied: the one mapping from
    names to config fields, used by the search and by `keras_music.train --hparams`."""
    unknown = sorted(set(values) - set(family.space))
    if unknown:
        raise SearchSpaceError(f"unknown hyperparameter(s) {unknown} for {family.name}; valid names: "
                               f"{sorted(family.space)}.")
    training = dataclasses.replace(training, batch_size=int(values.get("batch_size", training.batch_size)))
    return family.config_from_hparams(values, model_config), training


def default_hparams(family: ModelFamily, model_config, training) -> dict:
    """The values of the family's space that reproduce `model_config` and `training` (the
    inverse of `configs_from_hparams`), e.g. to score the defaults exactly as a trial."""
    values = family.hparams_from_config(model_config)
    if "batch_size" in family.space:
        values["batch_size"] = training.batch_size
    return {name: values[name] for name in family.space}
