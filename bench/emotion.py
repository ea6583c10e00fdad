"""Emotion benchmark: do the sequence models learn, and do they beat honest baselines?

    python -m bench.emotion                                   # the shared 4Q sequences, one split by artist
    python -m bench.emotion --folds 5                         # 4Q, 5-fold cross-validation by artist
    python -m bench.emotion --protocol literature --seeds 0   # 4Q, stratified 10-fold CV by clip, 2 repeats
    python -m bench.emotion --data cal500 --folds 10 --out bench/results/emotion-cal500.json
    python -m bench.emotion --data STORE --labels ../shared/datasets/mer4q/labels.csv --folds 5
    python -m bench.emotion --folds 5 --models cnn_lstm         # some rows (in parallel, or elsewhere) ...
    python -m bench.emotion --merge bench/results/parts/emotion-mer4q-5fold-*.json --out T.json --readme docs/benchmarks.md  # ... one table

Every row trains and is scored on the same splits, chosen by `--protocol`:

* artist (default): one seeded split, or with `--folds K` each fold of a K-fold
  cross-validation, by artist where artists are known (by clip otherwise): no artist is on
  two sides, and early stopping's validation clips come from the fold's training artists.
* literature: stratified K-fold cross-validation by clip (default 10 folds) on each clip's one
  tag (the 4Q quadrant), repeated `--repeats` times (default 2) with fold seeds
  `--split-seed`, +1, ...; validation (early stopping) is a stratified draw from the training
  part. This is the protocol of the published 4Q F1 scores (it lets one artist's songs be on
  both sides, so it scores higher than the artist protocol); on the 4Q tags the table shows
  them as reference rows, typed from the papers and marked "(reported, not run here)".

Rows (`--models` runs some: a row name as printed, a family, `prior` or `logistic`):

* prior: a constant predictor, each tag's training frequency (ROC-AUC 0.5 by construction);
* logistic regression on per-clip vectors (mean + std over time of every mel and MFCC band;
  CAL500: its 68 aggregated features), standardised, one model per tag on its known cells,
  C in (0.001, 0.01, 0.1, 1) chosen per tag by an inner 3-fold CV grouped by artist;
* on a store of the musicnn recipe (`extract --recipe musicnn`), the musicnn probes: the same
  logistic regression on musicnn's penultimate layer (MTT and MSD weights, our Keras port),
  mean + std over 3 s patches every 3 s, the pretrained peer users reach for;
* every registered tagger the data can feed (per-clip MLP; where there are sequences the
  MLP-LSTM and CNN-LSTM, `seed` and `default` variants), exactly as
  `python -m keras_music.train --task emotion` trains them (early stopping on validation
  macro ROC-AUC after at least 10 epochs).

Taggers run once per training seed and split, the deterministic baselines once per split;
rows give mean +- std over those runs (folds x repeats x seeds), and the JSON keeps every
run's scores (`per_run`) for re-aggregation. Where every clip has one tag (4Q) the table
has accuracy and macro F1 of the argmax tag; for the 4Q quadrants also arousal (Q1 + Q2)
and valence (Q1 + Q4) ROC-AUC from the quadrant probabilities; and each row's mean seconds
per fit. Prints a Markdown table and writes `bench/results/emotion-<data>[-<protocol, folds,
repeats>].json` (+ `.md`), or with `--models` `bench/results/parts/<that name>-<models>.json`,
so that runs in parallel never overwrite each other; `--readme` fills the block named
after the file. `--merge` builds one table from the parts (it refuses parts of different
data, protocol, folds, repeats, seeds or epochs, and a row found in two parts).

Fits take minutes to hours, so every finished run goes at once into `<out>.progress.jsonl`
beside the results file: a bench killed or stopped part way resumes when the same command is
run again (it skips the runs in that file and says how many), and the file is deleted once the
table is written. A progress file of other settings is an error, never mixed in. The fit under
way trains in `<out>.work/<row>-r<repeat>-f<fold>-s<seed>/` with the training library's
per-epoch backups, so the same command also resumes that fit from its last finished epoch
(its line then says `resumed_after_epoch`, and its `seconds` count every part of the fit).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from bench.clock import FitClock
from bench.merge import check_one_table, join_rows, read_parts, table_order
from bench.progress_log import ProgressLog, progress_path
from bench.publish import check_block, parse_overrides, publish, slug
from keras_music.config import field_changes
from keras_music.data.emotion import dataset_aliases
from keras_music.data.emotion import load_emotion_data
from keras_music.data.splits import group_folds, stratified_folds
from keras_music.data.sequences import SequenceConfig
from keras_music.models.registry import ALIASES, REGISTRY, families
from keras_music.quadrants import quadrant_scores
from keras_music.reports import one_tag_per_clip, tagging_report
from keras_music.training import EMOTION_TRAINING, emotion_split, train_emotion

RESULTS = REPO_ROOT / "bench" / "results"
SCORES = ("accuracy", "macro_f1", "macro_roc_auc", "macro_pr_auc", "arousal_roc_auc", "valence_roc_auc",
          "macro_accuracy")
COLUMNS = (("accuracy (one tag per clip)", "accuracy"), ("macro F1", "macro_f1"), ("macro ROC-AUC", "macro_roc_auc"),
           ("macro PR-AUC", "macro_pr_auc"), ("arousal ROC-AUC", "arousal_roc_auc"),
           ("valence ROC-AUC", "valence_roc_auc"))
PROTOCOL_DEFAULTS = {"artist": {"folds": 1, "repeats": 1}, "literature": {"folds": 10, "repeats": 2}}
BASELINES = {"prior": "prior (constant)", "logistic": "logistic regression, {vectors}"}
# The pretrained peer users reach for: musicnn's penultimate layer, mean + std over 3 s patches, and a
# logistic-regression probe; on data of the musicnn recipe only (`--data` a store of `--recipe musicnn`).
PROBES = {"musicnn_probe_mtt": "MTT_musicnn", "musicnn_probe_msd": "MSD_musicnn",
          "musicnn_probe_both": "MSD_musicnn+MTT_musicnn"}  # the probe beside musicnn_head's two networks
PROBE_NAME = "musicnn probe ({weights} embedding, our port): logistic regression"
PROBE_CS = (0.001, 0.01, 0.1, 1.0)  # C of the logistic regressions, chosen by inner grouped 3-fold CV
ANY_RECIPE = object()  # table_rows without data: every row
# Published 4Q results, typed from the papers: shown beside the literature protocol's table as
# reference rows only, never as measurements (their data and protocol, not ours).
LITERATURE_4Q = (
    {"model": "Panda et al. 2018, hand-crafted features, 20 x 10-fold CV by clip on all 900 clips "
              "(reported, not run here)",
     "macro_f1": 0.764,
     "source": "R. Panda, R. Malheiro, R. P. Paiva, Novel Audio Features for Music Emotion Recognition, "
               "IEEE Transactions on Affective Computing, doi:10.1109/TAFFC.2018.2820691 (F1-score)"},
    {"model": "Louro et al. 2024, ensemble of a dense and a convolutional network (reported, not run here)",
     "macro_f1": 0.802,
     "source": "P. L. Louro, H. Redinho, R. Malheiro, R. P. Paiva, R. Panda, A Comparison Study of Deep "
               "Learning Methodologies for Music Emotion Recognition, Sensors 24(7):2201, 2024, "
               "doi:10.3390/s24072201 (F1 score)"},
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row: its printed `name`, the `key` that `--models` also selects it by (its
    family, or `prior` / `logistic`), and the tagger's config (None: a baseline, which has no
    training seed)."""

    name: str
    key: str
    config: object = None
    sequences: dict = dataclasses.field(default_factory=dict)  # `SequenceConfig` fields changed by `--set`


