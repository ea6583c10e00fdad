"""Build the emotion model that ships with the package (what `predict` uses without `--model`).

    python -m keras_music.default_model --audio ../shared/datasets/mer4q/audio \\
        --labels ../shared/datasets/mer4q/labels.csv --cv bench/results/emotion-4q-5fold.json

It runs the documented flow on the 4Q clips: `extract --recipe musicnn` into a work store,
`train --model musicnn_head` (musicnn's frozen MSD embedding and our head; the seeded
artist split, early stopping on validation windows), `export`, and writes the export and
its model card (`MODEL_CARD.md`, scores read from the run's report and, with `--cv`, from
a `bench.emotion` table) to `keras_music/pretrained/emotion_4q/`, replacing what was there
only once everything succeeded. The audio never enters the package, only the trained model.
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

MODEL_NAME = "emotion_4q"

CARD = """# {name}: music emotion (4Q quadrants) from audio

The model `python -m keras_music.predict FILE` uses when no `--model` is given. A TF Serving
SavedModel (`{version}/`): `serve_audio` takes encoded WAV bytes; `predict` decodes any
WAV, FLAC, OGG, Opus or MP3 file into them.

## What it predicts

One probability per quadrant of Russell's arousal/valence plane (Panda et al. 2018):
Q1 high arousal, positive valence (e.g. happy, excited); Q2 high arousal, negative valence
(angry, tense); Q3 low arousal, negative valence (sad, depressed); Q4 low arousal, positive
valence (calm, relaxed). Arousal = Q1 + Q2, valence = Q1 + Q4. The `tags` of a prediction
are the quadrants above the per-quadrant thresholds ({thresholds_source}).

## Model

`musicnn_head` of keras_music {keras_music_version}: musicnn (Pons and Serra 2019, ISC
licence, weights `{weights}` trained by its authors; ported to Keras 3 and checked against
musicnn 0.1.0) frozen up to its 200-unit penultimate layer, under a head trained here
({head}). Input contract: audio mixed to mono and resampled to 16 kHz (in the graph for
WAV sent at another rate; `predict` resamples with soxr), musicnn's log-mel (96 bands,
512-sample frames every 256), windows of {window} frames (3 s) every {hop} frames, a
file's logits = the mean of its windows' logits. Embedding: `embeddings`, {width} values
per file (the head's hidden layer).

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

Expect lower scores on music unlike the training previews (mostly Western popular music
of AllMusic's catalogue), on very short excerpts, and for valence, which audio alone
separates less well than arousal.

Built {date} by `python -m keras_music.default_model`.
"""


def cv_summary(path: Path, family: str = "musicnn_head") -> str:
    """The family's row of a `bench.emotion` table (mean +- std over folds x seeds), one sentence."""
    try:
        table = json.loads(path.read_text())
        rows = {row.get("key"): row for row in table["rows"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--cv {path}: not a bench.emotion result ({error}).") from None
    if family not in rows:
        raise ValueError(f"--cv {path}: no {family} row (rows: {sorted(r['model'] for r in table['rows'])}).")
    row, setup = rows[family], table.get("setup", {})
    model = row["model"]

    def cell(key):
        return "n/a" if row.get(key) is None else f"{row[key]:.3f} ± {row.get(key + '_std') or 0:.3f}"

    return (f"Cross-validation (`{model}`, {setup.get('folds')}-fold by artist, seeds {setup.get('seeds')}, "
            f"{row['runs']} runs, from `{path.name}`): accuracy {cell('accuracy')}, macro F1 {cell('macro_f1')}, "
            f"macro ROC-AUC {cell('macro_roc_auc')}, arousal {cell('arousal_roc_auc')}, "
            f"valence {cell('valence_roc_auc')}.")


def build(audio: Path, labels: Path, out: Path, work: Path, seed: int = 0, cv: Path | None = None,
          store: Path | None = None) -> Path:
    """Extract, train, export and write the model card; returns the installed version folder."""
    from keras_music.config import EMOTION_TRAINING, RECIPES
    from keras_music.data.extraction import extract_folder
    from keras_music.export import export_run
    from keras_music.models.musicnn_head import FAMILY, MusicnnHeadConfig
    from keras_music.training import train_emotion

    store = store or work / "store"
    summary = extract_folder(audio, store, RECIPES["musicnn"])
    print(f"store: {store} ({summary})")
    config = MusicnnHeadConfig()
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
        name=MODEL_NAME, version=version.name, thresholds_source=metadata["thresholds_source"],
        keras_music_version=metadata["keras_music_version"], weights=config.weights,
        head=f"dropout {config.dropout}, dense {config.head_units} + ReLU, 4 logits; Adam {config.learning_rate}",
        window=metadata["window_frames"], hop=metadata["window_hop_frames"], width=metadata["embedding_width"],
        train=len(run["splits"]["train"]), validation=len(run["splits"]["validation"]),
        test=len(run["splits"]["test"]), split_seed=training.split_seed, seed=seed,
        accuracy=score("accuracy"), macro_roc_auc=score("macro_roc_auc"), arousal=score("arousal_roc_auc"),
        valence=score("valence_roc_auc"), macro_f1=score("macro_f1"),
        cv=cv_summary(cv, FAMILY.name) if cv else "No cross-validation table was given (`--cv`).",
        date=datetime.date.today().isoformat())
    (staging / MODEL_NAME / "MODEL_CARD.md").write_text(card)
    install(staging / MODEL_NAME, out)
    return out / version.name


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, required=True, help="The 4Q clips (../shared/datasets/mer4q/audio).")
    parser.add_argument("--labels", type=Path, required=True,
                        help="Their labels CSV, with metadata.csv (artists) beside it.")
    parser.add_argument("--cv", type=Path, default=None, help="A bench.emotion JSON with a musicnn_head row.")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help=f"Default: {DEFAULT_MODEL_DIR}")
    parser.add_argument("--work", type=Path, default=None, help="Work folder (store, run). Default: a temporary one.")
    parser.add_argument("--store", type=Path, default=None,
                        help="Feature store of the musicnn recipe to extract into or reuse (extraction resumes; a "
                             "store reused by path also reuses the cached musicnn windows). Default: in --work.")
    parser.add_argument("--seed", type=int, default=0, help="Training seed. Default: 0.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for path in (args.audio, args.labels, *([args.cv] if args.cv else [])):
        if not path.exists():
            print(f"error: {path} does not exist.", file=sys.stderr)
            return 1
    if args.cv:
        try:
            cv_summary(args.cv)  # before minutes of work, not after
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        installed = build(args.audio, args.labels, args.out, args.work or Path(tmp), args.seed, args.cv, args.store)
    print(f"default model: {installed} (model card: {installed.parent / 'MODEL_CARD.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
