"""Export a trained run as a SavedModel that stock TensorFlow Serving loads.

    python -m keras_music.export --model runs/4q-cnn --name emotion_4q
    python -m keras_music.export --model runs/genre-full --name genre --base-dir /srv/models

Layout (TF Serving's): `BASE/NAME/VERSION/` with integer versions; a new export takes the
next free version and never overwrites one. The version is written to a hidden temporary
folder beside it and renamed into place, so a crash never leaves a half-written version
that a server could pick up.

Signatures (core TensorFlow ops only; no tensorflow-io op is in any exported graph):

* `serving_default`: the model on its named feature inputs.
  Emotion: one (batch, frames, width) float32 input per named feature of the run's recipe
  (the `4q` recipe: `mel` (batch, frames, n_mels) and `mfcc` (batch, frames, n_mfcc); `musicnn`:
  `mel` only),
  `length` (batch,) int32 -> `probabilities`, `logits` (batch, tags).
  Genre: one (batch, 1) input per raw CSV column -> `probabilities` (batch, classes).
  A per-clip emotion tagger (`tag_mlp`): `features` (batch, dims) -> the same outputs.
* `embeddings` (every emotion tagger): the same inputs as its `serving_default` ->
  `embeddings` (batch, width): the clip's pooled vector before the tag layer, i.e. the input
  of the model's Dense named `logits` (`keras_music.models.family.embedding_output`), for
  searching and clustering a collection. `width` is in metadata.json (`embedding_width`).
* `serve_audio` (sequence emotion models): `audio` (batch,) string of WAV file bytes (16-bit PCM, any
  rate from 8 to 192 kHz, mono or multichannel) -> `probabilities`, `logits`: decoded
  with `tf.audio.decode_wav`, mixed to mono, FFT-resampled to the model's rate when it has another, the
  recipe's features with `tf.signal`, cut into the training crop length every `window_hop` frames and
  logits averaged over the windows, by `keras_music.scoring` (as `keras_music.evaluate`
  scores clips). Also `window_logits` (batch, windows, tags), zero-padded past each
  file's `window_count` (batch,) windows: the curve over time, and what predict combines
  the chunks of very long files from; and, from the same pass, `embeddings` (batch, width),
  the mean of the windows' embeddings (as the logits are the mean of theirs; the logits
  layer being linear, it maps the one onto the other), and `window_embeddings`
  (batch, windows, width), zero-padded like `window_logits`.

Assets: `assets/labels.txt`, `assets/metadata.json` (task, labels, feature recipe,
sample rate, per-tag decision thresholds tuned on the validation split, a fingerprint of
the training data, test metrics, package version), and
`assets.extra/tf_serving_warmup_requests` (PredictionLog records TF Serving replays at
load time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from keras_music.remote import has_scheme, remote_files, upload
from keras_music.version import __version__
from keras_music.serving import EXPORT_FORMAT, ExportError
from keras_music.serving.signatures import (
    GENRE_SIGNATURES, emotion_archive, emotion_signatures, genre_archive, per_clip_archive, per_clip_signatures,
    tag_set_metadata)
from keras_music.serving.versions import staged_version, version_dir
from keras_music.serving.warmup import write_warmup_requests
from keras_music.thresholds import validation_thresholds
from keras_music.tf_logging import import_tensorflow
from keras_music.training.common import (
    check_run_folder, is_per_clip, load_run, recipe_of, sequence_config_of)

if TYPE_CHECKING:  # Keras loads only once an export runs: `--help` and usage errors answer without it
    from keras.export import ExportArchive

SERVING_DIR = Path("saved_models")
REPORT_SKIPPED = ("epochs_run", "resumed_after_epoch")  # report.json numbers that are no test metric


def export_run(run_dir: str | Path, name: str | None = None, base_dir: str | Path = SERVING_DIR,
               version: int | None = None, data: str | None = None,
               thresholds: tuple[list[float], str] | None = None, window_hop: int | None = None) -> Path | str:
    """Write `base_dir/name/version/` from a run folder of `keras_music.train`; returns its path (a
    `gs://...` URL when `base_dir` is on object storage: written here, then uploaded).

    Args:
        run_dir: the run folder (model.keras + config.json + report.json).
        name: TF Serving model name; default `<task>_<model>` (`genre_mlp`, `emotion_cnn_lstm`).
        base_dir: the model base folder of TF Serving, local or `gs://...`. Default `saved_models`.
        version: a specific version (error if it exists); default the next free one.
        data: where the validation clips are, for threshold tuning; default the run's data.
        thresholds: emotion: `(per-tag thresholds, where they came from)` tuned before, instead
            of tuning them again on the validation clips (a model rebuilt without its data).
        window_hop: sequence taggers: score windows every `window_hop` frames instead of the
            run's own `window_hop` (fewer windows per file: faster; docs/benchmarks.md measures
            what it costs in accuracy). metadata.json records both.

    Raises:
        keras_music.serving.ExportError: the name or version cannot be used, or the run's
            feature recipe disagrees with its model.
    """
    if has_scheme(base_dir):
        return export_to_object_storage(run_dir, name, str(base_dir), version, data, thresholds, window_hop)
    run_dir = Path(run_dir)
    model, config = load_run(run_dir)
    if window_hop is not None:
        config = scored_every(config, window_hop)
    name = name or default_name(config)
    target = version_dir(Path(base_dir), name, version)
    metadata = run_metadata(run_dir, model, config, name, int(target.name))
    if config["task"] != "emotion":
        archive, details = genre_export(model)
    elif is_per_clip(config):
        archive, details = per_clip_export(model, config, metadata["embedding_width"], thresholds, data)
    else:
        archive, details = sequence_export(model, config, metadata["embedding_width"], thresholds, data)
    metadata.update(details)
    write_version(target, archive, metadata, model, config)
    return target


def export_to_object_storage(run_dir, name, base_dir: str, version, data, thresholds, window_hop) -> str:
    """`export_run` into `gs://...` (any Beam filesystem): the version is written to a local folder, then
    uploaded file by file with `saved_model.pb` last, so TF Serving polling the bucket finds the graph
    only once its variables and assets are there (object storage has no atomic folder rename)."""
    import tempfile

    name = name or default_name(load_run(Path(run_dir))[1])
    root = f"{base_dir.rstrip('/')}/{name}"
    taken = {int(key.split("/", 1)[0]) for key in remote_files(root, "base_dir") if key.split("/", 1)[0].isdigit()}
    if version is not None and version in taken:
        raise ExportError(f"{root}/{version} exists; give another version (or none: the next free one).")
    version = version or max(taken, default=0) + 1
    with tempfile.TemporaryDirectory(prefix="keras_music-export-") as folder:
        local = export_run(run_dir, name, folder, version, data, thresholds, window_hop)
        return upload(local, f"{root}/{version}", last="saved_model.pb")


def scored_every(config: dict, window_hop: int) -> dict:
    """The run's config with its scoring windows every `window_hop` frames (it keeps the run's own
    hop as `trained_window_hop`, what metadata.json reports)."""
    if config["task"] != "emotion" or is_per_clip(config):
        raise ExportError(f"window_hop={window_hop}: only sequence taggers score windows; this run is a "
                          f"{config['task']} {config['model']}.")
    sequences = sequence_config_of(config)
    if not (isinstance(window_hop, int) and 1 <= window_hop) or not sequences.window_hop:
        raise ExportError(f"window_hop={window_hop!r}: expected a whole number of frames >= 1 for a run that "
                          f"scores windows (its window_hop is {sequences.window_hop}).")
    return {**config, "trained_window_hop": sequences.window_hop,
            "sequence_config": {**config["sequence_config"], "window_hop": window_hop}}


def default_name(config: dict) -> str:
    """`<task>_<model>`, without doubling a model name that already starts with its task."""
    task, model = config["task"], config["model"]
    return model if model.startswith(f"{task}_") else f"{task}_{model}"


def run_metadata(run_dir: Path, model, config: dict, name: str, version: int) -> dict:
    """What metadata.json says of every export: names and versions, labels, the training data's
    fingerprint, test metrics (when the run has a report) and, for taggers, the embedding width."""
    import tensorflow as tf

    task = config["task"]
    labels = config["tags"] if task == "emotion" else config["class_names"]
    metadata = {"name": name, "version": version, "task": task, "model": config["model"],
                "labels": labels, "training_data_fingerprint": fingerprint(config), "data": config.get("data"),
                "keras_music_version": __version__, "export_format": EXPORT_FORMAT,
                "tensorflow_version": tf.__version__}
    report_path = run_dir / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        metadata["test_metrics"] = {k: v for k, v in report.items() if isinstance(v, (int, float))
                                    and not isinstance(v, bool) and k not in REPORT_SKIPPED}
    if task == "emotion":
        from keras_music.models.family import embedding_output

        metadata["embedding_width"] = int(embedding_output(model).shape[-1])
    return metadata


def fingerprint(config: dict) -> str:
    """sha256 of what the model was trained on: the data name, and the training clip ids
    (emotion) or the data file's bytes (genre)."""
    digest = hashlib.sha256(json.dumps({"data": config.get("data"), "task": config["task"]}).encode())
    if "splits" in config:
        digest.update(json.dumps(sorted(config["splits"]["train"])).encode())
    elif config.get("data") and Path(config["data"]).is_file():
        digest.update(Path(config["data"]).read_bytes())
    digest.update(json.dumps(config.get("training_config", {}), sort_keys=True).encode())
    return digest.hexdigest()