@dataclasses.dataclass(frozen=True)
class Fold:
    """The clip ids of one split every row is scored on, and where it comes from."""

    repeat: int
    fold: int
    fold_seed: int
    train: list[str]
    validation: list[str]
    test: list[str]


def table_rows(vectors: str, sequences: bool = True, recipe=ANY_RECIPE) -> list[Row]:
    """Every row, in table order: the baselines (logistic regression on `vectors`; the musicnn
    probes), then each registered tagger (each variant of a family with variants); sequence
    families only where there are sequences (not CAL500), and families (and probes) that need
    a feature recipe only on data of that recipe."""
    def fits(family) -> bool:
        if recipe is ANY_RECIPE:
            return True
        try:
            family.check_recipe(recipe, "data")
            return True
        except ValueError:
            return False

    rows = [Row(name.format(vectors=vectors), key) for key, name in BASELINES.items()]
    if sequences and fits(REGISTRY["musicnn_head"]):
        rows += [Row(PROBE_NAME.format(weights=weights), key) for key, weights in PROBES.items()]
    for family in families("emotion"):
        if (family.inputs == "sequences" and not sequences) or not fits(family):
            continue
        for variant in ("seed", "default") if family.has_variants else ("default",):
            config = family.config(variant=variant) if family.has_variants else family.config()
            rows.append(Row(f"{family.name} ({variant})", family.name, config))
    return rows


