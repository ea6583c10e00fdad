"""Emotion training: the seeded split by artist, building a tagger of any registered family,
`model.fit` with the masked loss, resumable backups and early stopping, and the run folder.

`train_emotion` is the one training recipe, shared by `python -m keras_music.train`,
`tuning/` (through `build_tagger` and `emotion_dataset`) and `bench/emotion.py`. The family
comes from the config's type (`family_for_config`), so a new family needs no change here.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import tensorflow as tf

from keras_music.version import __version__
from keras_music.config import TrainingConfig, config_to_dict, save_json
from keras_music.errors import ParameterError
from keras_music.data.emotion import emotion_dataset, load_emotion_data
from keras_music.data.sequences import EpochClock, feature_statistics
from keras_music.data.splits import split_by_group
from keras_music.models.registry import family_for_config
from keras_music.multiworker import WorkerCheckpoint, fit_multi_worker, is_chief, multi_worker_strategy
from keras_music.reports import plot_history, write_report
from keras_music.scoring import score_tagger, tagger_logits
from keras_music.resume import ResumableEarlyStopping, ResumableTraining, write_history_csv
from keras_music.training.frozen import fit_head, score_from_embeddings
from keras_music.training.common import epoch_summary, history_columns, print_epoch, run_identity, save_model

logger = logging.getLogger("keras_music.training")



def describe(model_config) -> str:
    """`cnn_lstm (default)`: the family, and the variant where the family has variants."""
    family = family_for_config(model_config)
    return f"{family.name} ({model_config.variant})" if family.has_variants else family.name


def build_tagger(model_config, emotion, train_ids):
    """The compiled tagger of `model_config`'s family, with input statistics from the training clips only."""
    family = family_for_config(model_config)
    tags = emotion.tags.tags
    if family.inputs == "clip_vector":
        vectors = emotion.clip_vectors(train_ids)
        return family.build(model_config, tags, {"features": vectors.shape[1]},
                            {"features_mean": vectors.mean(axis=0), "features_std": vectors.std(axis=0)})
    if family.inputs != "sequences":
        raise ValueError(f"{family.name} is a {family.task} model, not an emotion tagger.")
    family.check_recipe(emotion.recipe, emotion.description)
    return family.build(model_config, tags, emotion.feature_dims, feature_statistics(emotion.sequences(), train_ids))


def emotion_split(emotion, training: TrainingConfig) -> tuple[list[str], list[str], list[str]]:
    """Seeded train / validation / test clip ids, grouped by artist where artists are known."""
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


class WindowedValidation(keras.callbacks.Callback):
    """Validation as test clips are scored (`scoring.tagger_logits`: the mean logits of each
    clip's windows), written into the epoch's logs under Keras' own names (`val_loss`,
    `val_macro_auc`, the per-tag metrics), so early stopping, backups and the tuner read it
    unchanged. Replaces `model.fit`'s whole-clip validation (`SequenceConfig.validate_on_windows`)."""

    def __init__(self, emotion, clip_ids, sequence_config):
        from keras_music.losses import MaskedBinaryCrossentropy
        from keras_music.metrics import emotion_metrics

        super().__init__()
        self.emotion, self.clip_ids, self.sequence_config = emotion, list(clip_ids), sequence_config
        self.loss = MaskedBinaryCrossentropy()
        self.metrics = emotion_metrics(emotion.tags.tags)  # made once: new metrics retrace every epoch

    def on_epoch_end(self, epoch, logs=None):
        logits, labels, mask = tagger_logits(self.model, self.emotion, self.clip_ids, self.sequence_config)
        scores = {"loss": self.loss(labels, logits, sample_weight=mask)}
        for metric in self.metrics:
            metric.reset_state()
            metric.update_state(labels, logits, sample_weight=mask)
            scores[metric.name] = metric.result()
        if logs is not None:
            logs.update({f"val_{name}": float(keras.ops.convert_to_numpy(value)) for name, value in scores.items()})


