"""Genre benchmark: our Keras MLP against honest baselines, on one split or K folds by song.

    python -m bench.genre                                                # ../shared/datasets/genre/train.csv
    python -m bench.genre --data train.csv --seeds 0 1 2 --readme docs/benchmarks.md
    python -m bench.genre --folds 5 --readme docs/benchmarks.md         # 5-fold cross-validation by song
    python -m bench.genre --time-shipped --readme docs/benchmarks.md    # time to train the shipped model

Trains on the training songs of `split_by_song(seed)` (or of each fold of `group_folds` over
the same song keys: every song is tested in exactly one fold), early-stops the MLP on the
validation songs, and scores every model on the same test songs. Baselines: majority
class, logistic regression, HistGradientBoosting (for `full`: the artist target-encoded
with scikit-learn's TargetEncoder, fitted inside each training part). One row keeps the raw
mixed-unit duration column, whose unit leaks the class, to show why the paper's ~50% is not
comparable. `--models` runs some rows only (e.g. the baselines in seconds).

`--time-shipped` times what `python -m keras_music.train --task genre --data train.csv` does with
the shipped defaults ('full' features: split by song, fit, test report, run folder) against the
previous defaults (3 separate MLPs of 1024-512, batch 64, patience 20) in the same run, with
HistGradientBoosting on the same training rows for scale.

Prints a Markdown table and writes `bench/results/genre.json` (`genre-<K>fold.json` with
`--folds`; + `.md`); with `--readme FILE` (docs/benchmarks.md), replaces the block between
`<!-- bench:<that name>:start -->` and `<!-- bench:<that name>:end -->` in FILE.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

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

from bench.publish import parse_overrides, publish
from keras_music.config import TrainingConfig, field_changes
from keras_music.data.genre import FEATURE_SETS, RAW_DURATION_COLUMN, load_genre_csv, song_keys, split_by_song
from keras_music.data.splits import group_folds
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


def mlp_configs(feature_set: str, overrides: dict):
    """`(GenreMLPConfig, TrainingConfig)` of the MLP row: the defaults with `--set` changes, each
    field going to whichever of the two configs has it (an unknown field is an error naming both)."""
    from keras_music.config import GENRE_TRAINING
    from keras_music.models.genre_mlp import GenreMLPConfig

    model_fields = {f.name for f in dataclasses.fields(GenreMLPConfig)} - {"feature_set"}
    training_fields = {f.name for f in dataclasses.fields(TrainingConfig)} - {
        "seed", "split_seed", "validation_fraction", "test_fraction"}  # the splits are the bench's
    unknown = sorted(set(overrides) - model_fields - training_fields)
    if unknown:
        raise ValueError(f"--set {', '.join(unknown)}: not a field of the genre MLP ({', '.join(sorted(model_fields))}) "
                         f"or of its training ({', '.join(sorted(training_fields))}).")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    model = GenreMLPConfig(feature_set=feature_set, **{k: v for k, v in values.items() if k in model_fields})
    training = dataclasses.replace(GENRE_TRAINING, **{k: v for k, v in values.items() if k in training_fields})
    return model, training


def mlp_name(overrides: dict) -> str:
    """`keras_music MLP (ensemble of 3)`, `(8 heads in one network)` or `(ensemble of 2 x 8 heads)`,
    then the other `--set` changes."""
    config, _ = mlp_configs("full", overrides)
    members, heads = config.ensemble_size, config.heads
    kind = (f"ensemble of {members}" if heads == 1 else f"{heads} heads in one network" if members == 1
            else f"ensemble of {members} x {heads} heads")
    changed = field_changes({k: v for k, v in overrides.items() if k not in ("heads", "ensemble_size")})
    return f"keras_music MLP ({kind})" + (" " + changed if changed else "")


def run_mlp(train, validation, test, feature_set, seed, overrides: dict | None = None) -> dict:
    from keras_music.data.genre import genre_dataset
    from keras_music.training import fit_genre_mlp

    config, training = mlp_configs(feature_set, overrides or {})
    training = dataclasses.replace(training, seed=seed)
    start = time.perf_counter()
    model, histories = fit_genre_mlp(train, validation, config, training, NUM_CLASSES)
    probabilities = model.predict(genre_dataset(test, feature_set, 1024), verbose=0)
    return {"model": mlp_name(overrides or {}), "features": feature_set, "leaky": False,
            **scores(test["label"], probabilities), "seconds": time.perf_counter() - start,
            "epochs": [len(h["loss"]) for h in histories]}


SCORES = ("accuracy", "macro_f1", "log_loss", "seconds")


def summarise(runs: list[dict], seeds: list[int]) -> dict:
    """One row: the mean of each score over its runs (splits x seeds), the standard deviation of
    accuracy and macro-F1 where there is more than one run, and the runs themselves."""
    mean = {key: float(np.mean([r[key] for r in runs])) for key in SCORES}
    spread = ({f"{key}_std": float(np.std([r[key] for r in runs])) for key in ("accuracy", "macro_f1")}
              if len(runs) > 1 else {})
    per_run = ("fold", "seed", *SCORES, "epochs")  # epochs: of each MLP member
    first = {k: v for k, v in runs[0].items() if k not in per_run}
    return {**first, **mean, **spread, "seeds": seeds, "runs": len(runs),
            "per_run": [{k: r[k] for k in per_run if k in r} for r in runs]}


# Row keys for --models, in table order, and what each runs: (run(train, validation, test, feature
# set, seed) -> scores with the row's name, whether it has randomness (then it runs once per seed)).
MODELS = {
    "majority": (lambda tr, va, te, fs, seed: run_sklearn(
        "majority class", DummyClassifier(strategy="prior"), tr, te, fs), False),
    "logistic": (lambda tr, va, te, fs, seed: run_sklearn(
        "logistic regression", logistic_regression(fs, seed), tr, te, fs), True),
    "hgb": (lambda tr, va, te, fs, seed: run_sklearn(
        "HistGradientBoosting", gradient_boosting(fs, seed), tr, te, fs), True),
    "mlp": (lambda tr, va, te, fs, seed, overrides=None: run_mlp(tr, va, te, fs, seed, overrides), True),
}
LEAKY = "leaky"  # HistGradientBoosting with the raw duration column, seed features only


def evaluation_splits(frame: pd.DataFrame, folds: int, split_seed: int) -> list:
    """The one split by song (`folds` 1, 80/10/10), or `folds` folds by song (every song tested
    once; validation songs, 10%, from the rest)."""
    defaults = TrainingConfig()
    if folds == 1:
        return [split_by_song(frame, split_seed, defaults.validation_fraction, defaults.test_fraction)]
    return group_folds(song_keys(frame), folds, split_seed, defaults.validation_fraction)


def benchmark(data: Path, split_seed: int, seeds: list[int], folds: int = 1, models: list[str] | None = None,
              feature_sets=("seed", "full"), overrides: dict | None = None) -> list[dict]:
    """Every row (`models`, default all) on every split x seed; `overrides` change the MLP's config."""
    if overrides:
        mlp_configs("full", overrides)  # an unknown field fails now, not after the baselines
    frame = load_genre_csv(data)
    # The raw column, unit and all, only for the clearly labelled leaky row.
    frame["raw_duration"] = pd.read_csv(data, usecols=[RAW_DURATION_COLUMN])[RAW_DURATION_COLUMN].to_numpy()
    splits = evaluation_splits(frame, folds, split_seed)
    parts = [tuple(frame.iloc[rows] for rows in (split.train, split.validation, split.test)) for split in splits]
    for i, (train, validation, test) in enumerate(parts):
        logging.info("%s: %d train, %d validation, %d test rows", f"fold {i}" if folds > 1 else
                     f"split by song (seed {split_seed})", len(train), len(validation), len(test))
    wanted = models or [*MODELS, LEAKY]
    rows = []
    for feature_set in feature_sets:
        for key, (run, seeded) in MODELS.items():
            if key not in wanted:
                continue
            extra = {"overrides": overrides} if key == "mlp" and overrides else {}
            runs = [{**run(train, validation, test, feature_set, seed, **extra), "fold": i,
                     "seed": seed if seeded else None}
                    for i, (train, validation, test) in enumerate(parts) for seed in (seeds if seeded else seeds[:1])]
            rows.append(summarise(runs, seeds if seeded else []))
            logging.info("%s, %s: accuracy %.3f, macro-F1 %.3f", feature_set, rows[-1]["model"],
                         rows[-1]["accuracy"], rows[-1]["macro_f1"])
    if LEAKY in wanted and "seed" in feature_sets:
        runs = [{**run_sklearn("HistGradientBoosting + raw duration (LEAKY: unit reveals class)",
                               gradient_boosting("seed", seeds[0], numeric_extra=("raw_duration",)), train, test,
                               "seed", leaky=True), "fold": i, "seed": seeds[0]}
                for i, (train, validation, test) in enumerate(parts)]
        rows.append(summarise(runs, seeds[:1]))
    return rows