def with_overrides(rows: list[Row], overrides: dict) -> list[Row]:
    """The tagger rows with `overrides` set in their configs (or, for `SequenceConfig` fields
    such as `validate_on_windows`, in how their clips are cut and validated) and named with them
    (`mlp_lstm (default, spec_augment=0.1)`); baselines as they are. A field that neither the
    tagger's config nor `SequenceConfig` has is an error, naming the fields there are."""
    if not overrides:
        return rows
    suffix = field_changes(overrides)
    out = []
    for row in rows:
        if row.config is None:
            out.append(row)
            continue
        fields = [f.name for f in dataclasses.fields(row.config)]
        sequence_fields = [f.name for f in dataclasses.fields(SequenceConfig)]
        missing = sorted(set(overrides) - set(fields) - set(sequence_fields))
        if missing:
            raise ValueError(f"--set {', '.join(missing)}: {row.name} has no such field (its fields: "
                             f"{', '.join(fields)}; SequenceConfig's: {', '.join(sequence_fields)}); choose its "
                             "rows with --models.")
        config = dataclasses.replace(row.config, **{k: v for k, v in overrides.items() if k in fields})
        out.append(Row(f"{row.name[:-1]}, {suffix})", row.key, config,
                       {k: v for k, v in overrides.items() if k not in fields}))
    return out


def model_choices() -> list[str]:
    """What `--models` accepts: row names as printed, families (and `mlp`), `prior`, `logistic`."""
    rows = table_rows("pooled mean+std") + table_rows("aggregated features")
    keys = [*BASELINES, *PROBES, *(family.name for family in families("emotion")), *(m for t, m in ALIASES if t == "emotion")]
    return list(dict.fromkeys(keys + [row.name for row in rows]))


def select(rows: list[Row], models: list[str] | None, data: str) -> list[Row]:
    """The rows `--models` names (all rows without it)."""
    if not models:
        return rows
    wanted = {ALIASES.get(("emotion", m), m) for m in models}
    chosen = [row for row in rows if row.name in wanted or row.key in wanted]
    if not chosen:
        raise ValueError(f"--models {' '.join(models)}: no such row runs on --data {data}; its rows are "
                         f"{', '.join(repr(row.name) for row in rows)}.")
    return chosen


def tag_classes(emotion) -> list[str] | None:
    """Each clip's one positive tag where every clip has exactly one (the 4Q quadrant), else None."""
    tags = emotion.tags
    if not one_tag_per_clip(tags.labels, tags.mask):
        return None
    return [tags.tags[j] for j in tags.labels.argmax(axis=1)]


def evaluation_splits(emotion, training, protocol: str, folds: int, repeats: int) -> list[Fold]:
    """The splits of `protocol` (see the module docstring); repeat r uses fold seed split_seed + r."""
    ids = emotion.tags.clip_ids
    classes = tag_classes(emotion) or ["all"] * len(ids)  # several tags per clip: unstratified folds
    splits = []
    for repeat in range(repeats):
        seed = training.split_seed + repeat
        if protocol == "artist" and folds <= 1:
            parts = [emotion_split(emotion, dataclasses.replace(training, split_seed=seed))]
        else:
            rows = (group_folds([emotion.groups[c] for c in ids], folds, seed, training.validation_fraction)
                    if protocol == "artist" else stratified_folds(classes, folds, seed, training.validation_fraction))
            parts = [tuple([ids[i] for i in part] for part in (s.train, s.validation, s.test)) for s in rows]
        splits += [Fold(repeat, i, seed, *part) for i, part in enumerate(parts)]
    return splits


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def choose_c(x, y, groups, default: float = 0.1) -> float:
    """C of `PROBE_CS` with the best mean ROC-AUC over an inner 3-fold CV, stratified and grouped
    by `groups`; folds whose validation part has one class are left out of the mean, and with
    no usable fold (too few groups or positives) `default`."""
    from sklearn.metrics import roc_auc_score

    if len(set(groups)) < 3 or min(np.sum(y == 0), np.sum(y == 1)) < 3:
        return default
    folds = [(a, b) for a, b in StratifiedGroupKFold(3).split(x, y, groups) if len(np.unique(y[b])) == 2
             and len(np.unique(y[a])) == 2]
    if not folds:
        return default
    scores = [np.mean([roc_auc_score(y[b], LogisticRegression(C=c, max_iter=5000).fit(x[a], y[a])
                                     .decision_function(x[b])) for a, b in folds]) for c in PROBE_CS]
    return float(PROBE_CS[int(np.argmax(scores))])


