"""The model families, one entry each: the only list of models in the package.

The CLIs take `--model` from `sorted(REGISTRY)`, the training library builds and feeds a
model by its family's `inputs`, `tuning/` has one generic HyperModel over these entries,
and the benchmarks iterate them. Adding a family = its module under `keras_music/models/`
(config dataclass, builder, `FAMILY`) + one line below.
"""

from __future__ import annotations

from keras_music.errors import ParameterError
from keras_music.models import cnn_lstm, genre_mlp, mlp_lstm, musicnn_head, musicnn_lstm, tag_mlp
from keras_music.models.family import ModelFamily

REGISTRY: dict[str, ModelFamily] = {family.name: family for family in (
    genre_mlp.FAMILY,
    tag_mlp.FAMILY,
    mlp_lstm.FAMILY,
    cnn_lstm.FAMILY,
    musicnn_head.FAMILY,
    musicnn_lstm.FAMILY,
)}

# `--model mlp` (the first build's name for two families) still works, resolved by task.
ALIASES = {("genre", "mlp"): "genre_mlp", ("emotion", "mlp"): "tag_mlp"}
DEFAULT_MODEL = {"emotion": "cnn_lstm", "genre": "genre_mlp"}
MODEL_CHOICES = sorted({*REGISTRY, *(model for _, model in ALIASES)})  # what `--model` accepts


def families(task: str | None = None) -> list[ModelFamily]:
    """Every family (of `task`), in registry order."""
    return [f for f in REGISTRY.values() if task is None or f.task == task]


def get_family(model: str | None, task: str | None = None) -> ModelFamily:
    """The family of `--model` (a registry name, or `mlp` resolved by `task`); with no model,
    the task's default. Raises `ParameterError` (a ValueError) naming the valid choices."""
    if model is None:
        return REGISTRY[DEFAULT_MODEL[task or "emotion"]]
    name = ALIASES.get((task or "emotion", model), model)
    if name not in REGISTRY:
        raise ParameterError("model", model, f"unknown model; choose from {sorted(REGISTRY)}.")
    family = REGISTRY[name]
    if task is not None and family.task != task:
        raise ParameterError("model", model, f"does not fit task={task}: {task} models are "
                             f"{[f.name for f in families(task)]}.")
    return family


def family_from_flags(model: str | None, task: str | None, default_task: str) -> ModelFamily:
    """The family that a CLI's `--model` / `--task` name: the task defaults to the model's own
    (or `default_task`), the model to the task's default."""
    if task is None:
        task = REGISTRY[model].task if model in REGISTRY else default_task
    return get_family(model, task)


def family_of_run(config: dict) -> ModelFamily:
    """The family of a saved run's `config.json` (runs of the first build say `mlp`)."""
    return get_family(config["model"], config.get("task", "genre"))


def family_for_config(config) -> ModelFamily:
    """The family whose config dataclass `config` is (the training library's dispatch)."""
    for family in REGISTRY.values():
        if type(config) is family.config:
            return family
    raise TypeError(f"{type(config).__name__} is not the config of a registered model family "
                    f"({', '.join(f.config.__name__ for f in REGISTRY.values())}).")