PREVIOUS_DEFAULTS = {"hidden_units": (1024, 512), "heads": 1, "ensemble_size": 3, "batch_size": 64, "patience": 20}


def time_shipped(data: Path, seed: int) -> list[dict]:
    """Seconds to train the shipped 'full' model as `train` does (and the previous defaults, and
    HistGradientBoosting on the same training rows), each with its test scores."""
    import tempfile

    from keras_music.config import GENRE_TRAINING
    from keras_music.training import genre_split, train_genre

    training = dataclasses.replace(GENRE_TRAINING, seed=seed)
    _, train, _, test = genre_split(str(data), training, None)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides in (("shipped defaults", {}), ("previous defaults", PREVIOUS_DEFAULTS)):
            config, fit = mlp_configs("full", overrides)
            start = time.perf_counter()
            report = train_genre(str(data), Path(folder) / name.replace(" ", "-"), config,
                                 dataclasses.replace(fit, seed=seed), verbose=0)
            rows.append({"model": f"keras_music MLP, {name} ({mlp_name(overrides).split('(', 1)[1]}",
                         "seconds": time.perf_counter() - start, "accuracy": report["accuracy"],
                         "macro_f1": report["macro_f1"], "epochs": report["epochs_run"],
                         "config": {k: getattr(config, k) for k in ("hidden_units", "heads", "ensemble_size")}
                         | {k: getattr(fit, k) for k in ("batch_size", "patience")}})
            logging.info("%s: %.1f s, accuracy %.3f", name, rows[-1]["seconds"], rows[-1]["accuracy"])
    hgb = run_sklearn("HistGradientBoosting (same training rows)", gradient_boosting("full", seed), train, test, "full")
    rows.append({"model": hgb["model"], "seconds": hgb["seconds"], "accuracy": hgb["accuracy"],
                 "macro_f1": hgb["macro_f1"]})
    return rows