def baseline_probabilities(key: str, x_train, y_train, m_train, x_test, groups) -> np.ndarray:
    """`(test clips, tags)` probabilities of baseline `key` (`prior`, or a logistic regression
    per tag) fitted on the training clips' known cells; C from `PROBE_CS` by `choose_c` on the
    training clips' groups (artists)."""
    if key == "prior":
        prior = (y_train * m_train).sum(axis=0) / np.maximum(m_train.sum(axis=0), 1)
        return np.tile(prior, (len(x_test), 1))
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    probabilities = np.zeros((len(x_test), y_train.shape[1]))
    for j in range(y_train.shape[1]):
        known = m_train[:, j] > 0
        classes = np.unique(y_train[known, j])
        if len(classes) < 2:
            probabilities[:, j] = classes[0] if len(classes) else 0.5
            continue
        c = choose_c(x_train[known], y_train[known, j], np.asarray(groups)[known])
        model = LogisticRegression(C=c, max_iter=5000).fit(x_train[known], y_train[known, j])
        probabilities[:, j] = model.predict_proba(x_test)[:, 1]
    return probabilities


def musicnn_embeddings(emotion, clip_ids, weights: str) -> dict[str, np.ndarray]:
    """Each clip's musicnn embedding as users of musicnn compute it: the penultimate layer on 3 s
    patches every 3 s (`training.frozen.window_embeddings`; musicnn drops a clip's last partial
    patch, the window rule adds one ending at the clip's end), mean and std over them; with
    several networks (`MSD_musicnn+MTT_musicnn`), each one's, concatenated."""
    import keras

    from keras_music.models.musicnn import PATCH_FRAMES, build_musicnn
    from keras_music.models.musicnn_head import weight_names
    from keras_music.training.frozen import window_embeddings

    pooled = []
    for name in weight_names(weights):
        musicnn = build_musicnn(name)
        front = keras.Model(musicnn.inputs, musicnn.get_layer("penultimate").output, name=f"{name}_penultimate")
        windows = window_embeddings(front, emotion, clip_ids, SequenceConfig(crop_frames=PATCH_FRAMES,
                                                                             window_hop=PATCH_FRAMES))
        pooled.append({c: np.concatenate([w.mean(axis=0), w.std(axis=0)]) for c, w in windows.items()})
    return {c: np.concatenate([vectors[c] for vectors in pooled]) for c in clip_ids}


def baseline_vectors(rows: list[Row], emotion) -> dict[str, dict[str, np.ndarray]]:
    """`{baseline key: {clip: vector}}` for the baselines among `rows`."""
    ids = emotion.tags.clip_ids
    vectors = {}
    for row in rows:
        if row.config is not None:
            continue
        if row.key in PROBES:
            vectors[row.key] = musicnn_embeddings(emotion, ids, PROBES[row.key])
        else:
            vectors[row.key] = vectors.get("pooled") or dict(zip(ids, emotion.clip_vectors(ids)))
            vectors["pooled"] = vectors[row.key]
    return vectors


def run_once(row: Row, fold: Fold, seed: int | None, emotion, vectors: dict, args, training,
             fit_dir: Path | None = None) -> dict:
    """One fit of `row` on `fold` (a tagger with training seed `seed`): the test report. A tagger
    trains in `fit_dir` (resuming from its backup if a killed bench left one), else in a
    temporary folder."""
    if row.config is None:
        train, test = emotion.tags.rows(fold.train), emotion.tags.rows(fold.test)
        x_train, x_test = (np.stack([vectors[row.key][c] for c in ids]) for ids in (fold.train, fold.test))
        probabilities = baseline_probabilities(row.key, x_train, train.labels, train.mask, x_test,
                                               [emotion.groups[c] for c in fold.train])
        return tagging_report(emotion.tags.tags, test.labels, test.mask, logits_of(probabilities))
    with contextlib.ExitStack() as stack:
        out = fit_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        return train_emotion(args.data, out, row.config, REGISTRY[row.key].sequence_config(**row.sequences),
                             dataclasses.replace(training, seed=seed), labels=args.labels, verbose=0,
                             splits=(fold.train, fold.validation, fold.test))


