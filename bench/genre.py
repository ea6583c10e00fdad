"""Genre benchmark: our Keras MLP against honest baselines on one split by song.

    python -m bench.genre                                  # ../shared/datasets/genre/train.csv
    python -m bench.genre --data train.csv --seeds 0 1 2 --readme README.md

Trains on the training songs of `split_by_song(seed)`, early-stops the MLP on the
validation songs, and scores every model on the same test songs. Baselines: majority
class, logistic regression, HistGradientBoosting (for `full`: the artist target-encoded
with scikit-learn's TargetEncoder). One row keeps the raw mixed-unit duration column,
whose unit leaks the class, to show why the paper's ~50% is not comparable.

Prints a Markdown table and writes `bench/results/genre.json` (+ `.md`); with `--readme`,
replaces the block between `<!-- bench:genre:start -->` and `<!-- bench:genre:end -->`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

from bench.publish import publish
from keras_music.config import TrainingConfig
from keras_music.data.genre import FEATURE_SETS, RAW_DURATION_COLUMN, load_genre_csv, split_by_song
from keras_music.reports import classification_report

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "genre" / "train.csv"
RESULTS = REPO_ROOT / "bench" / "results"
NUM_CLASSES = 11


def sklearn_columns(feature_set: str, numeric_extra=()):
    groups = FEATURE_SETS[feature_set]
    return [*groups["numeric"], *numeric_extra], list(groups["categorical"]), list(groups["text"])


def target_encoder(seed: int):
    """Cross-fitted multiclass target encoding; the folds are seeded, so runs repeat exactly."""
    return TargetEncoder(target_type="multiclass", cv=KFold(5, shuffle=True, random_state=seed))


def logistic_regression(feature_set: str, seed: int):
    numeric, categorical, text = sklearn_columns(feature_set)
    steps = [
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value=0),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
    ]
    if text:
        steps.append(("artist", make_pipeline(target_encoder(seed), StandardScaler()), text))
    return make_pipeline(ColumnTransformer(steps), LogisticRegression(max_iter=2000, random_state=seed))


def gradient_boosting(feature_set: str, seed: int, numeric_extra=()):
    numeric, categorical, text = sklearn_columns(feature_set, numeric_extra)
    steps = [("numeric", "passthrough", numeric),
             ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)]
    if text:
        steps.append(("artist", target_encoder(seed), text))
    return make_pipeline(ColumnTransformer(steps), HistGradientBoostingClassifier(random_state=seed))


def scores(labels, probabilities) -> dict:
    """Test accuracy, macro-F1 and log loss, computed exactly as `keras_music.evaluate` does."""
    report = classification_report(np.asarray(labels), probabilities, [str(c) for c in range(NUM_CLASSES)])
    return {key: report[key] for key in ("accuracy", "macro_f1", "log_loss")}


def run_sklearn(name, estimator, train, test, feature_set, leaky=False) -> dict:
    start = time.perf_counter()
    estimator.fit(train, train["label"])
    probabilities = np.zeros((len(test), NUM_CLASSES))
    probabilities[:, estimator.classes_] = estimator.predict_proba(test)
    return {"model": name, "features": feature_set, "leaky": leaky, **scores(test["label"], probabilities),
            "seconds": time.perf_counter() - start}


def run_mlp(train, validation, test, feature_set, seed) -> dict:
    from keras_music.data.genre import genre_dataset
    from keras_music.models.genre_mlp import GenreMLPConfig
    from keras_music.training import fit_genre_mlp

    config = GenreMLPConfig(feature_set=feature_set)
    training = dataclasses.replace(TrainingConfig(), seed=seed)
    start = time.perf_counter()
    model, histories = fit_genre_mlp(train, validation, config, training, NUM_CLASSES)
    probabilities = model.predict(genre_dataset(test, feature_set, 1024), verbose=0)
    return {"model": f"keras_music MLP (ensemble of {config.ensemble_size})", "features": feature_set,
            "leaky": False, **scores(test["label"], probabilities), "seconds": time.perf_counter() - start}


def mean_over_seeds(runs: list[dict], seeds: list[int]) -> dict:
    """One row: the mean of each score over runs, with the standard deviation of accuracy and macro-F1."""
    mean = {key: float(np.mean([r[key] for r in runs])) for key in ("accuracy", "macro_f1", "log_loss", "seconds")}
    spread = {f"{key}_std": float(np.std([r[key] for r in runs])) for key in ("accuracy", "macro_f1")}
    return {**runs[0], **mean, **spread, "seeds": seeds}


def benchmark(data: Path, split_seed: int, seeds: list[int]) -> list[dict]:
    frame = load_genre_csv(data)
    # The raw column, unit and all, only for the clearly labelled leaky row.
    frame["raw_duration"] = pd.read_csv(data, usecols=[RAW_DURATION_COLUMN])[RAW_DURATION_COLUMN].to_numpy()
    defaults = TrainingConfig()
    split = split_by_song(frame, split_seed, defaults.validation_fraction, defaults.test_fraction)
    train, validation, test = (frame.iloc[rows] for rows in (split.train, split.validation, split.test))
    logging.info("split by song (seed %d): %d train, %d validation, %d test rows",
                 split_seed, len(train), len(validation), len(test))
    rows = []
    for feature_set in ("seed", "full"):
        rows.append(run_sklearn("majority class", DummyClassifier(strategy="prior"), train, test, feature_set))
        # Models with randomness run once per seed (the same seeds for all), reported as mean +- std.
        for name, run in (
            ("logistic regression",
             lambda seed: run_sklearn("logistic regression", logistic_regression(feature_set, seed), train, test,
                                      feature_set)),
            ("HistGradientBoosting",
             lambda seed: run_sklearn("HistGradientBoosting", gradient_boosting(feature_set, seed), train, test,
                                      feature_set)),
            ("keras_music MLP", lambda seed: run_mlp(train, validation, test, feature_set, seed)),
        ):
            rows.append(mean_over_seeds([run(seed) for seed in seeds], seeds))
        logging.info("%s done", feature_set)
    leaky = gradient_boosting("seed", seeds[0], numeric_extra=("raw_duration",))
    rows.append(run_sklearn("HistGradientBoosting + raw duration (LEAKY: unit reveals class)", leaky,
                            train, test, "seed", leaky=True))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| features | model | test accuracy | macro-F1 | log loss | train s |", "|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.3f}" + (f" ± {r['accuracy_std']:.3f}" if "accuracy_std" in r else "")
        f1 = f"{r['macro_f1']:.3f}" + (f" ± {r['macro_f1_std']:.3f}" if "macro_f1_std" in r else "")
        name = r["model"]
        lines.append(f"| {r['features']} | {name} | {acc} | {f1} | {r['log_loss']:.3f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Genre CSV. Default: %(default)s")
    parser.add_argument("--split-seed", type=int, default=0, help="Seed of split_by_song. Default: 0.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 3],
                        help="Seeds of every model with randomness (mean and std reported); an MLP ensemble uses "
                             "seeds s, s+1, s+2. Default: 0 3.")
    parser.add_argument("--out", type=Path, default=RESULTS / "genre.json", help="Default: %(default)s")
    parser.add_argument("--readme", type=Path, default=None, help="README to update with the table.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    rows = benchmark(args.data, args.split_seed, args.seeds)
    table = markdown(rows)
    meta = (f"Measured {datetime.date.today().isoformat()} by `python -m bench.genre` on {platform.machine()} "
            f"({os.cpu_count()} CPUs); data `{args.data.name}`, split by song with seed {args.split_seed} "
            f"(80/10/10); every model trains on the same training songs and is scored on the same test songs. "
            f"Rows with ± are the mean and standard deviation over seeds {args.seeds}.")
    publish("genre", {"meta": meta, "rows": rows}, meta + "\n\n" + table, args.out, args.readme)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
