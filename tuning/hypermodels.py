"""KerasTuner HyperModels over the keras_music builders.

Each search space is declared once, below, as plain data (`SPACES`); a JSON file can
replace or fix any entry (`load_space`). A HyperModel only maps hyperparameter values
onto the package's config dataclasses (`configs_from_hparams`) and calls the same
builders and data pipelines as `python -m keras_music.train`, so no model exists twice
and `train --hparams best.json` builds the configuration the search found (trained the
way `train` trains: the genre task as an ensemble of 3, with `train`'s epochs and patience;
a trial is one model with the search's shorter budget).

Space entries (JSON):

    {"type": "int", "min": 1, "max": 3}                      # keras_tuner hp.Int
    {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}
    {"type": "choice", "values": [64, 128, 256]}
    0.3                                                      # a fixed value (hp.Fixed)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import keras_tuner as kt

logger = logging.getLogger("tuning")


def log_trial(hp) -> None:
    """One line per trial run, naming the tuner (chief/worker) that runs it."""
    logger.info("%s: trial with %s", os.environ.get("KERASTUNER_TUNER_ID", "tuner"), json.dumps(hp.values))

LEARNING_RATE = {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}
DROPOUT = {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1}

SPACES: dict[str, dict] = {
    # Genre MLP: `layers` hidden layers, the first `units` wide, each next one half as wide.
    "genre_mlp": {
        "layers": {"type": "int", "min": 1, "max": 3},
        "units": {"type": "choice", "values": [128, 256, 512, 1024]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
        "batch_size": {"type": "choice", "values": [64, 128, 256]},
    },
    # Per-clip tagger (CAL500 aggregated features, or pooled mel + MFCC): two hidden layers.
    "tag_mlp": {
        "head_units": {"type": "choice", "values": [32, 64, 128, 256]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
        "batch_size": {"type": "choice", "values": [8, 16, 32]},
    },
    "mlp_lstm": {
        "frame_units": {"type": "choice", "values": [32, 64, 128]},
        "lstm_units": {"type": "choice", "values": [32, 64, 128]},
        "head_units": {"type": "choice", "values": [32, 64, 128]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
    },
    # CNN-LSTM (default variant): `conv_blocks` 3x3 blocks, channels doubling from `conv_channels`.
    "cnn_lstm": {
        "conv_blocks": {"type": "int", "min": 1, "max": 3},
        "conv_channels": {"type": "choice", "values": [8, 16, 32]},
        "lstm_units": {"type": "choice", "values": [32, 64, 128]},
        "head_units": {"type": "choice", "values": [32, 64, 128]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
    },
}

# (--task, --model) of `keras_music.train` / `tuning.search` -> search space and hypermodel name.
MODEL_NAMES = {("genre", "mlp"): "genre_mlp", ("emotion", "mlp"): "tag_mlp", ("emotion", "mlp_lstm"): "mlp_lstm",
               ("emotion", "cnn_lstm"): "cnn_lstm"}
EMOTION_MODELS = {name: model for (task, model), name in MODEL_NAMES.items() if task == "emotion"}


class SearchSpaceError(ValueError):
    """A search space or hyperparameter file that cannot be used; the message says why."""


def _read_json(path: str | Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SearchSpaceError(f"{what} {str(path)!r} does not exist.") from None
    except json.JSONDecodeError as error:
        raise SearchSpaceError(f"{what} {str(path)!r}: not valid JSON ({error}).") from None


def load_best_hparams(path: str | Path, task: str, model: str, features: str | None = None) -> dict:
    """The hyperparameter values of a `best_hparams.json` written by `tuning.search`, checked
    against the task and model they are applied to (a genre feature set other than the
    searched one is allowed, with a warning)."""
    saved = _read_json(path, "--hparams file")
    if not isinstance(saved, dict) or not isinstance(saved.get("hyperparameters"), dict):
        raise SearchSpaceError(f"--hparams {path}: expected an object with 'hyperparameters' "
                               "(the best_hparams.json of python -m tuning.search).")
    for key, wanted in (("task", task), ("model", model)):
        if saved.get(key, wanted) != wanted:
            raise SearchSpaceError(f"--hparams {path}: searched for {key} {saved[key]!r}, but this run trains "
                                   f"{key} {wanted!r}.")
    if features and saved.get("features") and saved["features"] != features:
        logger.warning("--hparams %s was searched with --features %s; training with --features %s.", path,
                       saved["features"], features)
    return saved["hyperparameters"]


def load_space(model: str, overrides: str | Path | dict | None = None) -> dict:
    """The declared space of `model` with `overrides` (a dict or JSON file) applied.

    Raises:
        SearchSpaceError: unknown model or hyperparameter name, a malformed entry, or a
            space with nothing left to search.
    """
    if model not in SPACES:
        raise SearchSpaceError(f"no search space for model {model!r}; known: {sorted(SPACES)}.")
    space = dict(SPACES[model])
    source = "search space"
    if isinstance(overrides, (str, Path)):
        source = str(overrides)
        overrides = _read_json(overrides, "search space file")
    if overrides is not None and not isinstance(overrides, dict):
        raise SearchSpaceError(f"{source}: expected a JSON object of hyperparameter name -> entry.")
    unknown = sorted(set(overrides or {}) - set(space))
    if unknown:
        raise SearchSpaceError(f"{source}: unknown hyperparameter(s) {unknown} for {model}; "
                               f"valid names: {sorted(space)}.")
    space.update(overrides or {})
    for name, entry in space.items():
        _check_entry(source, name, entry)
    if all(not isinstance(entry, dict) for entry in space.values()):
        raise SearchSpaceError(f"{source}: every hyperparameter of {model} is fixed; the search space is empty "
                               "(give at least one entry a range or choices).")
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


def declare(hp: kt.HyperParameters, space: dict) -> dict:
    """Declare every entry of `space` on `hp`; returns name -> the value of this trial."""
    values = {}
    for name, entry in space.items():
        if not isinstance(entry, dict):
            values[name] = hp.Fixed(name, entry)
        elif entry["type"] == "choice":
            values[name] = hp.Choice(name, entry["values"])
        elif entry["type"] == "int":
            values[name] = hp.Int(name, entry["min"], entry["max"], step=entry.get("step", 1))
        else:
            values[name] = hp.Float(name, entry["min"], entry["max"], step=entry.get("step"),
                                    sampling=entry.get("sampling", "linear"))
    return values


def configs_from_hparams(model: str, values: dict, model_config, training):
    """`(model_config, training)` with the hyperparameter `values` of `model` applied.

    The one mapping from names to config fields, used by the search and by
    `keras_music.train --hparams`.
    """
    unknown = sorted(set(values) - set(SPACES.get(model, {})))
    if unknown:
        raise SearchSpaceError(f"unknown hyperparameter(s) {unknown} for {model}; valid names: "
                               f"{sorted(SPACES.get(model, {}))}.")
    values = dict(values)
    training = dataclasses.replace(training, batch_size=int(values.pop("batch_size", training.batch_size)))
    if model == "genre_mlp":
        layers = int(values.pop("layers", len(model_config.hidden_units)))
        units = int(values.pop("units", model_config.hidden_units[0]))
        values["hidden_units"] = tuple(max(units // 2 ** i, 8) for i in range(layers))
    if model == "cnn_lstm":
        blocks = int(values.pop("conv_blocks", len(model_config.conv_channels)))
        channels = int(values.pop("conv_channels", model_config.conv_channels[0]))
        values["conv_channels"] = tuple(channels * 2 ** i for i in range(blocks))
    for name in ("frame_units", "lstm_units", "head_units"):
        if name in values:
            values[name] = int(values[name])
    return dataclasses.replace(model_config, **values), training


def default_hparams(model: str, model_config, training) -> dict:
    """The values of `SPACES[model]` that reproduce `model_config` and `training` (the inverse
    of `configs_from_hparams`), e.g. to score the defaults exactly as a trial."""
    values = {}
    for name in SPACES[model]:
        if name == "batch_size":
            values[name] = training.batch_size
        elif model == "genre_mlp" and name in ("layers", "units"):
            values[name] = len(model_config.hidden_units) if name == "layers" else model_config.hidden_units[0]
        elif model == "cnn_lstm" and name in ("conv_blocks", "conv_channels"):
            values[name] = len(model_config.conv_channels) if name == "conv_blocks" else model_config.conv_channels[0]
        else:
            values[name] = getattr(model_config, name)
    return values


class GenreMLPHyperModel(kt.HyperModel):
    """The genre MLP (one member, no ensemble) on a fixed train / validation split."""

    objective = kt.Objective("val_accuracy", direction="max")

    def __init__(self, train, validation, num_classes: int, model_config, training, space: dict | None = None):
        from keras_music.models.mlp import fit_genre_preprocessing

        super().__init__(name="genre_mlp")
        self.train, self.validation, self.num_classes = train, validation, num_classes
        self.model_config = dataclasses.replace(model_config, ensemble_size=1)
        self.training = training
        self.space = space or load_space("genre_mlp")
        self.preprocessing = fit_genre_preprocessing(train, self.model_config)

    def build(self, hp):
        import keras

        from keras_music.models.mlp import build_genre_mlp

        config, _ = configs_from_hparams("genre_mlp", declare(hp, self.space), self.model_config, self.training)
        keras.utils.set_random_seed(self.training.seed)
        return build_genre_mlp(config, self.preprocessing, self.num_classes)

    def fit(self, hp, model, *args, **kwargs):
        from keras_music.models.mlp import genre_dataset
        from keras_music.train import class_weights

        config, training = configs_from_hparams("genre_mlp", declare(hp, self.space), self.model_config,
                                                self.training)
        log_trial(hp)
        return model.fit(
            genre_dataset(self.train, config.feature_set, training.batch_size, self.num_classes, shuffle=True,
                          seed=training.seed),
            validation_data=genre_dataset(self.validation, config.feature_set, 1024, self.num_classes),
            epochs=kwargs.pop("epochs", training.epochs), shuffle=False,  # Hyperband passes its own epochs
            class_weight=class_weights(self.train["label"].to_numpy(), self.num_classes, config.class_weight_power),
            **{**kwargs, "verbose": 0})  # the tuner prints one summary per trial


class EmotionHyperModel(kt.HyperModel):
    """An emotion tagger (`model_name` in `SPACES`) on fixed train / validation clips."""

    objective = kt.Objective("val_macro_auc", direction="max")
    model_name = ""

    def __init__(self, emotion, train_ids, val_ids, model_config, sequence_config, training,
                 space: dict | None = None):
        super().__init__(name=self.model_name)
        self.emotion, self.train_ids, self.val_ids = emotion, list(train_ids), list(val_ids)
        model = EMOTION_MODELS[self.model_name]
        if model_config.model != model:  # another model's config: take this model's own defaults
            model_config = dataclasses.replace(model_config, model=model, dropout=None, input_noise=None, l2=None)
        self.model_config = model_config
        self.sequence_config, self.training = sequence_config, training
        self.space = space or load_space(self.model_name)

    def build(self, hp):
        import keras

        from keras_music.train import build_tagger

        config, _ = configs_from_hparams(self.model_name, declare(hp, self.space), self.model_config, self.training)
        keras.utils.set_random_seed(self.training.seed)
        return build_tagger(config, self.emotion, self.train_ids)

    def fit(self, hp, model, *args, **kwargs):
        from keras_music.data.emotion import emotion_dataset
        from keras_music.data.sequences import EpochClock

        _, training = configs_from_hparams(self.model_name, declare(hp, self.space), self.model_config, self.training)
        sequences = dataclasses.replace(self.sequence_config, batch_size=training.batch_size)
        vectors = self.model_name == "tag_mlp"
        log_trial(hp)
        clock = EpochClock()
        kwargs["callbacks"] = [clock.callback(), *kwargs.get("callbacks", [])]
        return model.fit(
            emotion_dataset(self.emotion, self.train_ids, sequences, vectors, training=True, seed=training.seed,
                            clock=clock),
            validation_data=emotion_dataset(self.emotion, self.val_ids, sequences, vectors),
            epochs=kwargs.pop("epochs", training.epochs), shuffle=False,  # Hyperband passes its own epochs
            **{**kwargs, "verbose": 0})  # one summary per trial


class TagMLPHyperModel(EmotionHyperModel):
    model_name = "tag_mlp"


class MLPLSTMHyperModel(EmotionHyperModel):
    model_name = "mlp_lstm"


class CNNLSTMHyperModel(EmotionHyperModel):
    model_name = "cnn_lstm"


HYPERMODELS = {"genre_mlp": GenreMLPHyperModel, "tag_mlp": TagMLPHyperModel, "mlp_lstm": MLPLSTMHyperModel,
               "cnn_lstm": CNNLSTMHyperModel}