def run_row(row: Row, splits: list[Fold], emotion, vectors: dict, args, training,
            progress: ProgressLog | None = None) -> list[dict]:
    """Every run of a row (splits x training seeds; baselines once per split), scores and seconds;
    runs already in `progress` are taken from it, and each new one is added to it."""
    runs = []
    for fold in splits:
        for seed in args.seeds if row.config is not None else [None]:
            done = progress.get(row.name, fold.repeat, fold.fold, seed) if progress else None
            if done is not None:
                runs.append(done)
                continue
            fit_dir = (progress.fit_dir(row.name, fold.repeat, fold.fold, seed)
                       if progress and row.config is not None else None)
            with FitClock(fit_dir / "seconds.json" if fit_dir else None) as clock:
                if clock.before:
                    logging.info("%s, repeat %d fold %d seed %s: resuming the fit in %s (%.0f s spent so far)",
                                 row.name, fold.repeat, fold.fold, seed, fit_dir, clock.before)
                report = run_once(row, fold, seed, emotion, vectors, args, training, fit_dir)
            runs.append({"repeat": fold.repeat, "fold": fold.fold, "fold_seed": fold.fold_seed, "seed": seed,
                         "seconds": clock.seconds(), "epochs": report.get("epochs_run"),
                         **{key: report.get(key) for key in SCORES},
                         "constant_predictions": report["constant_predictions"]})
            if report.get("resumed_after_epoch") is not None:
                runs[-1]["resumed_after_epoch"] = report["resumed_after_epoch"]
            if progress:
                progress.add(row.name, runs[-1])
            if fit_dir:
                shutil.rmtree(fit_dir, ignore_errors=True)  # its line is written
            logging.info("%s, repeat %d fold %d%s: test %s, %.1f s", row.name, fold.repeat, fold.fold,
                         "" if seed is None else f" seed {seed}", ", ".join(
                             f"{key} {report[key]:.3f}" for key in SCORES[:3] if report.get(key) is not None),
                         runs[-1]["seconds"])
    return runs


def summarise(row: Row, runs: list[dict], machine: str) -> dict:
    """One table row: mean and std of every score over the runs, and the runs themselves."""
    summary = {"model": row.name, "key": row.key, "runs": len(runs),
               "seconds": float(np.mean([r["seconds"] for r in runs])), "machine": machine,
               "date": datetime.date.today().isoformat()}
    for key in SCORES:
        values = [r[key] for r in runs if r.get(key) is not None]
        summary[key] = float(np.mean(values)) if values else None
        summary[f"{key}_std"] = float(np.std(values)) if len(values) > 1 else None
    summary["constant_predictions"] = sorted({t for r in runs for t in r["constant_predictions"]})
    summary["per_run"] = runs
    return summary


def is_4q(tags: list[str]) -> bool:
    """Whether the tags are the 4Q quadrants, the task of the published scores."""
    return bool(quadrant_scores(list(tags), np.ones((1, len(tags)))))


def references(setup: dict) -> list[dict]:
    """The published 4Q F1 scores, on the literature protocol's table of the 4Q quadrant tags only."""
    return [dict(r) for r in LITERATURE_4Q] if setup["protocol"] == "literature" and is_4q(setup["tags"]) else []


def markdown(rows: list[dict], reference_rows: list[dict], meta: str) -> str:
    def cell(row, key):
        if row.get(key) is None:
            return "n/a"
        spread = row.get(f"{key}_std")
        return f"{row[key]:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")

    columns = [(title, key) for title, key in COLUMNS if any(row.get(key) is not None for row in rows)]
    lines = [meta, "", "| model | " + " | ".join(title for title, _ in columns) + " | s per fit | constant tags |",
             "|---" * (len(columns) + 3) + "|"]
    for row in rows:
        constant = ", ".join(row.get("constant_predictions", [])) or "-"
        seconds = "n/a" if row.get("seconds") is None else f"{row['seconds']:.1f}"
        lines.append(f"| {row['model']} | " + " | ".join(cell(row, key) for _, key in columns)
                     + f" | {seconds} | {constant} |")
    for row in reference_rows:
        lines.append(f"| {row['model']} | " + " | ".join(f"{row[key]:.3f} (reported)" if key in row else "-"
                                                         for _, key in columns) + " | - | - |")
    return "\n".join(lines)


def command(setup: dict, models: list[str] | None = None, overrides: list[str] | None = None) -> str:
    """The `python -m bench.emotion` call that measures the table of `setup` (or its `models` rows)."""
    words = ["python -m bench.emotion", f"--data {setup['data']}"]
    if setup["labels"]:
        words.append(f"--labels {setup['labels']}")
    if setup["protocol"] != "artist":
        words.append(f"--protocol {setup['protocol']}")
    if setup["folds"] > 1 or setup["protocol"] != "artist":
        words.append(f"--folds {setup['folds']}")
    if setup["repeats"] > 1 or setup["protocol"] != "artist":
        words.append(f"--repeats {setup['repeats']}")
    if setup["split_seed"]:
        words.append(f"--split-seed {setup['split_seed']}")
    words.append("--seeds " + " ".join(map(str, setup["seeds"])))
    if setup["epochs"] != EMOTION_TRAINING.epochs:
        words.append(f"--epochs {setup['epochs']}")
    if models:
        words.append(models_flag(models))
    if overrides:
        words.append("--set " + " ".join(overrides))
    return " ".join(words)


