"""Emotion benchmark: do the sequence models learn, and do they beat honest baselines?

    python -m bench.emotion                              # the shared 4Q sequences
    python -m bench.emotion --data cal500 --folds 10
    python -m bench.emotion --data demo --seeds 0 1 2

On one seeded split, or with `--folds K` on each fold of a K-fold cross-validation (by
artist where artists are known; the same splits for every row), every model trains on the
training clips and is scored on the same test clips:

* prior: a constant predictor, each tag's training frequency (ROC-AUC 0.5 by construction);
* logistic regression on per-clip vectors (mean + std over time of every mel and MFCC band;
  CAL500: its 68 aggregated features), standardised, one model per tag on its known cells
  (C = 0.1);
* our per-clip MLP tagger on the same vectors, and (where there are sequences) the
  MLP-LSTM and CNN-LSTM, `seed` and `default` variants, exactly as
  `python -m keras_music.train --task emotion` trains them (early stopping on validation
  macro ROC-AUC after at least 10 epochs).

Models with randomness run once per seed (and fold); rows give mean +- std over all runs
(folds x seeds). For the 4Q quadrants the table adds arousal (Q1 + Q2) and valence
(Q1 + Q4) ROC-AUC from the quadrant probabilities. Prints a Markdown table
and writes `bench/results/emotion-<data>.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bench.publish import publish
from keras_music.data.emotion import load_emotion_data
from keras_music.data.splits import group_folds
from keras_music.data.sequences import SequenceConfig
from keras_music.reports import tagging_report
from keras_music.models.registry import families
from keras_music.training import EMOTION_TRAINING, emotion_split, train_emotion

RESULTS = REPO_ROOT / "bench" / "results"
SCORES = ("macro_roc_auc", "macro_pr_auc", "accuracy", "arousal_roc_auc", "valence_roc_auc")


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def baselines(emotion, train_ids, test_ids) -> list[dict]:
    train_rows, test_rows = emotion.tags.rows(train_ids), emotion.tags.rows(test_ids)
    x_train, y_train, m_train = emotion.clip_vectors(train_ids), train_rows.labels, train_rows.mask
    x_test, y_test, m_test = emotion.clip_vectors(test_ids), test_rows.labels, test_rows.mask
    tags = emotion.tags.tags
    prior = (y_train * m_train).sum(axis=0) / np.maximum(m_train.sum(axis=0), 1)
    rows = [{"model": "prior (constant)", **tagging_report(tags, y_test, m_test,
                                                           logits_of(np.tile(prior, (len(test_ids), 1))))}]
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    probabilities = np.zeros_like(y_test)
    for j in range(len(tags)):
        known = m_train[:, j] > 0
        classes = np.unique(y_train[known, j])
        if len(classes) < 2:
            probabilities[:, j] = classes[0] if len(classes) else 0.5
            continue
        model = LogisticRegression(C=0.1, max_iter=5000).fit(x_train[known], y_train[known, j])
        probabilities[:, j] = model.predict_proba(x_test)[:, 1]
    name = "logistic regression, " + ("aggregated features" if emotion.vectors is not None else "pooled mean+std")
    rows.append({"model": name, **tagging_report(tags, y_test, m_test, logits_of(probabilities))})
    return rows


def mean_over_runs(name: str, reports: list[dict], seconds: list[float] | None = None) -> dict:
    """One table row: mean and std of every score over the runs (folds x seeds) of a model."""
    row = {"model": name, "runs": len(reports)}
    if seconds:
        row["seconds"] = float(np.mean(seconds))
    for key in SCORES + ("macro_accuracy",):
        values = [r[key] for r in reports if r.get(key) is not None]
        row[key] = float(np.mean(values)) if values else None
        row[f"{key}_std"] = float(np.std(values)) if len(values) > 1 else None
    row["constant_predictions"] = sorted({t for r in reports for t in r["constant_predictions"]})
    if "epochs_run" in reports[0]:
        row["epochs"] = [r["epochs_run"] for r in reports]
    return row


def markdown(rows, meta) -> str:
    def cell(row, key):
        if row.get(key) is None:
            return "n/a"
        spread = row.get(f"{key}_std")
        return f"{row[key]:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")

    columns = [("macro ROC-AUC", "macro_roc_auc"), ("macro PR-AUC", "macro_pr_auc"),
               ("accuracy (one tag per clip)", "accuracy")]
    columns += [(f"{axis} ROC-AUC", f"{axis}_roc_auc") for axis in ("arousal", "valence")
                if any(row.get(f"{axis}_roc_auc") is not None for row in rows)]
    lines = [meta, "", "| model | " + " | ".join(title for title, _ in columns) + " | constant tags |",
             "|---" * (len(columns) + 2) + "|"]
    for row in rows:
        constant = ", ".join(row.get("constant_predictions", [])) or "-"
        lines.append(f"| {row['model']} | " + " | ".join(cell(row, key) for _, key in columns) + f" | {constant} |")
    return "\n".join(lines)


def model_rows(emotion) -> list[tuple[str, object]]:
    """(row name, config) of every registered tagger the data can feed, each variant of a family with
    variants: per-clip families everywhere, sequence families where there are sequences (not CAL500)."""
    rows = []
    for family in families("emotion"):
        if family.inputs == "sequences" and emotion.source is None:
            continue
        for variant in ("seed", "default") if family.has_variants else ("default",):
            config = family.config(variant=variant) if family.has_variants else family.config()
            rows.append((f"{family.name} ({variant})", config))
    return rows


def evaluation_splits(emotion, training, folds: int) -> list[tuple[list[str], list[str], list[str]]]:
    """(train, validation, test) clip ids: the seeded split of `train`, or each of `folds` folds."""
    if folds <= 1:
        return [emotion_split(emotion, training)]
    ids = emotion.tags.clip_ids
    return [tuple([ids[i] for i in rows] for rows in (split.train, split.validation, split.test))
            for split in group_folds([emotion.groups[c] for c in ids], folds, training.split_seed,
                                     training.validation_fraction)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mer4q", help="What `train --task emotion --data` takes. Default: mer4q.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Training seeds. Default: 0 1.")
    parser.add_argument("--split-seed", type=int, default=0, help="Seeds the split or the folds. Default: 0.")
    parser.add_argument("--folds", type=int, default=1,
                        help="K > 1: K-fold cross-validation by artist/song instead of one split. Default: 1.")
    parser.add_argument("--epochs", type=int, default=EMOTION_TRAINING.epochs,
                        help=f"Maximum epochs per model. Default: {EMOTION_TRAINING.epochs}.")
    parser.add_argument("--out", type=Path, default=None, help="Default: bench/results/emotion-<data>.json")
    parser.add_argument("--readme", type=Path, default=None, help="README to update with the table.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    name = Path(args.data).name or args.data
    out = args.out or RESULTS / f"emotion-{name}.json"

    training = dataclasses.replace(EMOTION_TRAINING, split_seed=args.split_seed, epochs=args.epochs,
                                   min_epochs=min(EMOTION_TRAINING.min_epochs, args.epochs - 1))
    emotion = load_emotion_data(args.data)
    folds = evaluation_splits(emotion, training, args.folds)
    baseline_reports: dict[str, list[dict]] = {}
    for train_ids, _, test_ids in folds:
        for row in baselines(emotion, train_ids, test_ids):
            baseline_reports.setdefault(row.pop("model"), []).append(row)
    rows = [mean_over_runs(name, reports) for name, reports in baseline_reports.items()]
    for name, config in model_rows(emotion):
        reports, seconds = [], []
        for fold, split in enumerate(folds):
            for seed in args.seeds:
                start = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    reports.append(train_emotion(args.data, Path(tmp), config, SequenceConfig(),
                                                 dataclasses.replace(training, seed=seed), verbose=0, splits=split))
                seconds.append(time.perf_counter() - start)
                logging.info("%s fold %d seed %d: test macro ROC-AUC %.3f, accuracy %s", name, fold,
                             seed, reports[-1]["macro_roc_auc"], reports[-1]["accuracy"])
        rows.append(mean_over_runs(name, reports, seconds))

    grouping = "artist" if any(g != c for c, g in emotion.groups.items()) else "clip"
    evaluation = (f"{args.folds}-fold cross-validation by {grouping} (fold seed {args.split_seed}; each fold "
                  f"~{len(folds[0][2])} test clips)" if args.folds > 1 else
                  f"test = {len(folds[0][2])} clips of a split by {grouping} (split seed {args.split_seed})")
    meta = (f"Measured {datetime.date.today().isoformat()} by `python -m bench.emotion --data {args.data}"
            f"{f' --folds {args.folds}' if args.folds > 1 else ''} --seeds {' '.join(map(str, args.seeds))}` on "
            f"{platform.machine()} ({os.cpu_count()} CPUs): {len(emotion.tags.clip_ids)} clips, "
            f"{len(emotion.tags.tags)} tags, {evaluation}; ± = std over "
            f"{'folds x ' if args.folds > 1 else ''}training seeds {args.seeds}. 'constant tags': tags predicted "
            "(nearly) the same for every clip (std of probabilities < 0.02).")
    publish(f"emotion-{name}", {"meta": meta, "rows": rows}, markdown(rows, meta), out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
