"""Train a model and write it, its history, curves and test report to one folder.

    python -m keras_music.train                       # genre MLP on the built-in demo table
    python -m keras_music.train --task genre --data ../shared/datasets/genre/train.csv \\
        --features full --seed 0 --out runs/genre-full

The run folder gets `model.keras` (raw columns in, probabilities out), `config.json`
(everything needed to rebuild or re-score it), `history.csv`, `history.png` and
`report.json`. The split is by song and seeded, so the same command gives the same
split and, on CPU, the same numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import sys
from pathlib import Path

import numpy as np

from keras_music import __version__
from keras_music.config import GenreMLPConfig, TrainingConfig, config_to_dict, save_json
from keras_music.data.genre import FEATURE_SETS, GenreDataError

logger = logging.getLogger("keras_music.train")

EXAMPLES = """examples:
  python -m keras_music.train
  python -m keras_music.train --task genre --data ../shared/datasets/genre/train.csv --features full --seed 0 --out runs/genre-full
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.train",
        description="Train a keras_music model, save it and print a test report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = TrainingConfig()
    parser.add_argument("--task", choices=["genre"], default="genre", help="What to learn. Default: genre.")
    parser.add_argument("--data", default="demo",
                        help="'demo' (built-in synthetic table) or the path of a genre CSV. Default: demo.")
    parser.add_argument("--features", choices=sorted(FEATURE_SETS), default=GenreMLPConfig.feature_set,
                        help="seed = the paper's columns; full = adds popularity and artist. Default: full.")
    parser.add_argument("--classes", default=None,
                        help="CSV 'id,name' of the genre classes. Default: the packaged Kaggle class list.")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"Maximum epochs (early stopping on validation). Default: {defaults.epochs}.")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"Default: {defaults.batch_size}.")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"Seeds weights, dropout and shuffling. Default: {defaults.seed}.")
    parser.add_argument("--split-seed", type=int, default=defaults.split_seed,
                        help="Seeds the train/validation/test split by song (same split for every --seed). "
                             f"Default: {defaults.split_seed}.")
    parser.add_argument("--out", default=None,
                        help="Run folder to write. Default: runs/<task>-<features>-<timestamp>.")
    parser.add_argument("--verbose", type=int, choices=[0, 1, 2], default=2,
                        help="Keras progress: 0 silent, 1 progress bar, 2 one line per epoch. Default: 2.")
    return parser.parse_args(argv)


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
                  verbose: int = 0):
    """Fit `ensemble_size` genre MLPs (seeds seed, seed+1, ...) and average them into one model.

    Each member is adapted on `train` and early-stopped on validation accuracy with its best
    weights restored. This is the one training recipe, shared by the CLI and `bench/genre.py`.

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
    for member in range(model_config.ensemble_size):
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
        histories.append(history.history)
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
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)


def train_genre(data: str, out_dir: Path, model_config: GenreMLPConfig, training: TrainingConfig,
                classes: str | None = None, verbose: int = 2) -> dict:
    """Fit the genre MLP on the training songs, early-stop on validation, report on test.

    Writes the run folder and returns the test report (also in `out_dir/report.json`).
    """
    from keras_music.data.genre import load_class_names, split_by_song
    from keras_music.models.mlp import genre_dataset
    from keras_music.reports import classification_report, plot_history, write_report

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

    out_dir.mkdir(parents=True, exist_ok=True)
    model, histories = fit_genre_mlp(train, validation, model_config, training, len(class_names), verbose=verbose)
    probabilities = model.predict(genre_dataset(test, model_config.feature_set, 1024), verbose=0)
    report = classification_report(test["label"].to_numpy(), probabilities, class_names)
    report.update({"split": "test", "data": data, "epochs_run": [len(h["loss"]) for h in histories]})

    tmp_model = out_dir / "model.tmp.keras"
    model.save(tmp_model)
    tmp_model.replace(out_dir / "model.keras")
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
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.reports import format_classification_report

    training = dataclasses.replace(TrainingConfig(), epochs=args.epochs, batch_size=args.batch_size,
                                   seed=args.seed, split_seed=args.split_seed)
    model_config = dataclasses.replace(GenreMLPConfig(), feature_set=args.features)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out or f"runs/{args.task}-{args.features}-{stamp}")
    try:
        report = train_genre(args.data, out_dir, model_config, training, classes=args.classes,
                             verbose=args.verbose)
    except (FileNotFoundError, GenreDataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_classification_report(report, title=f"\nTest report ({args.task}, {args.features} features)"))
    print(f"\nSaved run to {out_dir}/ (model.keras, config.json, history.csv, history.png, report.json)")
    print(f"Score another labelled CSV: python -m keras_music.evaluate --model {out_dir} --data PATH.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
