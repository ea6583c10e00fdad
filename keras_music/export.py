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
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from keras_music.version import __version__
from keras_music.training.common import check_run_folder, load_run, run_features
from keras_music.tf_logging import import_tensorflow

logger = logging.getLogger("keras_music.export")

SERVING_DIR = Path("saved_models")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIN_RATE, MAX_RATE = 8000, 192000


class ExportError(ValueError):
    """An export that cannot be written; the message says why."""


# --- versions ------------------------------------------------------------------------------------

def existing_versions(model_root: Path) -> list[int]:
    """Integer version folders under `model_root` (TF Serving ignores anything else)."""
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def version_dir(base_dir: Path, name: str, version: int | None) -> Path:
    """`base_dir/name/version`: the next free version, or `version` if it is free."""
    if not NAME_PATTERN.match(name):
        raise ExportError(f"model name {name!r}: use letters, digits, '_', '.', '-' (it becomes a folder and "
                          "the TF Serving model name).")
    root = base_dir / name
    versions = existing_versions(root)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}.")
    target = root / str(version)
    if target.exists():
        raise ExportError(f"{target} already exists; versions are never overwritten (existing: {versions}). "
                          "Leave out --version to take the next one.")
    return target


# --- thresholds, fingerprint ---------------------------------------------------------------------