def models_flag(models: list[str] | None) -> str:
    return "--models " + " ".join(f"'{m}'" if " " in m else m for m in models or ["all"])


def part_flags(part: dict) -> str:
    """The `--models` (and `--set`) of one part of a table."""
    return models_flag(part["models"]) + (" --set " + " ".join(part["set"]) if part.get("set") else "")


def describe(setup: dict, parts: list[dict]) -> str:
    """The line above the table: who measured what, how, on which machine(s)."""
    folds, repeats, seeds = setup["folds"], setup["repeats"], setup["seeds"]
    seeds_of = "fold seed" + (f"s {setup['split_seed']}..{setup['split_seed'] + repeats - 1}" if repeats > 1
                              else f" {setup['split_seed']}")
    if setup["protocol"] == "literature":
        by = f"stratified on the {setup['strata']}" if setup["strata"] else "unstratified (several tags per clip)"
        both_sides = "; an artist's clips can be on both sides" if setup["grouping"] == "artist" else ""
        evaluation = (f"{folds}-fold cross-validation by clip, {by}, {repeats} repeat(s) ({seeds_of}; ~"
                      f"{setup['test_clips']} test clips per fold{both_sides}"
                      f"{', as in the published 4Q scores' if references(setup) else ''})")
    elif folds > 1:
        evaluation = (f"{folds}-fold cross-validation by {setup['grouping']}"
                      f"{f', {repeats} repeats' if repeats > 1 else ''} ({seeds_of}; ~{setup['test_clips']} test "
                      f"clips per fold; validation clips for early stopping from the training {setup['grouping']}s)")
    else:
        evaluation = (f"test = {setup['test_clips']} clips of a split by {setup['grouping']}"
                      f"{f', {repeats} repeats' if repeats > 1 else ''} ({seeds_of.replace('fold', 'split')})")
    splits = folds * repeats if folds > 1 else repeats
    dates = sorted({p["date"] for p in parts})
    machines = ", ".join(sorted({p["machine"] for p in parts}))
    if len(parts) == 1:
        who = f"Measured {dates[0]} by `{command(setup, parts[0]['models'], parts[0].get('set'))}` on {machines}"
    elif " + " in setup["data"]:  # parts on several data: each part's own command
        who = (f"Measured {' to '.join([dates[0], dates[-1]] if len(dates) > 1 else dates)} in {len(parts)} parts ("
               + "; ".join(f"`{p['command']}`" for p in parts) + f") on {machines}, merged with "
               "`python -m bench.emotion --merge` (the same splits: checked clip by clip)")
    else:
        who = (f"Measured {' to '.join([dates[0], dates[-1]] if len(dates) > 1 else dates)} by `{command(setup)}` "
               f"run in {len(parts)} parts (" + "; ".join(f"`{part_flags(p)}`" for p in parts)
               + f") on {machines}, merged with `python -m bench.emotion --merge`")
    return (f"{who}: {setup['clips']} clips, {len(setup['tags'])} tags, {evaluation}; ± = std over "
            f"{splits} split(s) x training seeds {seeds} (baselines: over the splits; they have no training seed). "
            "'s per fit': mean wall seconds of one fit on that machine, data loading and scoring included. "
            "'constant tags': tags predicted (nearly) the same for every clip (std of probabilities < 0.02)."
            + (" Reference rows: F1 as published, typed from the papers, on their data and protocol (Panda et al.: "
               "all 900 clips of the 4Q dataset; here the 765 shared ones), not measured here."
               if references(setup) else ""))


def results_path(setup: dict, models: list[str] | None = None) -> Path:
    """Where a table goes by default: `bench/results/emotion-<data>[-<protocol, folds, repeats>].json`;
    a run of some rows (`models`) goes to `bench/results/parts/`, named after them too, so that
    runs in parallel never overwrite each other or the table."""
    name = f"emotion-{Path(setup['data']).name or setup['data']}"
    if setup["protocol"] == "literature":
        name += f"-literature-{setup['folds']}fold-x{setup['repeats']}"
    else:
        name += (f"-{setup['folds']}fold" if setup["folds"] > 1 else "") + (
            f"-x{setup['repeats']}" if setup["repeats"] > 1 else "")
    if not models:
        return RESULTS / f"{name}.json"
    return RESULTS / "parts" / f"{name}-{slug(' '.join(models))}.json"


