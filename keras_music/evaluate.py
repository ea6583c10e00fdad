"""Score a trained run on any labelled dataset in a supported layout.

    python -m keras_music.evaluate --model runs/genre-full --data holdout.csv
    python -m keras_music.evaluate --model runs/emotion-cnn --data mer4q --split test --json

Genre runs take a labelled CSV with the training schema; emotion runs take what
`train --task emotion` takes (a feature store, or a folder with labels.csv +
features/*.npz, or `mer4q` / `cal500` / `demo`). With `--json`, standard output is exactly one JSON
object (genre: `accuracy`, `macro_f1`, `log_loss`, `n`, ...; emotion: `macro_roc_auc`,
`accuracy` and `macro_f1` when each clip has one positive tag, `n`, `per_tag`, ...); logs go to
standard error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from keras_music.data.genre import GenreDataError
from keras_music.training.common import check_run_folder, load_run, run_features
from keras_music.tf_logging import import_tensorflow

logger = logging.getLogger("keras_music.evaluate")


EXAMPLES = """examples:
  python -m keras_music.evaluate --model runs/genre-full --data ../shared/datasets/genre/train.csv
  python -m keras_music.evaluate --model runs/genre-full --data new_tracks.csv --json > scores.json
  python -m keras_music.evaluate --model runs/4q-cnn --data ../shared/datasets/mer4q --split test
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keras_music.evaluate",
        description="Score a trained keras_music run on a labelled dataset.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="Run folder written by keras_music.train.")
    parser.add_argument("--data", required=True,
                        help="Genre: labelled CSV with the training schema. Emotion: a feature store, a folder with "
                             "labels.csv + features/*.npz, 'mer4q' or 'demo'.")
    parser.add_argument("--labels", default=None, help="Emotion with a feature store: labels CSV. "
                        "Default: STORE/labels.csv.")
    parser.add_argument("--split", choices=["all", "test"], default="all",
                        help="Emotion: score every labelled clip, or only the run's own test clips. Default: all.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the text report.")
    return parser.parse_args(argv)


def evaluate_genre(run_dir: str | Path, data: str | Path) -> dict:
    """Classification report of a genre run on a labelled CSV."""
    from keras_music.data.genre import load_genre_csv
    from keras_music.data.genre import genre_dataset
    from keras_music.reports import classification_report

    model, config = load_run(run_dir)
    class_names = config["class_names"]
    frame = load_genre_csv(data, num_classes=len(class_names))
    features = config["model_config"]["feature_set"]
    probabilities = model.predict(genre_dataset(frame, features, 1024), verbose=0)
    report = classification_report(frame["label"].to_numpy(), probabilities, class_names)
    report.update({"data": str(data), "model": str(run_dir)})
    return report


def evaluate_emotion(run_dir: str | Path, data: str, labels: str | None = None, split: str = "all") -> dict:
    """Tagging report of an emotion run on a labelled dataset (all clips, or the run's test clips)."""
    from keras_music.config import config_from_dict
    from keras_music.data.emotion import load_emotion_data
    from keras_music.data.sequences import SequenceConfig
    from keras_music.scoring import score_tagger

    model, config = load_run(run_dir)
    emotion = load_emotion_data(data, labels)
    if emotion.tags.tags != config["tags"]:
        raise ValueError(f"{data}: tags {emotion.tags.tags} differ from the model's {config['tags']}.")
    expected = run_features(config)
    if emotion.feature_dims != expected and config.get("features") != {}:
        raise ValueError(f"{data}: features {emotion.feature_dims} (name: width), the model expects {expected} "
                         "(extract with the run's recipe).")
    ids = emotion.tags.clip_ids
    if split == "test":
        wanted = set(config["splits"]["test"])
        ids = [c for c in ids if c in wanted]
        if not ids:
            raise ValueError(f"{data}: none of the run's test clips are in this dataset.")
    report = score_tagger(model, emotion, ids, config_from_dict(SequenceConfig, config["sequence_config"]))
    report.update({"data": str(data), "model": str(run_dir), "split": split})
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_run_folder(args.model)  # a mistyped --model answers before TensorFlow's start-up
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.reports import format_classification_report, format_tagging_report

    try:
        config_path = Path(args.model) / "config.json"
        task = json.loads(config_path.read_text()).get("task", "genre") if config_path.is_file() else "genre"
        if task == "emotion":
            report = evaluate_emotion(args.model, args.data, args.labels, args.split)
            text = format_tagging_report(report, title=f"{args.model} on {args.data} ({args.split} clips)")
        else:
            report = evaluate_genre(args.model, args.data)
            text = format_classification_report(report, title=f"{args.model} on {args.data}")
    except (FileNotFoundError, GenreDataError, ValueError) as error:
        from keras_music.errors import ParameterError

        flags = {"data": "--data", "labels": "--labels", "run_dir": "--model"}
        print(f"error: {error.for_flags(flags) if isinstance(error, ParameterError) else error}", file=sys.stderr)
        return 1
    print(json.dumps(report) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
