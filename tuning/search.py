"""KerasTuner search over hidden sizes, depth, dropout, learning rate and batch size.

    python -m tuning.search --task genre --features seed --max-trials 20 --directory tuning-runs --project-name genre-seed
    python -m tuning.search --task emotion --model cnn_lstm --data mer4q --tuner bayesian --max-trials 10
    python -m keras_music.train --task genre --features seed --hparams tuning-runs/genre-seed/best_hparams.json

The objective is validation accuracy (genre) or validation masked macro ROC-AUC
(emotion), maximised, on the same seeded split as `keras_music.train` (the test part is
never seen). Each trial stops early on the objective. Running the same command again
resumes an interrupted search: finished trials are kept, the trial that was running is
retried. At the end: a table of the best trials and `best_hparams.json`.

Distributed search (KerasTuner's own mechanism): start one chief and any number of
workers with the same command and these environment variables; the chief runs the
oracle, workers run trials, and the chief prints the table and writes the JSON.

    KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8470 python -m tuning.search ...
    KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8470 python -m tuning.search ...
    KERASTUNER_TUNER_ID=tuner1  KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8470 python -m tuning.search ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.tf_logging import import_tensorflow

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

from keras_music.models.registry import MODEL_CHOICES, family_from_flags

logger = logging.getLogger("tuning.search")

MARKER = "keras_music_search.json"  # what this project folder searches; checked on resume


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tuning.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["genre", "emotion"], default=None,
                        help="Default: the --model's task, else genre.")
    parser.add_argument("--model", choices=MODEL_CHOICES, default=None,
                        help="A registered family (genre: genre_mlp; emotion: cnn_lstm (default), mlp_lstm, "
                             "tag_mlp); 'mlp' = genre_mlp or tag_mlp by --task.")
    parser.add_argument("--data", default="demo", help="As for keras_music.train. Default: demo.")
    parser.add_argument("--labels", default=None, help="Emotion with a feature store: labels CSV.")
    parser.add_argument("--features", choices=["seed", "full"], default="full", help="Genre feature set.")
    parser.add_argument("--space", default=None, help="JSON file overriding entries of the search space "
                        "(format in keras_music/hparams.py; names in each family's space, keras_music/models/).")
    parser.add_argument("--tuner", choices=["random", "bayesian", "hyperband"], default="random",
                        help="Default: random.")
    parser.add_argument("--max-trials", type=int, default=10,
                        help="Trials (random, bayesian); hyperband sizes itself from --epochs. Default: 10.")
    parser.add_argument("--epochs", type=int, default=None,
                        help="Maximum epochs per trial. Default: 30 (genre), 40 (emotion).")
    parser.add_argument("--patience", type=int, default=None,
                        help="Early-stopping patience per trial. Default: 5 (genre), 8 (emotion).")
    parser.add_argument("--seed", type=int, default=0, help="Seeds the tuner and every trial's model. Default: 0.")
    parser.add_argument("--split-seed", type=int, default=0, help="Seeds the train/validation split. Default: 0.")
    parser.add_argument("--directory", default="tuning-runs", help="Default: tuning-runs.")
    parser.add_argument("--project-name", default=None, help="Default: the model family (e.g. genre_mlp).")
    parser.add_argument("--overwrite", action="store_true", help="Start over instead of resuming.")
    parser.add_argument("--top", type=int, default=5, help="Trials in the final table. Default: 5.")
    parser.add_argument("--out", default=None, help="Best hyperparameters JSON. Default: DIRECTORY/PROJECT/"
                        "best_hparams.json.")
    args = parser.parse_args(argv)
    try:
        args.family = family_from_flags(args.model, args.task, default_task="genre")
    except ValueError as error:  # a ParameterError naming `model`: say --model and --task
        parser.error(error.for_flags({"model": "--model", "task": "--task"}) if isinstance(error, ParameterError)
                     else str(error))
    args.task, args.model = args.family.task, args.family.name
    args.project_name = args.project_name or args.model
    if args.max_trials < 1:
        parser.error("--max-trials must be at least 1.")
    return args


def check_project(project_dir: Path, identity: dict, overwrite: bool) -> None:
    """Refuse to resume a project folder that belongs to a different search."""
    marker = project_dir / MARKER
    if overwrite or not project_dir.exists():
        return
    if not marker.is_file():
        if any(project_dir.iterdir()):
            raise ValueError(f"{project_dir} exists but is not a keras_music search (no {MARKER}); choose another "
                             "--project-name or --directory.")
        return
    saved = json.loads(marker.read_text())
    different = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
    if different:
        details = "; ".join(f"{k}: {saved.get(k)!r} there, {identity.get(k)!r} now" for k in different)
        raise ValueError(f"{project_dir} holds a different search ({details}). Use another --project-name, or "
                         "--overwrite to discard it.")


def make_hypermodel(args, space: dict, epochs: int):
    """The family's hypermodel on the same seeded split as `keras_music.train`."""

    from keras_music.training import EMOTION_TRAINING, GENRE_TRAINING, GenreFit, TaggerFit, emotion_split, genre_split
    from tuning.hypermodels import FamilyHyperModel

    family = args.family
    if family.frozen_output:
        # KerasTuner's callbacks would save the head's weights, which its tuners then load into whole models.
        raise ValueError(f"--model {family.name}: searching a family with a frozen front end is not supported yet; "
                         "train it with keras_music.train (its head trains in minutes) and compare seeds or "
                         "configs with bench.emotion.")
    if family.task == "genre":
        training = dataclasses.replace(GENRE_TRAINING, epochs=epochs, seed=args.seed, split_seed=args.split_seed)
        class_names, train, validation, _ = genre_split(args.data, training)
        model_config = family.config(feature_set=args.features, ensemble_size=1)
        return FamilyHyperModel(family, GenreFit(train, validation, len(class_names), model_config), model_config,
                                training, space=space)
    from keras_music.data.emotion import load_emotion_data

    training = dataclasses.replace(EMOTION_TRAINING, epochs=epochs, seed=args.seed, split_seed=args.split_seed)
    emotion = load_emotion_data(args.data, args.labels)
    train_ids, val_ids, _ = emotion_split(emotion, training)
    return FamilyHyperModel(family, TaggerFit(emotion, train_ids, val_ids), family.config(), training,
                            family.sequence_config(), space=space)


