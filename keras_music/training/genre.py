"""Genre training: the seeded split by song, the ensemble of genre MLPs, the run folder.

`fit_genre_mlp` is the one training recipe, shared by `python -m keras_music.train`,
`tuning/` and `bench/genre.py`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from keras_music.version import __version__
from keras_music.config import TrainingConfig, atomic_path, config_to_dict, save_json
from keras_music.data.demo import make_genre_table
from keras_music.data.genre import (
    fit_genre_preprocessing,
    genre_dataset,
    load_class_names,
    load_genre_csv,
    split_by_song,
    validate_genre_frame,
)
from keras_music.models.genre_mlp import FAMILY as GENRE_FAMILY
from keras_music.models.genre_mlp import GenreMLPConfig, training_model
from keras_music.reports import classification_report, plot_history, write_report
from keras_music.resume import check_identity
from keras_music.training.common import run_identity, save_model

logger = logging.getLogger("keras_music.training")



def load_genre_data(data: str, num_classes: int):
    """The cleaned genre frame for `--data` ('demo' or a CSV path)."""
    if data == "demo":
        return validate_genre_frame(make_genre_table(num_classes=num_classes), num_classes, source="demo")
    return load_genre_csv(data, num_classes=num_classes)


def class_weights(labels, num_classes: int, power: float) -> dict[int, float] | None:
    """`(mean count / class count) ** power` per class present in `labels`; None when power is 0."""
    if not power:
        return None
    counts = np.bincount(labels, minlength=num_classes).astype("float64")
    mean = counts[counts > 0].mean()
    return {c: float((mean / n) ** power) if n else 1.0 for c, n in enumerate(counts)}


class GenreFit:
    """Builds and fits one genre model on fixed training / validation rows: an ensemble member
    here, or a KerasTuner trial (`tuning/`). Preprocessing constants come from `train` only."""

    objective = ("val_accuracy", "max")

    def __init__(self, train, validation, num_classes: int, model_config: GenreMLPConfig):
        self.train, self.validation, self.num_classes = train, validation, num_classes
        self.preprocessing = fit_genre_preprocessing(train, model_config.feature_set, model_config.numeric_bins)

    def build(self, model_config: GenreMLPConfig, name: str = "genre_mlp"):
        return GENRE_FAMILY.build(model_config, self.preprocessing, num_classes=self.num_classes, name=name)

    def fit(self, model, model_config: GenreMLPConfig, training: TrainingConfig, seed: int | None = None,
            epochs: int | None = None, verbose: int = 0, callbacks=()):
        """`model.fit` on seeded shuffled training batches, scored on validation every epoch."""
        features = model_config.feature_set
        seed = training.seed if seed is None else seed
        return training_model(model, model_config).fit(
            genre_dataset(self.train, features, training.batch_size, self.num_classes, shuffle=True, seed=seed),
            validation_data=genre_dataset(self.validation, features, 1024, self.num_classes),
            epochs=epochs or training.epochs,
            shuffle=False,  # genre_dataset already shuffles (seeded)
            class_weight=class_weights(self.train["label"].to_numpy(), self.num_classes,
                                       model_config.class_weight_power),
            verbose=verbose,
            callbacks=list(callbacks),
        )


def fit_genre_mlp(train, validation, model_config: GenreMLPConfig, training: TrainingConfig, num_classes: int,
                  verbose: int = 0, backup_dir: Path | None = None, identity: dict | None = None):
    """Fit `ensemble_size` genre MLPs (seeds seed, seed+1, ...) and average them into one model.

    Each member is adapted on `train` and early-stopped on validation accuracy with its best
    weights restored. This is the one training recipe, shared by the CLI and `bench/genre.py`.
    With `backup_dir`, every finished member is saved there, and a re-run after a crash loads
    the finished members instead of training them again (an interrupted member restarts; each
    member is seeded on its own, so the result is the same). A backup of a different run
    (`identity`) is refused.

    Returns:
        `(model, histories)`: one functional model that averages the members' probabilities
        (the member itself when `ensemble_size` is 1), and each member's `History.history`.
    """
    import keras

    fitter = GenreFit(train, validation, num_classes, model_config)
    members, histories = [], []
    if backup_dir is not None:
        identity = json.loads(json.dumps(identity or {}))
        marker = backup_dir / "identity.json"
        if marker.is_file():
            check_identity(backup_dir, json.loads(marker.read_text()), identity)
        else:
            backup_dir.mkdir(parents=True, exist_ok=True)
            save_json(marker, identity)
    for member in range(model_config.ensemble_size):
        saved = backup_dir / f"member-{member}.keras" if backup_dir else None
        if saved is not None and saved.is_file():
            members.append(keras.saving.load_model(saved))
            histories.append(json.loads(saved.with_suffix(".json").read_text()))
            logger.info("Member %d/%d: finished before the restart, loaded from %s", member + 1,
                        model_config.ensemble_size, saved)
            continue
        seed = training.seed + member
        keras.utils.set_random_seed(seed)
        model = fitter.build(model_config, name=f"genre_mlp_{member}")
        history = fitter.fit(model, model_config, training, seed=seed, verbose=verbose, callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=training.patience,
                                          restore_best_weights=True)])
        logger.info("Member %d/%d: best validation accuracy %.4f after %d epochs", member + 1,
                    model_config.ensemble_size, max(history.history["val_accuracy"]), len(history.history["loss"]))
        members.append(model)
        histories.append({k: [float(v) for v in values] for k, values in history.history.items()})
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            save_json(saved.with_suffix(".json"), histories[-1])
            with atomic_path(saved, keep_suffix=True) as tmp:  # written last: the member's commit point
                model.save(tmp)
    return average_models(members), histories


def average_models(members):
    """One model whose output is the mean of the members' outputs (same named inputs)."""
    import keras

    if len(members) == 1:
        return members[0]
    inputs = {name: keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=name)
              for name, tensor in members[0].input.items()}
    outputs = keras.layers.Average(name="probabilities")([member(inputs) for member in members])
    # Left uncompiled: it is never trained as a whole, only used to predict.
    return keras.Model(inputs, outputs, name="genre_mlp_ensemble")