def per_clip_export(model, config: dict, width: int, thresholds: tuple[list[float], str] | None,
                    data: str | None) -> tuple[ExportArchive, dict]:
    """A per-clip tagger's archive, and its metadata: thresholds and signatures."""
    thresholds, source = thresholds or validation_thresholds(model, config, data)
    details = {"thresholds": dict(zip(config["tags"], thresholds)), "thresholds_source": source,
               "signatures": per_clip_signatures(width)}
    return per_clip_archive(model), details


def sequence_export(model, config: dict, width: int, thresholds: tuple[list[float], str] | None,
                    data: str | None) -> tuple[ExportArchive, dict]:
    """A sequence tagger's archive, and its metadata: the feature recipe, the scoring windows,
    thresholds and signatures."""
    from keras_music.config import config_to_dict

    from keras_music.config import config_from_dict
    from keras_music.models.registry import family_of_run

    recipe = recipe_of(config)
    thresholds, source = thresholds or validation_thresholds(model, config, data)
    sequences = sequence_config_of(config)
    family = family_of_run(config)
    tag_sets = family.tag_sets(model, config_from_dict(family.config, config["model_config"])) \
        if family.tag_sets else []
    details = {"recipe": config_to_dict(recipe), "sample_rate": recipe.sample_rate,
               "window_frames": sequences.crop_frames, "window_hop_frames": sequences.window_hop,
               **({"trained_window_hop_frames": config["trained_window_hop"]} if "trained_window_hop" in config else {}),
               "thresholds": dict(zip(config["tags"], thresholds)), "thresholds_source": source,
               "tag_sets": tag_set_metadata(tag_sets),
               "signatures": emotion_signatures(config, width, tag_set_metadata(tag_sets))}
    return emotion_archive(model, config, tag_sets), details