def write(setup: dict, parts: list[dict], rows: list[dict], out: Path, readme: Path | None) -> None:
    """Publish the table: JSON (setup, parts, rows with their runs, reference rows), Markdown, the document block."""
    # Baselines of several data sit in the order of their data's names, whatever the parts' order.
    rows = table_order(rows, [row.name for row in table_rows(setup["vectors"])])
    meta, reference_rows = describe(setup, parts), references(setup)
    publish(out.stem, {"meta": meta, "setup": setup, "parts": parts, "rows": rows, "references": reference_rows},
            markdown(rows, reference_rows, meta), out, readme)


# Parts may differ in these when their splits hold the same clips (the same clips as features of
# another recipe, say the shared 4Q features and a musicnn store extracted from the same MP3s).
DATA_KEYS = ("data", "labels", "vectors")


def split_digest(setup: dict) -> str:
    """A digest of the clip ids of every split a table's `setup` scores on (derived again from the data)."""
    training = dataclasses.replace(EMOTION_TRAINING, split_seed=setup["split_seed"])
    emotion = load_emotion_data(setup["data"], setup["labels"])
    return splits_digest(evaluation_splits(emotion, training, setup["protocol"], setup["folds"], setup["repeats"]))


def splits_digest(splits: list[Fold]) -> str:
    """A digest of the clip ids of `splits`: equal digests, the same clips on the same sides."""
    import hashlib

    return hashlib.sha1(json.dumps([[f.repeat, f.fold, sorted(f.train), sorted(f.validation), sorted(f.test)]
                                    for f in splits]).encode()).hexdigest()


def data_name(data: str) -> str:
    """`--data` as a table names it: a path to a named dataset (`$KERAS_MUSIC_DATASETS/mer4q`) by its
    alias (`mer4q`), so parts run with either spelling count as the same data."""
    for alias, path in dataset_aliases().items():
        if data == alias or (Path(data).exists() and path.exists() and Path(data).resolve() == path.resolve()):
            return alias
    return data


def merge(paths: list[Path]) -> tuple[dict, list[dict], list[dict]]:
    """`(setup, parts, rows)` of one table from result files that ran different rows of it.

    Parts of other data (`DATA_KEYS`) join only when their splits hold exactly the same clips
    (checked by deriving them again); their baseline rows are named after their data."""
    payloads = read_parts(paths, "bench.emotion")
    check_one_table(payloads, "data, protocol, folds, repeats, seeds and epochs", DATA_KEYS,
                    lambda setup, first: split_digest(setup) == split_digest(first))
    datas = list(dict.fromkeys(data_name(payload["setup"]["data"]) for _, payload in payloads))
    short = {d: Path(d).name or d for d in datas}
    if len(set(short.values())) < len(datas):
        short = {d: d for d in datas}

    def label(payload: dict, row: dict) -> str | None:  # a baseline of each data: say which
        return short[data_name(payload["setup"]["data"])] if len(datas) > 1 and row["key"] in BASELINES else None

    rows = join_rows(payloads, label)
    setup = dict(payloads[0][1]["setup"])
    if len(datas) > 1:
        setup["data"] = " + ".join(datas)
    return setup, [part for _, payload in payloads for part in payload["parts"]], rows


