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
import logging
import sys
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.tf_logging import import_tensorflow

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

from keras_music.config import EMOTION_TRAINING, GENRE_TRAINING
from keras_music.data.genre import FEATURE_SETS
from keras_music.models.registry import MODEL_CHOICES, families, family_from_flags

logger = logging.getLogger("keras_music.train")
FLAGS = {"data": "--data", "labels": "--labels", "strategy": "--strategy"}

EXAMPLES = """examples:
  python -m keras_music.train
  python -m keras_music.train --task emotion --model cnn_lstm --variant default --data mer4q --seed 0 --out runs/4q-cnn
  python -m keras_music.train --task emotion --model mlp_lstm --data stores/my-music --labels my-tags.csv
  python -m keras_music.train --task genre --data ../shared/datasets/genre/train.csv --features full --seed 0 --out runs/genre-full
"""



def model_help() -> str:
    lines = [f"{f.name} ({f.task}): {f.summary}" for f in families()]
    return ("Model family. " + "; ".join(lines) + ". 'mlp' = genre_mlp with --task genre, tag_mlp with --task "
            "emotion. Default: cnn_lstm (emotion), genre_mlp (genre).")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.train",
        description="Train a keras_music model, save it and print a test report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", choices=["emotion", "genre"], default=None,
                        help="emotion: multi-label tags from audio feature sequences; genre: 11 classes from the "
                             "Kaggle table. Default: the --model's task, else emotion.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default=None,
                        help=model_help())
    parser.add_argument("--variant", choices=["default", "seed"], default="default",
                        help="mlp_lstm, cnn_lstm: 'seed' reproduces the paper's choices, 'default' is what learns.")
    parser.add_argument("--data", default="demo",
                        help="'demo' (built-in synthetic data); emotion: 'mer4q', 'cal500' (with --model mlp), a "
                             "feature store, or a folder with labels.csv + features/*.npz; genre: a CSV path. "
                             "Default: demo.")
    parser.add_argument("--labels", default=None, help="Emotion with a feature store: labels CSV "
                        "(clip_id + tag columns). Default: STORE/labels.csv.")
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default="full",
                        help="Genre: seed = the paper's columns; full = adds popularity and artist. Default: full.")
    parser.add_argument("--ensemble", type=int, default=None,
                        help="Genre: train N networks (seeds S..S+N-1) and average them into the one saved model "
                             "(each already averages its heads). Default: 1.")
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
    try:
        args.family = family_from_flags(args.model, args.task, default_task="emotion")
    except ValueError as error:  # a ParameterError naming `model`: say --model and --task
        parser.error(error.for_flags({"model": "--model", "task": "--task"}) if isinstance(error, ParameterError)
                     else str(error))
    args.task, args.model = args.family.task, args.family.name
    if args.ensemble is not None and (args.task != "genre" or args.ensemble < 1):
        parser.error(f"--ensemble {args.ensemble}: genre only, at least 1.")
    if args.variant != "default" and not args.family.has_variants:
        parser.error(f"--variant {args.variant}: {args.model} has no variants (only mlp_lstm and cnn_lstm do).")
    return args


def searched_values(args) -> dict:
    """`--hparams`: a search's best values (its batch size only where --batch-size is not given)."""
    from keras_music.hparams import load_best_hparams

    values = load_best_hparams(args.hparams, args.family, features=args.features if args.task == "genre" else None)
    if args.batch_size:
        values = {k: v for k, v in values.items() if k != "batch_size"}
    logger.info("Hyperparameters from %s: %s", args.hparams, values)
    return values


def searched_configs(args, model_config, training):
    """`--hparams` for genre: the configs with a search's best values applied."""
    from keras_music.hparams import configs_from_hparams

    return configs_from_hparams(args.family, searched_values(args), model_config, training)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.data.genre import GenreDataError
    from keras_music.data.store import StoreError
    from keras_music.reports import format_classification_report, format_tagging_report
    from keras_music.training import describe, train_emotion, train_genre
    from keras_music.training.emotion import emotion_configs

    defaults = EMOTION_TRAINING if args.task == "emotion" else GENRE_TRAINING
    training = dataclasses.replace(defaults, epochs=args.epochs or defaults.epochs,
                                   batch_size=args.batch_size or defaults.batch_size,
                                   seed=args.seed, split_seed=args.split_seed)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.task}-{args.model}-{stamp}")
    try:
        if args.task == "emotion":
            model_config, sequence_config, training = emotion_configs(
                args.family, args.variant, args.epochs, args.batch_size, args.seed, args.split_seed,
                hparams=searched_values(args) if args.hparams else None)
            report = train_emotion(args.data, out_dir, model_config, sequence_config, training, labels=args.labels,
                                   strategy=args.strategy, verbose=args.verbose)
            if not report["chief"]:
                print(f"Worker finished: test macro_roc_auc={report['macro_roc_auc']:.4f} (worker 0 writes the run).")
                return 0
            text = format_tagging_report(report, title=f"\nTest report ({describe(model_config)})")
            how = "python -m keras_music.evaluate --model {out} --data DATA"
        else:
            model_config = args.family.config(feature_set=args.features)
            if args.hparams:
                model_config, training = searched_configs(args, model_config, training)
            if args.ensemble is not None:
                model_config = dataclasses.replace(model_config, ensemble_size=args.ensemble)
            report = train_genre(args.data, out_dir, model_config, training, classes=args.classes,
                                 verbose=args.verbose)
            text = format_classification_report(report, title=f"\nTest report (genre, {args.features} features)")
            how = "python -m keras_music.evaluate --model {out} --data PATH.csv"
    except (FileNotFoundError, GenreDataError, StoreError, ValueError) as error:
        print(f"error: {error.for_flags(FLAGS) if isinstance(error, ParameterError) else error}", file=sys.stderr)
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
    if args.family.inputs == "sequences":
        print(f"Tag audio with it: python -m keras_music.predict AUDIO_FILE_OR_FOLDER --model {path.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
