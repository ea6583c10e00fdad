"""Build the emotion model that ships with the package (what `predict` uses without `--model`).

    python -m keras_music.default_model --audio ../shared/datasets/mer4q/audio \\
        --labels ../shared/datasets/mer4q/labels.csv --cv bench/results/emotion-4q-5fold.json \\
        --robustness bench/results/robustness.json

It runs the documented flow on the 4Q clips: `extract --recipe musicnn` into a work store,
`train --model musicnn_head` with `WEIGHTS` (the frozen MSD and MTT musicnn embeddings side by
side and our head; the seeded artist split, early stopping on validation windows), `export`,
and writes what ships to
`keras_music/pretrained/emotion_4q/`, replacing what was there only once everything
succeeded: the model card (`MODEL_CARD.md`, scores read from the run's report and, with
`--cv`, from a `bench.emotion` table) and `run/`, the trained run without its frozen front
end (config.json, report.json, the head's weights `head.weights.h5`, 122 kB, and the
export's validation thresholds). The audio never enters the package; musicnn's weights ship
beside it on their own (`pretrained/musicnn/`).

`keras_music.tagging.presets.installed("emotion_4q")` makes the whole model on first use,
offline: the family built from `run/config.json` (which loads musicnn's weights,
`models.musicnn.weights_path`), the head's weights loaded, exported with the shipped
thresholds into `$KERAS_MUSIC_CACHE/models/`; that SavedModel is what `predict` and
`Tagger.from_preset("emotion_4q")` use.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from keras_music.config import DEFAULT_EMOTION_MODEL as DEFAULT_MODEL_DIR
from keras_music.tagging.presets import HEAD_WEIGHTS, rebuild
from keras_music.tf_logging import import_tensorflow

logger = logging.getLogger("keras_music.default_model")

MODEL_NAME = "emotion_4q"
# Both musicnn networks: on the 4Q artist folds (bench.emotion, 5 folds x 2 seeds) their
# concatenated embeddings scored above the MSD embedding alone under the same head.
WEIGHTS = "MSD_musicnn+MTT_musicnn"
# What else the packaged model changes from musicnn_head's defaults (issue 44, bench.robustness):
# each window brought to one loudness before musicnn, so a quieter or louder recording gets the same
# tags, and the head also trained on a spectrally augmented copy of every training window.
PACKAGED_FIELDS = {"weights": WEIGHTS, "level_normalization": 1, "spectral_augment": 1}  # as `--set` names them


def packaged_config():
    """The `MusicnnHeadConfig` of the packaged model."""
    from keras_music.models.musicnn_head import MusicnnHeadConfig

    return MusicnnHeadConfig(**PACKAGED_FIELDS)

CARD = """# {name}: music emotion (4Q quadrants) from audio

The model `python -m keras_music.predict FILE` uses when no `--model` is given. It ships as
its trained run without musicnn's weights (`run/`: config, report, the head's weights,
thresholds); first use builds the TF Serving SavedModel from it and musicnn's weights,
offline, into `$KERAS_MUSIC_CACHE/models/` (`keras_music.tagging.presets.installed`).
`serve_audio` takes encoded WAV bytes; `predict` decodes any WAV, FLAC, OGG, Opus or MP3
file into them.

## What it predicts

One probability per quadrant of Russell's arousal/valence plane (Panda et al. 2018):
Q1 high arousal, positive valence (e.g. happy, excited); Q2 high arousal, negative valence
(angry, tense); Q3 low arousal, negative valence (sad, depressed); Q4 low arousal, positive
valence (calm, relaxed); `quadrant` names the most probable one (`Q1 happy/excited`,
`Q2 angry/tense`, `Q3 sad/depressed`, `Q4 calm/relaxed`). Arousal and valence are the shares of
the four probabilities on Q1 + Q2 and on Q1 + Q4, in [0, 1]. The `tags` of a prediction
are the quadrants above the per-quadrant thresholds ({thresholds_source}).

## Whose outputs these are

- **Ours** (trained by keras_music on the 4Q clips below): the four quadrant probabilities, their
  thresholds and `tags`, `quadrant`, arousal, valence and the 64-value embedding.