def machine() -> str:
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{platform.machine()} ({os.cpu_count()} CPUs, {f'{gpus} GPU' if gpus else 'CPU only'})"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mer4q", help="What `train --task emotion --data` takes. Default: mer4q.")
    parser.add_argument("--labels", default=None,
                        help="With a feature store as --data: its labels CSV, as `train --labels` (artist groups "
                             "from a metadata.csv beside it). Default: STORE/labels.csv.")
    parser.add_argument("--protocol", choices=sorted(PROTOCOL_DEFAULTS), default="artist",
                        help="artist: split / folds by artist; literature: stratified folds by clip, repeated. "
                             "Default: artist.")
    parser.add_argument("--folds", type=int, default=None,
                        help="K > 1: K-fold cross-validation. Default: 1 (one split) for artist, 10 for literature.")
    parser.add_argument("--repeats", type=int, default=None,
                        help="Splits drawn again with fold seeds split-seed + 1, ... Default: 1 for artist, "
                             "2 for literature.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Training seeds. Default: 0 1.")
    parser.add_argument("--split-seed", type=int, default=0, help="Seeds the split or the folds. Default: 0.")
    parser.add_argument("--epochs", type=int, default=EMOTION_TRAINING.epochs,
                        help=f"Maximum epochs per model. Default: {EMOTION_TRAINING.epochs}.")
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME",
                        help="Run only these rows: " + ", ".join(repr(m) for m in model_choices()) + ". Default: all.")
    parser.add_argument("--set", nargs="+", default=None, metavar="FIELD=VALUE",
                        help="Run the tagger rows with these config fields changed (e.g. spec_augment=0.1), "
                             "named with them, to judge a change on the same folds; their output goes to "
                             "bench/results/parts/ and merges with the table (--merge). Default: none.")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                        help="Build one table from results of runs that split its rows (takes only --out, --readme).")
    parser.add_argument("--out", type=Path, default=None,
                        help="Default: bench/results/emotion-<data>[-<protocol, folds, repeats>].json; with "
                             "--models, bench/results/parts/<that name>-<models>.json.")
    parser.add_argument("--readme", type=Path, default=None,
                        help="Markdown document (docs/benchmarks.md; README.md for the headline table) whose "
                             "block named after the results file gets the table.")
    args = parser.parse_args(argv)
    if args.merge:
        given = [f"--{name.replace('_', '-')}" for name in ("data", "labels", "protocol", "folds", "repeats", "seeds",
                                                            "split_seed", "epochs", "models", "set")
                 if getattr(args, name) != parser.get_default(name)]
        if given:
            parser.error(f"--merge takes the table's settings from its files, not from {', '.join(given)}.")
        return args
    for name, value in PROTOCOL_DEFAULTS[args.protocol].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.protocol == "literature" and args.folds < 2:
        parser.error(f"--protocol literature is K-fold cross-validation: --folds must be at least 2, got {args.folds}.")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}.")
    unknown = sorted(set(args.models or []) - set(model_choices()))
    if unknown:
        parser.error(f"--models {', '.join(map(repr, unknown))}: no such row; choose from "
                     f"{', '.join(map(repr, model_choices()))}.")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.merge:
            setup, parts, rows = merge(args.merge)
            if " + " in setup["data"] and not args.out:
                raise ValueError("--merge of parts on several data: give --out (no default name fits them all).")
            out = args.out or results_path(setup)
            if args.readme:
                check_block(args.readme, out.stem)
            write(setup, parts, rows, out, args.readme)
            return 0
        setup = {"data": args.data, "labels": args.labels, "protocol": args.protocol, "folds": args.folds,
                 "repeats": args.repeats, "split_seed": args.split_seed, "seeds": args.seeds, "epochs": args.epochs}
        overrides = parse_overrides(args.set)
        out = args.out or results_path(setup, (args.models or []) + (args.set or []) or None)
        if args.readme:  # before hours of training, not after
            check_block(args.readme, out.stem)
        training = dataclasses.replace(EMOTION_TRAINING, split_seed=args.split_seed, epochs=args.epochs,
                                       min_epochs=min(EMOTION_TRAINING.min_epochs, args.epochs - 1))
        emotion = load_emotion_data(args.data, args.labels)
        vector_kind = "aggregated features" if emotion.vectors is not None else "pooled mean+std"
        rows = select(table_rows(vector_kind, emotion.source is not None, emotion.recipe), args.models, args.data)
        rows = with_overrides(rows, overrides)
        splits = evaluation_splits(emotion, training, args.protocol, args.folds, args.repeats)
        ids = emotion.tags.clip_ids
        setup.update({"clips": len(ids), "tags": emotion.tags.tags, "vectors": vector_kind,
                      "grouping": "artist" if any(g != c for c, g in emotion.groups.items()) else "clip",
                      "strata": (None if tag_classes(emotion) is None
                                 else "quadrant" if is_4q(emotion.tags.tags) else "tag"),
                      "test_clips": round(float(np.mean([len(fold.test) for fold in splits])))})
        # Before any embedding or fit: a progress file of other settings stops here.
        progress = ProgressLog(progress_path(out), {**setup, "models": args.models, "set": args.set,
                                                    "splits": splits_digest(splits)}, "bench.emotion")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    vectors = baseline_vectors(rows, emotion)
    where = machine()
    if progress.done:
        total = sum(len(splits) * (len(args.seeds) if row.config is not None else 1) for row in rows)
        logging.info("resuming: %d of %d runs already finished (%s)", len(progress.done), total, progress.path)
    results = [summarise(row, run_row(row, splits, emotion, vectors, args, training, progress), where) for row in rows]
    part = {"models": args.models, "set": args.set, "date": datetime.date.today().isoformat(), "machine": where,
            "command": command(setup, args.models, args.set)}
    write(setup, [part], results, out, args.readme)
    progress.remove()  # only now is the table written
    return 0


if __name__ == "__main__":
    sys.exit(main())