class TaggerFit:
    """Builds and fits one tagger of any registered family on fixed training / validation clips:
    `train_emotion`'s fit, or a KerasTuner trial (`tuning/`). Families with a frozen front end
    (`ModelFamily.frozen_output`) fit their head on cached window embeddings (`training.frozen`)."""

    objective = ("val_macro_auc", "max")

    def __init__(self, emotion, train_ids, val_ids):
        self.emotion, self.train_ids, self.val_ids = emotion, list(train_ids), list(val_ids)

    def build(self, model_config):
        return build_tagger(model_config, self.emotion, self.train_ids)

    def fit(self, model, model_config, training: TrainingConfig, sequence_config, epochs: int | None = None,
            verbose: int = 0, callbacks=(), clock: EpochClock | None = None, fill_last_batch: bool = False):
        """`model.fit` on the training stream (order and crops drawn per epoch from `clock`),
        with the masked loss; validation every epoch (of whole clips, or by windows as the
        test is scored: `SequenceConfig.validate_on_windows`)."""
        family = family_for_config(model_config)
        if family.frozen_output:
            return fit_head(model, family.frozen_output, self.emotion, self.train_ids, self.val_ids, training,
                            sequence_config, epochs, verbose, callbacks, clock)
        vectors = family.inputs == "clip_vector"
        clock = clock or EpochClock()
        windowed = (sequence_config.validate_on_windows and not vectors and sequence_config.window_hop > 0
                    and sequence_config.crop_frames > 0)
        return model.fit(
            emotion_dataset(self.emotion, self.train_ids, sequence_config, vectors, training=True, seed=training.seed,
                            fill_last_batch=fill_last_batch, clock=clock),
            validation_data=None if windowed else emotion_dataset(self.emotion, self.val_ids, sequence_config,
                                                                  vectors, fill_last_batch=fill_last_batch),
            epochs=epochs or training.epochs,
            shuffle=False,  # emotion_dataset shuffles (seeded by epoch)
            verbose=verbose,
            # The windowed scores are in the logs before any other callback reads them.
            callbacks=[clock.callback(), *([WindowedValidation(self.emotion, self.val_ids, sequence_config)]
                                           if windowed else []), *callbacks],
        )


def emotion_configs(family, variant: str = "default", epochs: int | None = None, batch_size: int | None = None,
                    seed: int = 0, split_seed: int = 0, hparams: dict | None = None):
    """`(model_config, sequence_config, training)` of an emotion run of `family`, as `train` builds them:
    the task's defaults, the family's variant, then `hparams` (a search's best values; a given
    `batch_size` wins over theirs). The batch size is `batch_size`, else the family's own (a head
    trained on windows), else the task's default."""
    from keras_music.config import EMOTION_TRAINING
    from keras_music.hparams import configs_from_hparams

    training = dataclasses.replace(EMOTION_TRAINING, epochs=epochs or EMOTION_TRAINING.epochs,
                                   batch_size=batch_size or EMOTION_TRAINING.batch_size, seed=seed,
                                   split_seed=split_seed)
    model_config = family.config(**({"variant": variant} if family.has_variants else {}))
    if hparams:
        values = {k: v for k, v in hparams.items() if not (batch_size and k == "batch_size")}
        model_config, training = configs_from_hparams(family, values, model_config, training)
    sequence_config = family.sequence_config(
        batch_size=batch_size or family.sequences.get("batch_size") or training.batch_size)
    return model_config, sequence_config, training