def write_histories(histories: list[dict], path: Path) -> None:
    """All members' per-epoch metrics in one CSV (columns: member, epoch, metrics...)."""
    import pandas as pd

    frames = [pd.DataFrame(h).assign(member=i, epoch=range(1, len(h["loss"]) + 1)) for i, h in enumerate(histories)]
    table = pd.concat(frames)[["member", "epoch", *histories[0].keys()]]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def genre_split(data: str, training: TrainingConfig, classes: str | None = None):
    """`(class_names, train, validation, test)` frames of `--data`, split by song (seeded)."""
    class_names = load_class_names(classes)
    frame = load_genre_data(data, len(class_names))
    split = split_by_song(frame, seed=training.split_seed, validation_fraction=training.validation_fraction,
                          test_fraction=training.test_fraction)
    train, validation, test = (frame.iloc[rows] for rows in (split.train, split.validation, split.test))
    if min(len(train), len(validation), len(test)) == 0:
        raise ValueError(f"{data}: too few songs to split ({len(frame)} rows); need songs in train, "
                         "validation and test.")
    logger.info("Split by song (split seed %d): %d train, %d validation, %d test rows",
                training.split_seed, len(train), len(validation), len(test))
    return class_names, train, validation, test


def train_genre(data: str, out_dir: Path, model_config: GenreMLPConfig, training: TrainingConfig,
                classes: str | None = None, verbose: int = 2) -> dict:
    """Fit the genre MLP on the training songs, early-stop on validation, report on test.

    Writes the run folder and returns the test report (also in `out_dir/report.json`).
    """
    class_names, train, validation, test = genre_split(data, training, classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, histories = fit_genre_mlp(train, validation, model_config, training, len(class_names), verbose=verbose,
                                     backup_dir=out_dir / "backup",
                                     identity=run_identity(data, classes, model_config, training))
    probabilities = model.predict(genre_dataset(test, model_config.feature_set, 1024), verbose=0)
    report = classification_report(test["label"].to_numpy(), probabilities, class_names)
    report.update({"split": "test", "data": data, "epochs_run": [len(h["loss"]) for h in histories]})

    save_model(model, out_dir)
    save_json(out_dir / "config.json", {
        "task": "genre",
        "model": GENRE_FAMILY.name,
        "model_config": config_to_dict(model_config),
        "training_config": config_to_dict(training),
        "class_names": class_names,
        "data": data,
        "keras_music_version": __version__,
    })
    write_histories(histories, out_dir / "history.csv")
    plot_history(histories, out_dir / "history.png",
                 title=f"genre MLP ({model_config.feature_set} features): accuracy and loss per epoch")
    write_report(out_dir / "report.json", report)
    shutil.rmtree(out_dir / "backup", ignore_errors=True)  # only now is the run folder complete
    return report
