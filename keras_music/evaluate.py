"""Score a trained run on any labelled CSV with the training schema.

    python -m keras_music.evaluate --model runs/genre-full --data holdout.csv
    python -m keras_music.evaluate --model runs/genre-full --data holdout.csv --json

With `--json`, standard output is exactly one JSON object (`accuracy`, `macro_f1`,
`log_loss`, `n`, per-class F1, confusion matrix); logs go to standard error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from keras_music.data.genre import GenreDataError

logger = logging.getLogger("keras_music.evaluate")

EXAMPLES = """examples:
  python -m keras_music.evaluate --model runs/genre-full --data ../shared/datasets/genre/train.csv
  python -m keras_music.evaluate --model runs/genre-full --data new_tracks.csv --json > scores.json
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.evaluate",
        description="Score a trained keras_music run on a labelled dataset.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="Run folder written by keras_music.train.")
    parser.add_argument("--data", required=True, help="Labelled CSV with the training schema.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the text report.")
    return parser.parse_args(argv)


def load_run(run_dir: str | Path):
    """The Keras model and `config.json` of a run folder, with clear errors if either is missing."""
    import keras

    import keras_music.models.layers  # noqa: F401  (registers the custom layers)

    run_dir = Path(run_dir)
    model_path, config_path = run_dir / "model.keras", run_dir / "config.json"
    for path in (model_path, config_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} does not exist; --model must be a run folder written by "
                "`python -m keras_music.train` (with model.keras and config.json)."
            )
    config = json.loads(config_path.read_text())
    return keras.saving.load_model(model_path), config


def evaluate_genre(run_dir: str | Path, data: str | Path) -> dict:
    """Classification report of a genre run on a labelled CSV."""
    from keras_music.data.genre import load_genre_csv
    from keras_music.models.mlp import genre_dataset
    from keras_music.reports import classification_report

    model, config = load_run(run_dir)
    class_names = config["class_names"]
    frame = load_genre_csv(data, num_classes=len(class_names))
    features = config["model_config"]["feature_set"]
    probabilities = model.predict(genre_dataset(frame, features, 1024), verbose=0)
    report = classification_report(frame["label"].to_numpy(), probabilities, class_names)
    report.update({"data": str(data), "model": str(run_dir)})
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.reports import format_classification_report

    try:
        report = evaluate_genre(args.model, args.data)
    except (FileNotFoundError, GenreDataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print(format_classification_report(report, title=f"{args.model} on {args.data}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