def train_emotion(data: str | Path, out_dir: str | Path, model_config, sequence_config, training: TrainingConfig,
                  labels: str | Path | None = None, strategy: str = "default", verbose: int = 2,
                  splits: tuple[list[str], list[str], list[str]] | None = None) -> dict:
    """Fit an emotion tagger on the training clips, early-stop on validation macro ROC-AUC, report on test.

    `splits` (train, validation, test clip ids) overrides the seeded split, e.g. for the
    folds of a cross-validation. `strategy`: `default` (one device), `mirrored`
    (MirroredStrategy over local devices) or `multi_worker` (MultiWorkerMirroredStrategy
    from TF_CONFIG, trained by `keras_music.multiworker`; only worker 0 writes the run
    folder). Writes the run folder and returns the test report (also in
    `out_dir/report.json`; `report["chief"]` is False on the other workers).
    """
    data, out_dir, labels = str(data), Path(out_dir), None if labels is None else str(labels)
    family = family_for_config(model_config)
    multi_worker = strategy == "multi_worker"
    if family.frozen_output and strategy != "default":
        raise ParameterError("strategy", strategy, f"{family.name} trains only its head, on window embeddings "
                             "computed once (minutes on one machine); train it with the default strategy.")
    if multi_worker:  # before any other TensorFlow work, as collective ops require
        scope = multi_worker_strategy()
    else:
        scope = tf.distribute.MirroredStrategy() if strategy == "mirrored" else tf.distribute.get_strategy()
    if strategy != "default":  # TensorFlow says it at INFO only, which the commands hold back
        logger.info("--strategy %s: %d replica(s) in sync; this process's: %s", strategy,
                    scope.num_replicas_in_sync, ", ".join(scope.extended.worker_devices))
    emotion = load_emotion_data(data, labels)
    train_ids, val_ids, test_ids = splits or emotion_split(emotion, training)
    mirrored = strategy != "default"  # replicas need full batches (see make_dataset)
    keras.utils.set_random_seed(training.seed)
    with scope.scope():
        model = build_tagger(model_config, emotion, train_ids)
    vectors = family.inputs == "clip_vector"
    clock = EpochClock()  # the epoch that training batches are drawn for (resumable order)
    if multi_worker:
        # Killed workers, the same command resumes from worker 0's last finished epoch (every worker
        # must see --out); see keras_music.multiworker.
        checkpoint = WorkerCheckpoint(scope, model, out_dir / "backup",
                                      identity=run_identity(data, labels, model_config, sequence_config, training))
        history = fit_multi_worker(
            scope, model, emotion_dataset(emotion, train_ids, sequence_config, vectors, training=True,
                                          seed=training.seed, fill_last_batch=True, clock=clock),
            clock, training.epochs, training.patience, training.min_epochs,
            validate=lambda: score_tagger(model, emotion, val_ids, sequence_config)["macro_roc_auc"],
            on_epoch=lambda epoch, logs: print_epoch(epoch, training.epochs, logs, logs["seconds"]),
            checkpoint=checkpoint)
        report = score_tagger(model, emotion, test_ids, sequence_config)
        report.update({"split": "test", "data": data, "epochs_run": len(history),
                       "resumed_after_epoch": checkpoint.resumed_after, "chief": is_chief(scope),
                       "workers": scope.num_replicas_in_sync})
        if not report["chief"]:
            return report  # worker 0 writes the run folder
        out_dir.mkdir(parents=True, exist_ok=True)
        write_history_csv(history, out_dir / "history.csv")
        report = _save_emotion_run(model, out_dir, report, history_columns(history), model_config, sequence_config,
                                   training, emotion, data, (train_ids, val_ids, test_ids), labels)
        checkpoint.remove()  # only now is the run folder complete
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    early_stopping = ResumableEarlyStopping(monitor="val_macro_auc", mode="max", patience=training.patience,
                                            start_from_epoch=training.min_epochs, restore_best_weights=True)
    # Killed at any point, the same command resumes from the last finished epoch (keras_music.resume).
    resumable = ResumableTraining(out_dir / "backup", early_stopping, history_csv=out_dir / "history.csv",
                                  identity=run_identity(data, labels, model_config, sequence_config, training))
    TaggerFit(emotion, train_ids, val_ids).fit(
        model, model_config, training, sequence_config, clock=clock, fill_last_batch=mirrored,
        verbose=1 if verbose == 1 else 0,
        callbacks=[
            *([epoch_summary(training.epochs)] if verbose == 2 else []),
            early_stopping,
            keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard"), write_graph=False),
            resumable,  # last: saves after the early-stopping update, restores after its reset
        ],
    )
    report = (score_from_embeddings(model, family.frozen_output, emotion, test_ids, sequence_config)
              if family.frozen_output else score_tagger(model, emotion, test_ids, sequence_config))
    report.update({"split": "test", "data": data, "epochs_run": len(resumable.history),
                   "resumed_after_epoch": None if resumable.resumed_from is None else resumable.resumed_from + 1,
                   "chief": True})
    report = _save_emotion_run(model, out_dir, report, history_columns(resumable.history), model_config,
                               sequence_config, training, emotion, data, (train_ids, val_ids, test_ids), labels)
    resumable.remove_backup()  # only now is the run folder complete
    return report


def _save_emotion_run(model, out_dir: Path, report: dict, history: dict, model_config, sequence_config, training,
                      emotion, data: str, splits, labels: str | None = None) -> dict:
    """Write model.keras, config.json, history.png and report.json of an emotion run."""
    family = family_for_config(model_config)
    train_ids, val_ids, test_ids = splits
    save_model(model, out_dir)
    save_json(out_dir / "config.json", {
        "task": "emotion",
        "model": family.name,
        "model_config": config_to_dict(model_config),
        "sequence_config": config_to_dict(sequence_config),
        "training_config": config_to_dict(training),
        "tags": emotion.tags.tags,
        "features": emotion.feature_dims,
        "recipe": config_to_dict(emotion.recipe) if emotion.recipe else None,
        "data": data,
        "labels": str(Path(labels).resolve()) if labels else None,
        "splits": {"train": train_ids, "validation": val_ids, "test": test_ids},
        "keras_music_version": __version__,
    })
    curves = {k: v for k, v in history.items() if k.split("val_")[-1] in ("loss", "macro_auc", "macro_pr_auc")}
    plot_history(curves, out_dir / "history.png",
                 title=f"{describe(model_config)} on {emotion.description}: loss and macro AUC")
    write_report(out_dir / "report.json", report)
    return report