def make_tuner(kind: str, hypermodel, args, epochs: int):
    import keras_tuner as kt

    # KerasTuner reads seed 0 as "no seed" (`seed or random.randint(...)` in its Oracle), which made
    # the default --seed 0 search unrepeatable; seed + 1 seeds every --seed, 0 included.
    common = dict(objective=hypermodel.objective, directory=args.directory, project_name=args.project_name,
                  overwrite=args.overwrite, seed=args.seed + 1)
    if kind == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    cls = kt.RandomSearch if kind == "random" else kt.BayesianOptimization
    return cls(hypermodel, max_trials=args.max_trials, **common)


def results_table(trials, objective: str, names: list[str]) -> str:
    """Markdown table of finished trials: rank, trial id, score, hyperparameters."""
    def value(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = [f"| rank | trial | {objective} | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for rank, trial in enumerate(trials, 1):
        score = trial.score if trial.score is not None else float("nan")
        lines.append(f"| {rank} | {trial.trial_id} | {score:.4f} | "
                     + " | ".join(value(trial.hyperparameters.values.get(n)) for n in names) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.config import save_json
    from keras_music.data.store import StoreError
    from keras_music.data.genre import GenreDataError
    import keras

    from keras_music.hparams import SearchSpaceError, load_space

    epochs = args.epochs or (30 if args.task == "genre" else 40)
    patience = args.patience or (5 if args.task == "genre" else 8)
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    distributed = "KERASTUNER_ORACLE_IP" in os.environ
    chief = not distributed or "chief" in (tuner_id or "")
    project_dir = Path(args.directory) / args.project_name
    try:
        space = load_space(args.family, args.space)
        identity = {"task": args.task, "model": args.model, "data": args.data, "labels": args.labels,
                    "features": args.features if args.task == "genre" else None, "tuner": args.tuner,
                    "space": space, "epochs": epochs, "patience": patience, "split_seed": args.split_seed,
                    "seed": args.seed}
        if chief:
            check_project(project_dir, identity, args.overwrite)
        hypermodel = make_hypermodel(args, space, epochs)
        tuner = make_tuner(args.tuner, hypermodel, args, epochs)
        if chief:
            save_json(project_dir / MARKER, identity)
    except (FileNotFoundError, GenreDataError, StoreError, SearchSpaceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    objective = hypermodel.objective.name
    early_stop = keras.callbacks.EarlyStopping(monitor=objective, mode="max", patience=patience,
                                               restore_best_weights=False)
    tuner.search(callbacks=[early_stop], verbose=1)  # a summary per trial
    if not chief:
        logger.info("Worker %s finished: the chief prints the results.", tuner_id)
        return 0

    trials = [t for t in tuner.oracle.get_best_trials(num_trials=10 ** 6) if t.score is not None]
    if not trials:
        print("error: no trial finished with a score (see the trial folders for errors).", file=sys.stderr)
        return 1
    best = trials[0]
    out = Path(args.out) if args.out else project_dir / "best_hparams.json"
    save_json(out, {"task": args.task, "model": args.model, "data": args.data,
                    "features": args.features if args.task == "genre" else None,
                    "objective": objective, "direction": "max",
                    "score": best.score, "trial_id": best.trial_id, "trials_finished": len(trials),
                    "hyperparameters": best.hyperparameters.values})
    print(f"\nSearch {args.project_name}: {len(trials)} trials finished; best {objective} = {best.score:.4f} "
          f"(trial {best.trial_id}).\n")
    print(results_table(trials[:args.top], objective, list(space)))
    features = f" --features {args.features}" if args.task == "genre" else ""
    print(f"\nBest hyperparameters: {out}\nTrain with them: python -m keras_music.train --model {args.model} "
          f"--data {args.data}{features} --split-seed {args.split_seed} --hparams {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