def genre_export(model) -> tuple[ExportArchive, dict]:
    """A genre model's archive, and its metadata: signatures."""
    return genre_archive(model), {"signatures": dict(GENRE_SIGNATURES)}


def write_version(target: Path, archive: ExportArchive, metadata: dict, model, config: dict) -> None:
    """The SavedModel, `assets/` (labels.txt, metadata.json) and the warm-up records, written
    aside and renamed to `target` (nothing is left behind when any step fails)."""
    with staged_version(target) as staging:
        archive.write_out(str(staging), verbose=False)
        (staging / "assets").mkdir(exist_ok=True)
        (staging / "assets" / "labels.txt").write_text("\n".join(metadata["labels"]) + "\n")
        (staging / "assets" / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        (staging / "assets.extra").mkdir()
        write_warmup_requests(staging / "assets.extra" / "tf_serving_warmup_requests", metadata["name"],
                              model, config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m keras_music.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Run folder written by python -m keras_music.train.")
    parser.add_argument("--name", default=None, help="Model name (folder and TF Serving name). "
                        "Default: <task>_<model>.")
    parser.add_argument("--base-dir", default=str(SERVING_DIR), help="TF Serving's model base folder, local or on "
                        "object storage (gs://bucket/models: written here, then uploaded with saved_model.pb "
                        "last; needs keras_music[beam]). Default: saved_models.")
    parser.add_argument("--version", type=int, default=None, help="Default: the next free version.")
    parser.add_argument("--data", default=None, help="Emotion: data holding the run's validation clips, for "
                        "threshold tuning. Default: the run's --data.")
    parser.add_argument("--window-hop", type=int, default=None, metavar="FRAMES",
                        help="Sequence taggers: score windows every FRAMES frames (fewer windows: faster). "
                             "Default: the run's window_hop.")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_run_folder(args.model)  # a mistyped --model answers before TensorFlow's start-up
        import_tensorflow()  # after parsing and that check: --help, usage errors and typos answer without it
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        path = export_run(args.model, args.name, args.base_dir, args.version, args.data, window_hop=args.window_hop)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