def time_markdown(rows: list[dict]) -> str:
    lines = ["| model ('full' features, whole CSV split 80/10/10) | train s | test accuracy | macro-F1 | epochs |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['seconds']:.1f} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
                     f"{', '.join(map(str, r.get('epochs', []))) or '-'} |")
    shipped, previous = rows[0]["seconds"], rows[1]["seconds"]
    lines += ["", f"Shipped / previous defaults: {shipped / previous:.2f} x the time "
                  f"({previous / shipped:.1f} x faster)."]
    return "\n".join(lines)


def fold_means(row: dict) -> dict[int, np.ndarray]:
    """Per fold, the mean (accuracy, macro-F1) over the row's seeds."""
    runs: dict[int, list] = {}
    for run in row["per_run"]:
        runs.setdefault(run["fold"], []).append((run["accuracy"], run["macro_f1"]))
    return {fold: np.mean(values, axis=0) for fold, values in runs.items()}


def compare(candidates: dict, baselines: dict, baseline: str = "HistGradientBoosting") -> str:
    """Paired, fold by fold: each MLP row of `candidates` against the `baseline` row of the same
    feature set in `baselines` (results of the same folds)."""
    if candidates["setup"]["folds"] != baselines["setup"]["folds"] or \
            candidates["setup"]["split_seed"] != baselines["setup"]["split_seed"]:
        raise ValueError("the two results were not measured on the same folds (folds and split seed differ).")
    lines = ["| features | model | vs | accuracy: mean difference (per-fold min..max) | folds above | "
             "macro-F1: mean difference (min..max) | folds above | fold spread (std of the baseline's accuracy) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in candidates["rows"]:
        base = next((b for b in baselines["rows"] if b["features"] == row["features"] and b["model"] == baseline),
                    None)
        if base is None or row["model"] == baseline:
            continue
        ours, theirs = fold_means(row), fold_means(base)
        diff = np.array([ours[fold] - theirs[fold] for fold in sorted(theirs)])
        cells = [f"{diff[:, i].mean():+.3f} ({diff[:, i].min():+.3f}..{diff[:, i].max():+.3f}) | "
                 f"{int((diff[:, i] > 0).sum())} of {len(diff)}" for i in (0, 1)]
        lines.append(f"| {row['features']} | {row['model']} | {baseline} | {cells[0]} | {cells[1]} | "
                     f"{base.get('accuracy_std', 0.0):.3f} |")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    lines = ["| features | model | test accuracy | macro-F1 | log loss | train s |", "|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{r['accuracy']:.3f}" + (f" ± {r['accuracy_std']:.3f}" if "accuracy_std" in r else "")
        f1 = f"{r['macro_f1']:.3f}" + (f" ± {r['macro_f1_std']:.3f}" if "macro_f1_std" in r else "")
        name = r["model"]
        lines.append(f"| {r['features']} | {name} | {acc} | {f1} | {r['log_loss']:.3f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def command(args) -> str:
    words = ["python -m bench.genre"]
    if args.data != DEFAULT_DATA:
        words.append(f"--data {args.data}")
    if args.folds > 1:
        words.append(f"--folds {args.folds}")
    if args.split_seed:
        words.append(f"--split-seed {args.split_seed}")
    words.append("--seeds " + " ".join(map(str, args.seeds)))
    if args.models:
        words.append("--models " + " ".join(args.models))
    if args.features != ["seed", "full"]:
        words.append("--features " + " ".join(args.features))
    if args.set:
        words.append("--set " + " ".join(args.set))
    return " ".join(words)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Genre CSV. Default: %(default)s")
    parser.add_argument("--split-seed", type=int, default=0, help="Seed of split_by_song. Default: 0.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 3],
                        help="Seeds of every model with randomness (mean and std reported); an MLP ensemble uses "
                             "seeds s, s+1, s+2. Default: 0 3.")
    parser.add_argument("--folds", type=int, default=1,
                        help="K > 1: K-fold cross-validation by song (every song tested once). Default: 1, one "
                             "80/10/10 split by song.")
    parser.add_argument("--models", nargs="+", choices=[*MODELS, LEAKY], default=None,
                        help="Rows to run. Default: all.")
    parser.add_argument("--features", nargs="+", choices=["seed", "full"], default=["seed", "full"],
                        help="Feature sets. Default: seed full.")
    parser.add_argument("--set", nargs="+", default=None, metavar="FIELD=VALUE",
                        help="Change fields of the MLP's config or training (e.g. heads=8 ensemble_size=1 "
                             "batch_size=256), to judge a change on the same splits; the row is named with them.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Default: bench/results/genre.json, or genre-<K>fold.json with --folds K.")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    parser.add_argument("--time-shipped", action="store_true",
                        help="Time training the shipped 'full' model on the whole CSV as `train` does, against the "
                             "previous defaults (see above); writes bench/results/genre-train-time.json.")
    parser.add_argument("--compare", nargs=2, type=Path, default=None, metavar=("CANDIDATES", "BASELINES"),
                        help="Runs nothing: compares, fold by fold, the rows of one results JSON with "
                             "HistGradientBoosting in another of the same folds; writes genre-5fold-vs-hgb.json.")
    args = parser.parse_args(argv)
    if args.compare:
        candidates, baselines = (json.loads(path.read_text()) for path in args.compare)
        names = " ".join(str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)
                         for path in args.compare)
        meta = (f"`python -m bench.genre --compare {names}`: the rows of the first file against HistGradientBoosting "
                "of the second, on the same folds, fold by fold (each fold: the mean over the seeds of each).")
        out = args.out or RESULTS / f"genre-{candidates['setup']['folds']}fold-vs-hgb.json"
        table = compare(candidates, baselines)
        publish(out.stem, {"meta": meta, "table": table}, meta + "\n\n" + table, out, args.readme)
        return 0
    if args.time_shipped:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        rows = time_shipped(args.data, args.seeds[0])
        meta = (f"Measured {datetime.date.today().isoformat()} by `python -m bench.genre --time-shipped --seeds "
                f"{args.seeds[0]}` on {platform.machine()} ({os.cpu_count()} CPUs); data `{args.data.name}`; 'train "
                "s': `train_genre` in this process (split, fit, test report, run folder written), the target is "
                "at most 60 s for the shipped model.")
        out = args.out or RESULTS / "genre-train-time.json"
        publish(out.stem, {"meta": meta, "rows": rows}, meta + "\n\n" + time_markdown(rows), out, args.readme)
        return 0
    if args.folds < 1:
        parser.error(f"--folds must be 1 (one split) or at least 2, got {args.folds}.")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    out = args.out or RESULTS / ("genre.json" if args.folds == 1 else f"genre-{args.folds}fold.json")

    try:
        rows = benchmark(args.data, args.split_seed, args.seeds, args.folds, args.models, tuple(args.features),
                         parse_overrides(args.set))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = markdown(rows)
    evaluation = (f"split by song with seed {args.split_seed} (80/10/10); every model trains on the same training "
                  f"songs and is scored on the same test songs. Rows with ± are the mean and standard deviation "
                  f"over seeds {args.seeds}" if args.folds == 1 else
                  f"{args.folds}-fold cross-validation by song (normalised artist + track; fold seed "
                  f"{args.split_seed}): every song is tested in exactly one fold, validation songs (10%) for early "
                  f"stopping come from the other folds, and every model sees the same parts. Rows with ± are the "
                  f"mean and standard deviation over {args.folds} folds x seeds {args.seeds} (models without "
                  f"randomness: over the folds)")
    meta = (f"Measured {datetime.date.today().isoformat()} by `{command(args)}` on {platform.machine()} "
            f"({os.cpu_count()} CPUs); data `{args.data.name}`, {evaluation}. 'train s': mean seconds of one fit "
            "(scoring included).")
    publish(out.stem, {"meta": meta, "setup": {"folds": args.folds, "split_seed": args.split_seed,
                                                "seeds": args.seeds, "data": str(args.data)}, "rows": rows},
            meta + "\n\n" + table, out, args.readme)
    print(f"\nwrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
