"""Train a model and write it, its history, curves and test report to one folder.

    python -m keras_music.train                       # CNN-LSTM emotion tagger on synthetic demo audio
    python -m keras_music.train --task emotion --model mlp_lstm --data mer4q --seed 0
    python -m keras_music.train --task genre --data ../shared/datasets/genre/train.csv --features full

The run folder gets `model.keras`, `config.json` (everything needed to rebuild or
re-score it), `history.csv`, `history.png` and `report.json`. Splits are by song (by
artist where artists are known) and seeded, so the same command gives the same split
and, on CPU, the same numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from keras_music import __version__
from keras_music.config import GenreMLPConfig, TrainingConfig, atomic_path, config_to_dict, save_json
from keras_music.data.genre import FEATURE_SETS, GenreDataError

logger = logging.getLogger("keras_music.train")

EXAMPLES = """examples:
  python -m keras_music.train
  python -m keras_music.train --task emotion --model cnn_lstm --variant default --data mer4q --seed 0 --out runs/4q-cnn
  python -m keras_music.train --task emotion --model mlp_lstm --data stores/my-music --labels my-tags.csv
  python -m keras_music.train --task genre --data ../shared/datasets/genre/train.csv --features full --seed 0 --out runs/genre-full
"""

# Task-specific defaults; flags left unset take these.
EMOTION_TRAINING = TrainingConfig(epochs=60, batch_size=16, patience=10, min_epochs=10,
                                  validation_fraction=0.15, test_fraction=0.15)
GENRE_TRAINING = TrainingConfig()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.train",
        description="Train a keras_music model, save it and print a test report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", choices=["emotion", "genre"], default="emotion",
                        help="emotion: multi-label tags from mel + MFCC sequences; genre: 11 classes from the "
                             "Kaggle table. Default: emotion.")
    parser.add_argument("--model", choices=["cnn_lstm", "mlp_lstm", "mlp"], default=None,
                        help="Emotion: cnn_lstm (default), mlp_lstm, or mlp (one vector per clip: CAL500's "
                             "aggregated features, or mean + std over time). Genre: mlp.")
    parser.add_argument("--variant", choices=["default", "seed"], default="default",
                        help="Emotion models: 'seed' reproduces the paper's choices, 'default' is what learns.")
    parser.add_argument("--data", default="demo",
                        help="'demo' (built-in synthetic data); emotion: 'mer4q', 'cal500' (with --model mlp), a "
                             "feature store, or a folder with labels.csv + features/*.npz; genre: a CSV path. "
                             "Default: demo.")
    parser.add_argument("--labels", default=None, help="Emotion with a feature store: labels CSV "
                        "(clip_id + tag columns). Default: STORE/labels.csv.")
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default=GenreMLPConfig.feature_set,
                        help="Genre: seed = the paper's columns; full = adds popularity and artist. Default: full.")
    parser.add_argument("--classes", default=None,
                        help="Genre: CSV 'id,name' of the classes. Default: the packaged Kaggle class list.")
    parser.add_argument("--epochs", type=int, default=None, help=f"Maximum epochs (early stopping on validation). "
                        f"Default: {EMOTION_TRAINING.epochs} (emotion), {GENRE_TRAINING.epochs} (genre).")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"Default: {EMOTION_TRAINING.batch_size} (emotion), {GENRE_TRAINING.batch_size} (genre).")
    parser.add_argument("--seed", type=int, default=0, help="Seeds weights, dropout, shuffling and crops. Default: 0.")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="Seeds the train/validation/test split (same split for every --seed). Default: 0.")
    parser.add_argument("--strategy", choices=["default", "mirrored", "multi_worker"], default="default",
                        help="tf.distribute strategy (emotion): mirrored = MirroredStrategy over all local devices; "
                             "multi_worker = MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (start one "
                             "process per worker; worker 0 writes --out).")
    parser.add_argument("--hparams", default=None, help="best_hparams.json of `python -m tuning.search`: train "
                        "with the searched hidden sizes, dropout, learning rate and batch size.")
    parser.add_argument("--export-name", default=None, help="Export the trained model for TF Serving as "
                        "EXPORT_DIR/NAME/<next version>/. Default: <task>_<model>.")
    parser.add_argument("--export-dir", default="saved_models", help="TF Serving model base folder. "
                        "Default: saved_models.")
    parser.add_argument("--no-export", action="store_true", help="Do not export (the run folder is still written).")
    parser.add_argument("--out", default=None, help="Run folder to write; re-running a killed command with the same "
                        "--out resumes it. Default: runs/<task>-<model>-<timestamp>.")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=2,
                        help="Progress: 0 silent, 1 Keras progress bar, 2 one line per epoch. Default: 2.")
    args = parser.parse_args(argv)
    args.model = args.model or ("cnn_lstm" if args.task == "emotion" else "mlp")
    if args.task == "genre" and args.model != "mlp":
        parser.error(f"--model {args.model} does not fit --task genre: genre uses mlp.")
    return args


def load_genre_data(data: str, num_classes: int):
    """The cleaned genre frame for `--data` ('demo' or a CSV path)."""
    from keras_music.data.demo import make_genre_table
    from keras_music.data.genre import load_genre_csv, validate_genre_frame

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

    from keras_music.models.mlp import build_genre_mlp, fit_genre_preprocessing, genre_dataset

    features = model_config.feature_set
    preprocessing = fit_genre_preprocessing(train, model_config)
    weights = class_weights(train["label"].to_numpy(), num_classes, model_config.class_weight_power)
    members, histories = [], []
    if backup_dir is not None:
        from keras_music.resume import check_identity

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
            import keras_music.models  # noqa: F401  (custom layers)

            members.append(keras.saving.load_model(saved))
            histories.append(json.loads(saved.with_suffix(".json").read_text()))
            logger.info("Member %d/%d: finished before the restart, loaded from %s", member + 1,
                        model_config.ensemble_size, saved)
            continue
        seed = training.seed + member
        keras.utils.set_random_seed(seed)
        model = build_genre_mlp(model_config, preprocessing, num_classes=num_classes, name=f"genre_mlp_{member}")
        history = model.fit(
            genre_dataset(train, features, training.batch_size, num_classes, shuffle=True, seed=seed),
            validation_data=genre_dataset(validation, features, 1024, num_classes),
            epochs=training.epochs,
            shuffle=False,  # genre_dataset already shuffles (seeded)
            class_weight=weights,
            verbose=verbose,
            callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                     patience=training.patience, restore_best_weights=True)],
        )
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
    from keras_music.data.genre import load_class_names, split_by_song

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
    from keras_music.models.mlp import genre_dataset
    from keras_music.reports import classification_report, plot_history, write_report

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
        "model": "mlp",
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


SUMMARY_KEYS = ("loss", "val_loss", "val_macro_auc", "val_macro_pr_auc", "val_macro_accuracy")


def epoch_summary(epochs: int):
    """A Keras callback printing one short line per epoch: losses and macro metrics only.

    The per-tag metrics (e.g. `val_auc_happy`) stay in History, `history.csv` and
    TensorBoard; on the console they would make each line hundreds of characters long.
    """
    import keras

    class EpochSummary(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print_epoch(epoch, epochs, logs or {}, time.perf_counter() - self.start)

    return EpochSummary()


def print_epoch(epoch: int, epochs: int, logs: dict, seconds: float) -> None:
    """The one-line epoch summary on stderr (`epoch 3/60  loss ...  val_macro_auc ...  (1.2 s)`)."""
    values = "  ".join(f"{k} {logs[k]:.4f}" for k in SUMMARY_KEYS if k in logs)
    print(f"epoch {epoch + 1}/{epochs}  {values}  ({seconds:.1f} s)", file=sys.stderr, flush=True)


def emotion_split(emotion, training: TrainingConfig) -> tuple[list[str], list[str], list[str]]:
    """Seeded train / validation / test clip ids, grouped by artist where artists are known."""
    from keras_music.data.splits import split_by_group

    ids = emotion.tags.clip_ids
    split = split_by_group([emotion.groups[c] for c in ids], training.split_seed, training.validation_fraction,
                           training.test_fraction)
    parts = tuple([ids[i] for i in rows] for rows in (split.train, split.validation, split.test))
    if not all(parts):
        raise ValueError(f"{emotion.description}: too few clips ({len(ids)}) for train, validation and test.")
    logger.info("%s: %d clips, %d tags; split by %s (split seed %d): %d train, %d validation, %d test",
                emotion.description, len(ids), len(emotion.tags.tags),
                "artist" if any(g != c for c, g in emotion.groups.items()) else "clip", training.split_seed,
                *map(len, parts))
    return parts


def build_tagger(model_config, emotion, train_ids):
    """The compiled tagger of `model_config.model`, with input statistics from the training clips only."""
    from keras_music.data.sequences import feature_statistics
    from keras_music.models.cnn_lstm import build_cnn_lstm
    from keras_music.models.mlp import build_tag_mlp
    from keras_music.models.mlp_lstm import build_mlp_lstm

    tags = emotion.tags.tags
    if model_config.model == "mlp":
        vectors = emotion.clip_vectors(train_ids)
        return build_tag_mlp(model_config, tags, {"mean": vectors.mean(axis=0), "std": vectors.std(axis=0)},
                             vectors.shape[1])
    builder = {"cnn_lstm": build_cnn_lstm, "mlp_lstm": build_mlp_lstm}[model_config.model]
    return builder(model_config, tags, feature_statistics(emotion.sequences(), train_ids), emotion.n_mels,
                   emotion.n_mfcc)


def train_emotion(data: str, out_dir: Path, model_config, sequence_config, training: TrainingConfig,
                  labels: str | None = None, strategy: str = "default", verbose: int = 2,
                  splits: tuple[list[str], list[str], list[str]] | None = None) -> dict:
    """Fit an emotion tagger on the training clips, early-stop on validation macro ROC-AUC, report on test.

    `splits` (train, validation, test clip ids) overrides the seeded split, e.g. for the
    folds of a cross-validation. `strategy`: `default` (one device), `mirrored`
    (MirroredStrategy over local devices) or `multi_worker` (MultiWorkerMirroredStrategy
    from TF_CONFIG, trained by `keras_music.multiworker`; only worker 0 writes the run
    folder). Writes the run folder and returns the test report (also in
    `out_dir/report.json`; `report["chief"]` is False on the other workers).
    """
    import keras
    import tensorflow as tf

    from keras_music.data.emotion import emotion_dataset, load_emotion_data
    from keras_music.data.sequences import EpochClock
    from keras_music.evaluate import score_tagger
    from keras_music.resume import ResumableEarlyStopping, ResumableTraining

    multi_worker = strategy == "multi_worker"
    if multi_worker:  # before any other TensorFlow work, as collective ops require
        from keras_music.multiworker import fit_multi_worker, is_chief, multi_worker_strategy

        scope = multi_worker_strategy()
    else:
        scope = tf.distribute.MirroredStrategy() if strategy == "mirrored" else tf.distribute.get_strategy()
    emotion = load_emotion_data(data, labels)
    train_ids, val_ids, test_ids = splits or emotion_split(emotion, training)
    mirrored = strategy != "default"  # replicas need full batches (see make_dataset)
    keras.utils.set_random_seed(training.seed)
    with scope.scope():
        model = build_tagger(model_config, emotion, train_ids)
    vectors = model_config.model == "mlp"
    clock = EpochClock()
    if multi_worker:
        history = fit_multi_worker(
            scope, model, emotion_dataset(emotion, train_ids, sequence_config, vectors, training=True,
                                          seed=training.seed, fill_last_batch=True, clock=clock),
            clock, training.epochs, training.patience, training.min_epochs,
            validate=lambda: score_tagger(model, emotion, val_ids, sequence_config)["macro_roc_auc"],
            on_epoch=lambda epoch, logs: print_epoch(epoch, training.epochs, logs, logs["seconds"]))
        report = score_tagger(model, emotion, test_ids, sequence_config)
        report.update({"split": "test", "data": data, "epochs_run": len(history), "resumed_after_epoch": None,
                       "chief": is_chief(scope), "workers": scope.num_replicas_in_sync})
        if not report["chief"]:
            return report  # worker 0 writes the run folder
        from keras_music.resume import write_history_csv

        out_dir.mkdir(parents=True, exist_ok=True)
        write_history_csv(history, out_dir / "history.csv")
        return _save_emotion_run(model, out_dir, report, history_columns(history), model_config, sequence_config,
                                 training, emotion, data, (train_ids, val_ids, test_ids))
    out_dir.mkdir(parents=True, exist_ok=True)
    early_stopping = ResumableEarlyStopping(monitor="val_macro_auc", mode="max", patience=training.patience,
                                            start_from_epoch=training.min_epochs, restore_best_weights=True)
    # Killed at any point, the same command resumes from the last finished epoch (keras_music.resume).
    resumable = ResumableTraining(out_dir / "backup", early_stopping, history_csv=out_dir / "history.csv",
                                  identity=run_identity(data, labels, model_config, sequence_config, training))
    model.fit(
        emotion_dataset(emotion, train_ids, sequence_config, vectors, training=True, seed=training.seed,
                        fill_last_batch=mirrored, clock=clock),
        validation_data=emotion_dataset(emotion, val_ids, sequence_config, vectors, fill_last_batch=mirrored),
        epochs=training.epochs,
        shuffle=False,  # emotion_dataset shuffles (seeded by epoch)
        verbose=1 if verbose == 1 else 0,
        callbacks=[
            clock.callback(),
            *([epoch_summary(training.epochs)] if verbose == 2 else []),
            early_stopping,
            keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard"), write_graph=False),
            resumable,  # last: saves after the early-stopping update, restores after its reset
        ],
    )
    report = score_tagger(model, emotion, test_ids, sequence_config)
    report.update({"split": "test", "data": data, "epochs_run": len(resumable.history),
                   "resumed_after_epoch": None if resumable.resumed_from is None else resumable.resumed_from + 1,
                   "chief": True})
    report = _save_emotion_run(model, out_dir, report, history_columns(resumable.history), model_config,
                               sequence_config, training, emotion, data, (train_ids, val_ids, test_ids))
    resumable.remove_backup()  # only now is the run folder complete
    return report


def run_identity(data, labels, *configs) -> dict:
    """What a backup must match to be resumed: the data and every config of the run."""
    return {"data": str(data), "labels": None if labels is None else str(labels),
            **{type(c).__name__: config_to_dict(c) for c in configs}}


def history_columns(history: list[dict]) -> dict[str, list[float]]:
    """Per-epoch log rows -> one list per metric (what `History.history` holds)."""
    keys = [k for k in (history[0] if history else {}) if k != "epoch"]
    return {key: [row[key] for row in history if key in row] for key in keys}


def _save_emotion_run(model, out_dir: Path, report: dict, history: dict, model_config, sequence_config, training,
                      emotion, data: str, splits) -> dict:
    """Write model.keras, config.json, history.png and report.json of an emotion run."""
    from keras_music.reports import plot_history, write_report

    train_ids, val_ids, test_ids = splits
    save_model(model, out_dir)
    save_json(out_dir / "config.json", {
        "task": "emotion",
        "model": model_config.model,
        "model_config": config_to_dict(model_config),
        "sequence_config": config_to_dict(sequence_config),
        "training_config": config_to_dict(training),
        "tags": emotion.tags.tags,
        "n_mels": emotion.n_mels,
        "n_mfcc": emotion.n_mfcc,
        "recipe": config_to_dict(emotion.recipe) if emotion.recipe else None,
        "data": data,
        "splits": {"train": train_ids, "validation": val_ids, "test": test_ids},
        "keras_music_version": __version__,
    })
    curves = {k: v for k, v in history.items() if k.split("val_")[-1] in ("loss", "macro_auc", "macro_pr_auc")}
    plot_history(curves, out_dir / "history.png",
                 title=f"{model_config.model} ({model_config.variant}) on {emotion.description}: loss and macro AUC")
    write_report(out_dir / "report.json", report)
    return report


def save_model(model, out_dir: Path) -> Path:
    """`out_dir/model.keras`, written to a temporary name first so a crash leaves no half file."""
    with atomic_path(out_dir / "model.keras", keep_suffix=True) as tmp:
        model.save(tmp)
    return out_dir / "model.keras"


def searched_configs(args, model_config, training):
    """`--hparams`: the configs with a search's best values applied (batch size unless given)."""
    from tuning.hypermodels import MODEL_NAMES, configs_from_hparams, load_best_hparams

    name = MODEL_NAMES[(args.task, args.model)]
    values = load_best_hparams(args.hparams, args.task, args.model,
                               features=args.features if args.task == "genre" else None)
    if args.batch_size:
        values = {k: v for k, v in values.items() if k != "batch_size"}
    model_config, training = configs_from_hparams(name, values, model_config, training)
    logger.info("Hyperparameters from %s: %s", args.hparams, values)
    return model_config, training


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.config import EmotionModelConfig
    from keras_music.data.sequences import SequenceConfig
    from keras_music.data.store import StoreError
    from keras_music.reports import format_classification_report, format_tagging_report

    defaults = EMOTION_TRAINING if args.task == "emotion" else GENRE_TRAINING
    training = dataclasses.replace(defaults, epochs=args.epochs or defaults.epochs,
                                   batch_size=args.batch_size or defaults.batch_size,
                                   seed=args.seed, split_seed=args.split_seed)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.task}-{args.model}-{stamp}")
    try:
        if args.task == "emotion":
            model_config = EmotionModelConfig(model=args.model, variant=args.variant)
            if args.hparams:
                model_config, training = searched_configs(args, model_config, training)
            sequence_config = dataclasses.replace(SequenceConfig(), batch_size=training.batch_size)
            report = train_emotion(args.data, out_dir, model_config, sequence_config, training, labels=args.labels,
                                   strategy=args.strategy, verbose=args.verbose)
            if not report["chief"]:
                print(f"Worker finished: test macro_roc_auc={report['macro_roc_auc']:.4f} (worker 0 writes the run).")
                return 0
            text = format_tagging_report(report, title=f"\nTest report ({args.model}, {args.variant} variant)")
            how = "python -m keras_music.evaluate --model {out} --data DATA"
        else:
            model_config = dataclasses.replace(GenreMLPConfig(), feature_set=args.features)
            if args.hparams:
                model_config, training = searched_configs(args, model_config, training)
            report = train_genre(args.data, out_dir, model_config, training, classes=args.classes,
                                 verbose=args.verbose)
            text = format_classification_report(report, title=f"\nTest report (genre, {args.features} features)")
            how = "python -m keras_music.evaluate --model {out} --data PATH.csv"
    except (FileNotFoundError, GenreDataError, StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(text)
    print(f"\nSaved run to {out_dir}/ (model.keras, config.json, history.csv, history.png, report.json)")
    print("Score another labelled dataset: " + how.format(out=out_dir))
    if args.no_export:
        return 0
    from keras_music.export import export_run

    try:
        path = export_run(out_dir, args.export_name, args.export_dir)  # (CAL500's mlp: on its features only)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: export failed ({error}); the run folder {out_dir} is complete, retry with "
              f"python -m keras_music.export --model {out_dir}", file=sys.stderr)
        return 1
    print(f"Exported for TF Serving: {path}")
    if args.task == "emotion" and args.model != "mlp":
        print(f"Tag audio with it: python -m keras_music.predict AUDIO_FILE_OR_FOLDER --model {path.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