- **musicnn's** (trained by its authors, Pons and Serra 2019; keras_music only computes them in
  the same forward pass): `msd_probabilities`, the 50 last.fm tags of the Million Song Dataset
  (genres, moods such as happy, sad, mellow, chill; eras; vocals), and `mtt_probabilities`, the 50
  MagnaTagATune tags (instruments, vocals, tempo, loudness, some genres). They have no thresholds:
  `predict` lists the `--top-k` most probable names per group (genre, mood, instrument, vocals,
  era, sound; synonyms merged), and JSON records keep every probability. keras_music did not
  train or evaluate them; musicnn's paper reports their quality on MSD and MTT. They are computed
  in the same pass, so on the level-normalised input when the model normalises it (below): on the
  three reference recordings of `tests/models/test_musicnn.py` that moved a file's tag
  probabilities by at most 0.03.

## Model

`musicnn_head` of keras_music {keras_music_version}: musicnn (Pons and Serra 2019, ISC
licence, weights `{weights}` trained by its authors; ported to Keras 3 and checked against
musicnn 0.1.0) frozen up to the 200-unit penultimate layer ({frozen}), under a head trained
here ({head}). Input contract: audio mixed to mono and resampled to 16 kHz (in the graph for
WAV sent at another rate; `predict` resamples with soxr), musicnn's log-mel (96 bands,
512-sample frames every 256), windows of {window} frames (3 s) every {hop} frames, a
file's logits = the mean of its windows' logits. Embedding: `embeddings`, {width} values
per file (the head's hidden layer). {robust_training}

## Training data and licence

The 765 shared clips of the 4Q audio emotion dataset (R. Panda, R. Malheiro, R. P. Paiva,
"Novel Audio Features for Music Emotion Recognition", IEEE Trans. Affective Computing,
2018): 30 s AllMusic previews of commercial recordings, one quadrant label each (192/191/
191/191), {train} clips for training, {validation} for early stopping and thresholds and
{test} held out, split by artist (seed {split_seed}, training seed {seed}). The clips are
third-party, copyrighted material for **non-commercial research only**; this model was
trained on them and is therefore offered for **research use only**. musicnn's weights
carry its ISC licence (`../musicnn/LICENSE`).

## Measured scores

Held-out artists of this model's own split ({test} clips): accuracy {accuracy}, macro
ROC-AUC {macro_roc_auc}, arousal ROC-AUC {arousal}, valence ROC-AUC {valence}, macro F1 {macro_f1}.

{cv}

Scoring: `emotion_4q` (the default) scores a 3 s window every 6 s, 6 windows per 30 s clip
instead of the 20 of every 1.5 s as trained; `emotion_4q_dense` scores every 1.5 s.
`predict` runs in bfloat16 on CPUs that compute it natively (`--precision`). What
sparser scoring and bfloat16 cost is measured by `python -m bench.tagger_speed`
(docs/benchmarks.md).

## Robustness and calibration

{robustness}

## Limits, in plain words

- **What the numbers are.** Each quadrant probability is its own sigmoid: the four need not add up
  to 1, and a probability is a frequency only as far as the calibration table above shows.
  Arousal and valence are derived from the four (shares of Q1 + Q2 and of Q1 + Q4), not predicted
  on their own, and are in [0, 1] with 0.5 as "undecided", not a listener's rating scale.
- **What it learned from.** 765 previews of 30 s from AllMusic's catalogue, mostly Western
  popular music (rock, pop, metal, electronic, folk, jazz, soul), each labelled with one quadrant.
  Music far from that (classical, non-Western music, soundtracks, speech, field recordings) was
  not measured here. The model before this one was checked outside this repository on 6 s
  excerpts of ten other genres: listeners' arousal was followed well (Spearman 0.76), valence
  much less (0.43), and quadrant accuracy was 0.50 (issue 44).
- **Where it is weaker.** Valence (positive or negative mood) is the harder half: audio alone
  separates it less well than arousal, and it depends on the genre mix the model was trained on.
  Short excerpts (a few seconds) are scored from fewer windows and are less reliable (the
  "excerpt" row above), and so is audio through a phone line (the "phone" row).

Built {date} by `python -m keras_music.default_model`.
"""


def bench_row(config) -> str:
    """The name `bench.emotion` gives the row of `config` (`musicnn_head (default)`, or with the
    fields `--set` changed: `musicnn_head (default, weights="MSD_musicnn+MTT_musicnn")`)."""
    from keras_music.config import field_changes
    from keras_music.models.registry import family_for_config

    changed = field_changes({f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                             if getattr(config, f.name) != f.default})
    return f"{family_for_config(config).name} (default{', ' + changed if changed else ''})"


def cv_summary(path: Path, model: str | None = None) -> str:
    """The row named `model` (default: the packaged config's, `bench_row`) of a `bench.emotion`
    table (mean +- std over folds x seeds), one sentence."""
    model = model or bench_row(packaged_config())
    try:
        table = json.loads(path.read_text())
        rows = {row["model"]: row for row in table["rows"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--cv {path}: not a bench.emotion result ({error}).") from None
    if model not in rows:
        raise ValueError(f"--cv {path}: no row {model!r} (rows: {sorted(rows)}).")
    row, setup = rows[model], table.get("setup", {})

    def cell(key):
        return "n/a" if row.get(key) is None else f"{row[key]:.3f} ± {row.get(key + '_std') or 0:.3f}"

    return (f"Cross-validation (`{model}`, {setup.get('folds')}-fold by artist, seeds {setup.get('seeds')}, "
            f"{row['runs']} runs, from `{path.name}`): accuracy {cell('accuracy')}, macro F1 {cell('macro_f1')}, "
            f"macro ROC-AUC {cell('macro_roc_auc')}, arousal {cell('arousal_roc_auc')}, "
            f"valence {cell('valence_roc_auc')}.")


def robust_training_text(config) -> str:
    """The card's sentence on what the packaged config does for robustness."""
    parts = []
    if config.level_normalization:
        parts.append("Before musicnn, each window's mel power is brought "
                     + ("to one level" if config.level_normalization == 1 else
                        f"{config.level_normalization:g} of the way to one level")
                     + " (`level_normalization`), so a quieter or louder recording gets the same scores.")
    if config.spectral_augment:
        parts.append(f"The head also learned from {config.spectral_augment} spectrally augmented "
                     f"cop{'y' if config.spectral_augment == 1 else 'ies'} of every training window (random gain, "
                     "EQ tilt, low and high cuts, noise floor: `spectral_augment`).")
    return " ".join(parts)


def robustness_summary(path: Path, config) -> str:
    """The card's robustness section from a `bench.robustness` result of the packaged config:
    accuracy and arousal/valence ROC-AUC per condition, and the reliability table."""
    from keras_music.reports import reliability_markdown

    try:
        result = json.loads(path.read_text())
        rows = result["rows"]
        changes = result.get("changes") or {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--robustness {path}: not a bench.robustness result ({error}).") from None
    plain = type(config)(weights=config.weights)  # bench.robustness runs both networks and --set the rest
    wanted = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
              if getattr(config, f.name) != getattr(plain, f.name)}
    if changes != wanted:
        raise ValueError(f"--robustness {path}: a run of musicnn_head with {changes or 'no changes'}, not the "
                         f"packaged config's {wanted}.")

    def cell(row, key):
        score = row["scores"].get(key)
        return f"{score['mean']:.3f} ± {score['std']:.3f}" if score else "n/a"

    lines = [f"Measured by `python -m bench.robustness` ({result['meta']}; a head trained per fold and seed as "
             "this one was, scoring each held-out clip as `predict` does). Every row but the first decodes the "
             "clips' MP3s and changes one thing before the features are computed:", "",
             "| condition | what changes | accuracy | arousal ROC-AUC | valence ROC-AUC |", "|---|---|---|---|---|"]
    lines += [f"| {row['name']} | {row['what']} | {cell(row, 'accuracy')} | {cell(row, 'arousal_roc_auc')} | "
              f"{cell(row, 'valence_roc_auc')} |" for row in rows]
    table = result.get("reliability")
    if table:
        lines += ["", f"Calibration of the whole-clip quadrant probabilities (every held-out clip x quadrant of those "
                      f"runs): expected calibration error {table['ece']:.3f}, Brier score {table['brier']:.3f}. "
                      "Reliability (how often a quadrant is the clip's, positive, when the model gives it a "
                      "probability in the bin):", "", reliability_markdown(table)]
    return "\n".join(lines)


def package(run: Path, export: Path, out: Path) -> None:
    """Write `out/run/`, what ships of a trained run whose family has a frozen front end: its
    config and report, the weights of the layers after the front end, and the thresholds its
    export tuned on the validation clips."""
    from keras_music.config import save_json
    from keras_music.models.registry import family_of_run
    from keras_music.training.common import load_run
    from keras_music.training.frozen import split_at

    model, config = load_run(run)
    family = family_of_run(config)
    if not family.frozen_output:
        raise ValueError(f"{family.name} has no frozen front end; only such a model ships as its head.")
    (out / "run").mkdir(parents=True)
    split_at(model, family.frozen_output)[1].save_weights(out / "run" / HEAD_WEIGHTS)
    for name in ("config.json", "report.json"):
        shutil.copyfile(run / name, out / "run" / name)
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    save_json(out / "run" / "thresholds.json", {"thresholds": [metadata["thresholds"][t] for t in config["tags"]],
                                                "source": metadata["thresholds_source"]})


def build(audio: Path, labels: Path, out: Path, work: Path, seed: int = 0, cv: Path | None = None,
          store: Path | None = None, robustness: Path | None = None) -> Path:
    """Extract, train, export, package the run and write the model card; returns the
    packaged folder, checked by building the model from it as first use will."""
    from keras_music.config import EMOTION_TRAINING, RECIPES
    from keras_music.data.extraction import extract_folder
    from keras_music.export import export_run
    from keras_music.models.musicnn_head import FAMILY
    from keras_music.training import train_emotion

    store = store or work / "store"
    summary = extract_folder(audio, store, RECIPES["musicnn"])
    print(f"store: {store} ({summary})")
    config = packaged_config()
    training = dataclasses.replace(EMOTION_TRAINING, seed=seed)
    report = train_emotion(str(store), work / "run", config, FAMILY.sequence_config(), training, labels=str(labels))
    staging = work / "export"
    shutil.rmtree(staging, ignore_errors=True)
    version = export_run(work / "run", MODEL_NAME, staging, version=1)
    metadata = json.loads((version / "assets" / "metadata.json").read_text())
    run = json.loads((work / "run" / "config.json").read_text())

    def score(key):
        return "n/a" if report.get(key) is None else f"{report[key]:.3f}"

    card = CARD.format(
        name=MODEL_NAME, thresholds_source=metadata["thresholds_source"],
        keras_music_version=metadata["keras_music_version"], weights=config.weights,
        frozen="two networks side by side, their penultimate layers concatenated" if "+" in config.weights
        else "one network",
        head=f"dropout {config.dropout}, dense {config.head_units} + ReLU, 4 logits; Adam {config.learning_rate}",
        window=metadata["window_frames"], hop=metadata["window_hop_frames"], width=metadata["embedding_width"],
        train=len(run["splits"]["train"]), validation=len(run["splits"]["validation"]),
        test=len(run["splits"]["test"]), split_seed=training.split_seed, seed=seed,
        accuracy=score("accuracy"), macro_roc_auc=score("macro_roc_auc"), arousal=score("arousal_roc_auc"),
        valence=score("valence_roc_auc"), macro_f1=score("macro_f1"),
        cv=cv_summary(cv, bench_row(config)) if cv else "No cross-validation table was given (`--cv`).",
        robust_training=robust_training_text(config),
        robustness=robustness_summary(robustness, config) if robustness else
        "No robustness table was given (`--robustness`).",
        date=datetime.date.today().isoformat())
    shipped = work / "package"
    shutil.rmtree(shipped, ignore_errors=True)
    package(work / "run", version, shipped)
    (shipped / "MODEL_CARD.md").write_text(card)
    make_portable(shipped, [store, labels, audio])
    check_rebuild(shipped, work / "run")
    install(shipped, out)
    return out


def make_portable(shipped: Path, paths) -> None:
    """Rewrite the model card and `run/`'s JSON files of `shipped` with each local path of `paths`
    (as given, absolute or resolved: training records labels resolved) cut to the last two parts
    of its resolved form (`/work/stores/mer4q-musicnn` -> `stores/mer4q-musicnn`): what ships
    names its data, not the folders of the machine it was built on. A data or labels path of
    `run/config.json` still absolute afterwards is an error."""
    replacements = {}
    for path in map(Path, paths):
        kept = "/".join(path.resolve().parts[-2:])
        for local in (str(path), str(path.absolute()), str(path.resolve())):
            replacements[local] = kept
    ordered = sorted(replacements.items(), key=lambda pair: -len(pair[0]))  # a path inside another stays whole
    for name in ("MODEL_CARD.md", "run/config.json", "run/report.json", "run/thresholds.json"):
        text = (shipped / name).read_text()
        for local, kept in ordered:
            text = text.replace(json.dumps(local)[1:-1], json.dumps(kept)[1:-1]) if name.endswith(".json") \
                else text.replace(local, kept)
        (shipped / name).write_text(text)
    config = json.loads((shipped / "run" / "config.json").read_text())
    left = [f"{key} {config[key]!r}" for key in ("data", "labels")
            if config.get(key) and Path(config[key]).is_absolute()]
    if left:
        raise ValueError(f"{shipped / 'run' / 'config.json'} would ship this machine's folders: {', '.join(left)}.")


def check_rebuild(shipped: Path, run: Path) -> None:
    """The model first use builds from `shipped` gives the trained model's logits."""
    import numpy as np

    from keras_music.training.common import load_run

    rebuilt, config = rebuild(shipped / "run")
    trained, _ = load_run(run)
    mel = np.random.default_rng(0).normal(0, 1, (2, 187, config["features"]["mel"])).astype("float32")
    inputs = {"mel": mel, "length": np.array([187, 120], "int32")}
    gap = float(np.abs(rebuilt.predict(inputs, verbose=0) - trained.predict(inputs, verbose=0)).max())
    if gap > 1e-5:
        raise RuntimeError(f"the model rebuilt from {shipped} differs from the trained one by {gap} in logits.")


def install(built: Path, out: Path) -> None:
    """Put `built` at `out`: copied beside it first, then swapped in by renames, so `out` is
    always a whole model (the old one is restored if the swap fails)."""
    new, old = out.with_name(out.name + ".new"), out.with_name(out.name + ".old")
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(built, new)
    if out.exists():
        out.rename(old)
    try:
        new.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_music.default_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, required=True, help="The 4Q clips (../shared/datasets/mer4q/audio).")
    parser.add_argument("--labels", type=Path, required=True,
                        help="Their labels CSV, with metadata.csv (artists) beside it.")
    parser.add_argument("--cv", type=Path, default=None,
                        help="A bench.emotion JSON with the packaged config's musicnn_head row (its scores go on the card).")
    parser.add_argument("--robustness", type=Path, default=None,
                        help="A bench.robustness JSON of the packaged config (its table and calibration go on the card).")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help=f"Default: {DEFAULT_MODEL_DIR}")
    parser.add_argument("--work", type=Path, default=None, help="Work folder (store, run). Default: a temporary one.")
    parser.add_argument("--store", type=Path, default=None,
                        help="Feature store of the musicnn recipe to extract into or reuse (extraction resumes; a "
                             "store reused by path also reuses the cached musicnn windows). Default: in --work.")
    parser.add_argument("--seed", type=int, default=0, help="Training seed. Default: 0.")
    args = parser.parse_args(argv)
    import_tensorflow()  # after parsing: --help and usage errors answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for path in (args.audio, args.labels, *[p for p in (args.cv, args.robustness) if p]):
        if not path.exists():
            print(f"error: {path} does not exist.", file=sys.stderr)
            return 1
    if args.cv:
        try:
            cv_summary(args.cv)  # before minutes of work, not after
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.robustness:
        try:
            robustness_summary(args.robustness, packaged_config())
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        shipped = build(args.audio, args.labels, args.out, args.work or Path(tmp), args.seed, args.cv, args.store,
                        args.robustness)
    print(f"default model: {shipped} (model card: {shipped / 'MODEL_CARD.md'}); first use builds the "
          "SavedModel from it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
