"""One KerasTuner HyperModel for every registered model family.

A family's search space is declared once, in its registry entry (`keras_music.models`);
a JSON file can replace or fix any entry (`keras_music.hparams.load_space`, which also
documents the entry format). The HyperModel only maps a trial's values onto the family's
config (`keras_music.hparams.configs_from_hparams`) and calls the training library's
builder and fit (`GenreFit` / `TaggerFit`), so no model exists twice and
`train --hparams best.json` builds the configuration the search found (trained the way
`train` trains: the genre task with its ensemble size (`--ensemble`, default 1), epochs and
patience; a trial is one model with the search's shorter budget).
"""

from __future__ import annotations

import json
import logging
import os

import keras_tuner as kt

from keras_music.hparams import configs_from_hparams, load_space
from keras_music.models.family import ModelFamily

logger = logging.getLogger("tuning")


def log_trial(hp) -> None:
    """One line per trial run, naming the tuner (chief/worker) that runs it."""
    logger.info("%s: trial with %s", os.environ.get("KERASTUNER_TUNER_ID", "tuner"), json.dumps(hp.values))


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


class FamilyHyperModel(kt.HyperModel):
    """A registered family on fixed training / validation data.

    Args:
        family: ModelFamily. What to build (`keras_music.models.REGISTRY`).
        fitter: the training library's `GenreFit` (genre) or `TaggerFit` (emotion) on the
            split; it builds models and fits them, and names the objective.
        model_config: the family's config that the trial values are applied to.
        training: TrainingConfig. Epochs, seed, batch size unless searched.
        sequence_config: SequenceConfig (emotion only). Crops and batching.
        space: dict or None. The search space; None = the family's own.
    """

    def __init__(self, family: ModelFamily, fitter, model_config, training, sequence_config=None,
                 space: dict | None = None):
        super().__init__(name=family.name)
        self.family, self.fitter = family, fitter
        self.model_config, self.training, self.sequence_config = model_config, training, sequence_config
        self.space = space or load_space(family)
        self.objective = kt.Objective(*fitter.objective)

    def configs(self, hp):
        return configs_from_hparams(self.family, declare(hp, self.space), self.model_config, self.training)

    def build(self, hp):
        import keras

        config, _ = self.configs(hp)
        keras.utils.set_random_seed(self.training.seed)
        return self.fitter.build(config)

    def fit(self, hp, model, *args, **kwargs):
        import dataclasses

        config, training = self.configs(hp)
        log_trial(hp)
        epochs = kwargs.pop("epochs", training.epochs)  # Hyperband passes its own epochs
        callbacks = kwargs.pop("callbacks", [])
        if self.family.task == "genre":
            return self.fitter.fit(model, config, training, epochs=epochs, callbacks=callbacks)
        sequences = dataclasses.replace(self.sequence_config, batch_size=training.batch_size)
        return self.fitter.fit(model, config, training, sequences, epochs=epochs, callbacks=callbacks)