def f1_thresholds(probabilities: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> list[float]:
    """Per tag, the probability threshold with the best F1 on the known cells (0.5 when a tag
    has no positive or no known cell). Ties go to the higher threshold."""
    thresholds = []
    for j in range(labels.shape[1]):
        known = mask[:, j] > 0
        y, p = labels[known, j] > 0.5, probabilities[known, j]
        if not y.any() or y.all():
            thresholds.append(0.5)
            continue
        best, best_f1 = 0.5, -1.0
        for candidate in np.unique(p):
            predicted = p >= candidate
            tp = np.sum(predicted & y)
            f1 = 2 * tp / (predicted.sum() + y.sum())
            if f1 >= best_f1:
                best, best_f1 = float(candidate), f1
        thresholds.append(best)
    return thresholds


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


def validation_thresholds(model, config: dict, data: str | None) -> tuple[list[float], str]:
    """Per-tag thresholds tuned on the run's validation clips, and where they came from."""
    from keras_music.data.emotion import load_emotion_data
    from keras_music.scoring import tagger_logits

    tags = config["tags"]
    try:
        same = data is None or data == config["data"]
        emotion = load_emotion_data(data or config["data"], config.get("labels") if same else None)
        val_ids = [c for c in config["splits"]["validation"] if c in set(emotion.tags.clip_ids)]
        if not val_ids:
            raise ValueError("none of the run's validation clips are in it")
        logits, labels, mask = tagger_logits(model, emotion, val_ids, sequence_config_of(config))
    except (FileNotFoundError, ValueError) as error:
        logger.warning("Thresholds left at 0.5: validation data %r not usable (%s).", data or config["data"], error)
        return [0.5] * len(tags), f"default 0.5 (validation data unavailable: {error})"
    thresholds = f1_thresholds(1 / (1 + np.exp(-logits)), labels, mask)
    return thresholds, f"best F1 on {len(val_ids)} validation clips of {data or config['data']}"


# --- signatures ----------------------------------------------------------------------------------

def recipe_of(config: dict):
    """The feature recipe of an emotion run (saved in its config; older runs: the 4Q defaults)."""
    from keras_music.config import FeatureRecipe

    if config.get("recipe"):
        return FeatureRecipe.from_dict(config["recipe"], source="config.json recipe")
    logger.warning("config.json has no feature recipe; assuming the default (4Q) recipe.")
    return FeatureRecipe()


def sequence_config_of(config: dict):
    """The run's SequenceConfig, read exactly as `keras_music.evaluate` reads it (one default)."""
    from keras_music.config import config_from_dict
    from keras_music.data.sequences import SequenceConfig

    return config_from_dict(SequenceConfig, config["sequence_config"])


def is_per_clip(config: dict) -> bool:
    """Whether the run's family takes one vector per clip (`clip_vector`) instead of sequences."""
    from keras_music.models.registry import family_of_run

    return family_of_run(config).inputs == "clip_vector"


def emotion_archive(model, config: dict):
    """ExportArchive with `serving_default` and `embeddings` (features) and `serve_audio` (WAV bytes)."""
    import keras
    import tensorflow as tf

    from keras_music.audio.frontend import AudioFeatures, resample
    from keras_music.models.family import embedding_model
    from keras_music.scoring import clip_windows, mean_logits

    recipe = recipe_of(config)
    features, n_tags = run_features(config), len(config["tags"])
    sequences = sequence_config_of(config)
    window, hop = sequences.crop_frames, sequences.window_hop
    front_end = AudioFeatures(recipe)
    if recipe.feature_dims != features:
        raise ExportError(f"the run's recipe gives features {recipe.feature_dims} (name: width), the model expects "
                          f"{features}.")

    embed = embedding_model(model, with_logits=True)  # the same layers and weights: one pass, both outputs
    width = embed.output["embeddings"].shape[-1]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def outputs(logits):
        return {"probabilities": tf.sigmoid(logits), "logits": logits}

    def serving_default(inputs):
        return outputs(model(inputs, training=False))

    def embeddings(inputs):
        return {"embeddings": embed(inputs, training=False)["embeddings"]}

    def window_logits(wav_bytes):
        audio, rate = tf.audio.decode_wav(wav_bytes)
        tf.debugging.assert_greater(tf.shape(audio)[0], 0, message="WAV has no samples")
        tf.debugging.assert_greater_equal(rate, MIN_RATE, message=f"sample rate below {MIN_RATE} Hz; the model "
                                          f"expects {recipe.sample_rate} Hz audio (resampled from 8-192 kHz)")
        tf.debugging.assert_less_equal(rate, MAX_RATE, message=f"sample rate above {MAX_RATE} Hz; the model "
                                       f"expects {recipe.sample_rate} Hz audio (resampled from 8-192 kHz)")
        mono = tf.reduce_mean(audio, axis=1)
        samples = tf.cond(tf.equal(rate, recipe.sample_rate), lambda: mono,
                          lambda: resample(mono, tf.cast(rate, tf.float64), recipe.sample_rate))
        clip = {name: values[0] for name, values in front_end(samples[None, :]).items()}
        tf.debugging.assert_greater(tf.shape(clip["mel"])[0], 0, message=f"audio shorter than one analysis frame "
                                    f"({recipe.n_fft} samples at {recipe.sample_rate} Hz)")
        windows = embed(clip_windows(clip, window, hop), training=False)
        return windows["logits"], windows["embeddings"]

    def serve_audio(audio):
        # Ragged: files have different window counts; padded with zeros for the signature.
        per_window, per_window_embeddings = tf.map_fn(window_logits, audio, fn_output_signature=(
            tf.RaggedTensorSpec([None, n_tags], tf.float32, ragged_rank=0),
            tf.RaggedTensorSpec([None, width], tf.float32, ragged_rank=0)))
        logits = tf.map_fn(mean_logits, per_window, fn_output_signature=tf.TensorSpec([n_tags], tf.float32))
        clip_embeddings = tf.map_fn(mean_logits, per_window_embeddings,
                                    fn_output_signature=tf.TensorSpec([width], tf.float32))
        return {**outputs(logits), "window_logits": per_window.to_tensor(),
                "window_count": tf.cast(per_window.row_lengths(), tf.int32),
                "embeddings": clip_embeddings, "window_embeddings": per_window_embeddings.to_tensor()}

    feature_inputs = {**{name: tf.TensorSpec([None, None, dims], tf.float32, name=name)
                         for name, dims in features.items()},
                      "length": tf.TensorSpec([None], tf.int32, name="length")}
    archive.add_endpoint("serving_default", serving_default, input_signature=[feature_inputs])
    archive.add_endpoint("embeddings", embeddings, input_signature=[feature_inputs])
    archive.add_endpoint("serve_audio", serve_audio,
                         input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
    return archive


def per_clip_archive(model):
    """ExportArchive of a per-clip tagger: `serving_default` and `embeddings` on its `features` vector."""
    import keras
    import tensorflow as tf

    from keras_music.models.family import embedding_model

    embed = embedding_model(model)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serving_default(features):
        logits = model({"features": features}, training=False)
        return {"probabilities": tf.sigmoid(logits), "logits": logits}

    def embeddings(features):
        return {"embeddings": embed({"features": features}, training=False)}

    spec = tf.TensorSpec([None, model.input["features"].shape[-1]], tf.float32, name="features")
    archive.add_endpoint("serving_default", serving_default, input_signature=[spec])
    archive.add_endpoint("embeddings", embeddings, input_signature=[spec])
    return archive


def genre_archive(model):
    """ExportArchive with `serving_default` on the raw CSV columns."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = {name: tf.TensorSpec([None, 1], tensor.dtype, name=name) for name, tensor in model.input.items()}

    def serving_default(columns):
        return {"probabilities": model(columns, training=False)}

    archive.add_endpoint("serving_default", serving_default, input_signature=[specs])
    return archive


# --- warm-up requests (TF Serving's assets.extra/tf_serving_warmup_requests) ----------------------

def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def prediction_log(model_name: str, signature: str, inputs: dict) -> bytes:
    """A serialized `tensorflow.serving.PredictionLog` holding one PredictRequest.

    Field numbers from tensorflow_serving/apis: PredictionLog.predict_log = 6,
    PredictLog.request = 1, PredictRequest.model_spec = 1 / inputs = 2 (map entries:
    key = 1, value = 2), ModelSpec.name = 1 / signature_name = 3. Hand-encoded so the
    export needs no tensorflow-serving-api package.
    """
    import tensorflow as tf

    spec = _field(1, model_name.encode()) + _field(3, signature.encode())
    request = _field(1, spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_inputs(model, config: dict) -> list[tuple[str, dict]]:
    """Small valid requests for each signature: (signature name, inputs)."""
    from keras_music.audio.decoding import wav_bytes

    rng = np.random.default_rng(0)
    if config["task"] == "emotion" and is_per_clip(config):
        features = {"features": np.zeros((1, model.input["features"].shape[-1]), "float32")}
        return [("serving_default", features), ("embeddings", features)]
    if config["task"] == "genre":
        columns = {}
        for name, tensor in model.input.items():
            columns[name] = (np.array([[b"unknown artist"]]) if tensor.dtype == "string"
                             else np.zeros((1, 1), "float32"))
        return [("serving_default", columns)]
    frames = sequence_config_of(config).crop_frames or 64
    rate = recipe_of(config).sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate) + 0.01 * rng.standard_normal(3 * rate)
    windows = {name: rng.normal(0, 10, (1, frames, width)).astype("float32")
               for name, width in run_features(config).items()}
    inputs = {**windows, "length": np.array([frames], "int32")}
    return [("serving_default", inputs), ("embeddings", inputs),
            ("serve_audio", {"audio": np.array([wav_bytes(tone, rate)], dtype=object)})]


# --- export --------------------------------------------------------------------------------------

def export_run(run_dir: str | Path, name: str | None = None, base_dir: str | Path = SERVING_DIR,
               version: int | None = None, data: str | None = None,
               thresholds: tuple[list[float], str] | None = None) -> Path:
    """Write `base_dir/name/version/` from a run folder of `keras_music.train`; returns its path.

    Args:
        run_dir: the run folder (model.keras + config.json + report.json).
        name: TF Serving model name; default `<task>_<model>` (`genre_mlp`, `emotion_cnn_lstm`).
        base_dir: the model base folder of TF Serving. Default `saved_models`.
        version: a specific version (error if it exists); default the next free one.
        data: where the validation clips are, for threshold tuning; default the run's data.
        thresholds: emotion: `(per-tag thresholds, where they came from)` tuned before, instead
            of tuning them again on the validation clips (a model rebuilt without its data).
    """
    import tensorflow as tf


    run_dir = Path(run_dir)
    model, config = load_run(run_dir)
    task = config["task"]
    name = name or (config["model"] if config["model"].startswith(f"{task}_") else f"{task}_{config['model']}")
    target = version_dir(Path(base_dir), name, version)
    labels = config["tags"] if task == "emotion" else config["class_names"]

    metadata = {"name": name, "version": int(target.name), "task": task, "model": config["model"],
                "labels": labels, "training_data_fingerprint": fingerprint(config), "data": config.get("data"),
                "keras_music_version": __version__, "tensorflow_version": tf.__version__}
    report_path = run_dir / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        metadata["test_metrics"] = {k: v for k, v in report.items() if isinstance(v, (int, float))
                                    and not isinstance(v, bool) and k not in ("epochs_run", "resumed_after_epoch")}
    if task == "emotion":
        from keras_music.models.family import embedding_output

        width = int(embedding_output(model).shape[-1])
        metadata["embedding_width"] = width
        embedded = f"embeddings (batch, {width}): the pooled vector before the tag layer (the input of `logits`)"
    if task == "emotion" and is_per_clip(config):
        thresholds, source = thresholds or validation_thresholds(model, config, data)
        metadata.update({"thresholds": dict(zip(labels, thresholds)), "thresholds_source": source,
                         "signatures": {"serving_default": "features (one vector per clip: the training data's "
                                                           "aggregated features) -> probabilities, logits",
                                        "embeddings": f"features -> {embedded}"}})
        archive = per_clip_archive(model)
    elif task == "emotion":
        from keras_music.config import config_to_dict

        recipe = recipe_of(config)
        thresholds, source = thresholds or validation_thresholds(model, config, data)
        sequences = sequence_config_of(config)
        inputs = ", ".join([*run_features(config), "length"])
        metadata.update({"recipe": config_to_dict(recipe), "sample_rate": recipe.sample_rate,
                         "window_frames": sequences.crop_frames, "window_hop_frames": sequences.window_hop,
                         "thresholds": dict(zip(labels, thresholds)), "thresholds_source": source,
                         "signatures": {"serving_default": f"{inputs} -> probabilities, logits",
                                        "embeddings": f"{inputs} -> {embedded}",
                                        "serve_audio": "audio (WAV bytes) -> probabilities, logits (mean "
                                                       "of the windows), window_logits (batch, windows, tags; "
                                                       "zero-padded), window_count, embeddings (batch, "
                                                       f"{width}; mean of the windows), window_embeddings "
                                                       f"(batch, windows, {width}; zero-padded)"}})
        archive = emotion_archive(model, config)
    else:
        metadata["signatures"] = {"serving_default": "raw CSV columns -> probabilities"}
        archive = genre_archive(model)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        archive.write_out(str(staging), verbose=False)
        (staging / "assets").mkdir(exist_ok=True)
        (staging / "assets" / "labels.txt").write_text("\n".join(labels) + "\n")
        (staging / "assets" / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        (staging / "assets.extra").mkdir()
        with tf.io.TFRecordWriter(str(staging / "assets.extra" / "tf_serving_warmup_requests")) as writer:
            for signature, inputs in warmup_inputs(model, config):
                writer.write(prediction_log(name, signature, inputs))
        if target.exists():  # another export took this version meanwhile
            raise ExportError(f"{target} appeared while exporting; versions are never overwritten.")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_music.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Run folder written by python -m keras_music.train.")
    parser.add_argument("--name", default=None, help="Model name (folder and TF Serving name). "
                        "Default: <task>_<model>.")
    parser.add_argument("--base-dir", default=str(SERVING_DIR), help="Default: saved_models.")
    parser.add_argument("--version", type=int, default=None, help="Default: the next free version.")
    parser.add_argument("--data", default=None, help="Emotion: data holding the run's validation clips, for "
                        "threshold tuning. Default: the run's --data.")
    args = parser.parse_args(argv)
    try:
        check_run_folder(args.model)  # a mistyped --model answers before TensorFlow's start-up
        import_tensorflow()  # after parsing and that check: --help, usage errors and typos answer without it
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        path = export_run(args.model, args.name, args.base_dir, args.version, args.data)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
