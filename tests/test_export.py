"""Export to TF Serving's layout: signatures, assets, versions, and loading in a process without keras_music."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_music.config import TrainingConfig
from keras_music.models.tag_mlp import TagMLPConfig
from keras_music.models.genre_mlp import GenreMLPConfig
from keras_music.export import export_run
from keras_music.serving import ExportError
from keras_music.thresholds import f1_thresholds
from keras_music.training import train_genre

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=[1, 4], ids=["one head", "4 heads in one network"])
def genre_run(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("genre") / "run"
    train_genre("demo", out, GenreMLPConfig(feature_set="full", hidden_units=(32,), ensemble_size=1,
                                            heads=request.param), TrainingConfig(epochs=2), verbose=0)
    return out


def graph_ops(export: Path) -> set[str]:
    """Every op type in the SavedModel: the graph and every function of its library."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((export / "saved_model.pb").read_bytes())
    ops = set()
    for meta in saved.meta_graphs:
        ops |= {node.op for node in meta.graph_def.node}
        for function in meta.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


FRESH = """
import sys
import numpy as np
import tensorflow as tf
export, inputs, out = sys.argv[1:4]
loaded = tf.saved_model.load(export)
arrays = dict(np.load(inputs, allow_pickle=True))
results = {}
for name, signature in loaded.signatures.items():
    keys = [k for k in arrays if k.startswith(name + "/")]
    if keys:
        feed = {k.split("/", 1)[1]: tf.constant(arrays[k]) for k in keys}
        for key, value in signature(**feed).items():
            results[f"{name}/{key}"] = value.numpy()
np.savez(out, **results)
assert "keras_music" not in sys.modules and "tensorflow_io" not in sys.modules, "imported more than tensorflow"
print("signatures:", sorted(loaded.signatures))
"""


def run_fresh(export: Path, inputs: dict, tmp_path: Path) -> dict:
    """Run every signature named in `inputs` ("signature/input") in a new process importing only tensorflow."""
    np.savez(tmp_path / "inputs.npz", **inputs)
    result = subprocess.run([sys.executable, "-c", FRESH, str(export), str(tmp_path / "inputs.npz"),
                             str(tmp_path / "outputs.npz")], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "outputs.npz"))


def test_emotion_export_serves_both_signatures_without_keras_music(emotion_run, tmp_path, audio_dir):
    import keras

    from keras_music.audio.frontend import compute_features, resample
    from keras_music.training.common import load_run
    from keras_music.scoring import window_starts

    export = export_run(emotion_run, "emotion_test", tmp_path / "models")
    assert export == tmp_path / "models" / "emotion_test" / "1"
    model, config = load_run(emotion_run)

    cli = subprocess.run([str(Path(sys.executable).parent / "saved_model_cli"), "show", "--dir", str(export), "--all"], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "signature_def['serving_default']" in cli.stdout and "signature_def['serve_audio']" in cli.stdout

    ops = graph_ops(export)
    assert {"DecodeWav", "RFFT", "IRFFT"} <= ops  # the audio front end is in the graph...
    assert not [op for op in ops if op.startswith("IO>")]  # ...and no tensorflow-io op is

    rng = np.random.default_rng(0)
    mel = rng.normal(-40, 15, (3, 90, 64)).astype("float32")
    mfcc = rng.normal(0, 20, (3, 90, 20)).astype("float32")
    length = np.array([90, 50, 7], "int32")
    wavs = [audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", audio_dir / "bach_chorale_bwv269_calm_44k_stereo_16bit.wav"]
    served = run_fresh(export, {"serving_default/mel": mel, "serving_default/mfcc": mfcc,
                                "serving_default/length": length,
                                "serve_audio/audio": np.array([p.read_bytes() for p in wavs], dtype=object)}, tmp_path)

    expected = keras.ops.sigmoid(model({"mel": mel, "mfcc": mfcc, "length": length}, training=False)).numpy()
    assert np.max(np.abs(served["serving_default/probabilities"] - expected)) <= 1e-5

    window, hop = config["sequence_config"]["crop_frames"], config["sequence_config"]["window_hop"]
    reference, curves = [], []
    for path in wavs:  # the training-side code path: package decode + resample + features + windows
        audio, rate = tf.audio.decode_wav(path.read_bytes())
        samples = resample(tf.reduce_mean(audio, axis=1), int(rate), 22050).numpy()
        features = compute_features(samples)
        log_mel, coefficients = features["mel"], features["mfcc"]
        starts = window_starts(len(log_mel), window, hop).numpy()
        logits = model({"mel": np.stack([log_mel[s:s + window] for s in starts]),
                        "mfcc": np.stack([coefficients[s:s + window] for s in starts]),
                        "length": np.full(len(starts), window, "int32")}, training=False)
        reference.append(np.asarray(logits).mean(axis=0))
        curves.append(np.asarray(logits))
    assert np.max(np.abs(served["serve_audio/logits"] - np.stack(reference))) <= 1e-5
    counts = served["serve_audio/window_count"]
    assert counts.tolist() == [len(c) for c in curves]
    for row, count, curve in zip(served["serve_audio/window_logits"], counts, curves):
        assert np.max(np.abs(row[:count] - curve)) <= 1e-5 and not row[count:].any()  # zero-padded

    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert metadata["labels"] == config["tags"] == (export / "assets" / "labels.txt").read_text().split()
    assert metadata["sample_rate"] == 22050 and metadata["recipe"]["n_mels"] == 64
    assert set(metadata["thresholds"]) == set(config["tags"])
    assert all(0 <= t <= 1 for t in metadata["thresholds"].values())
    assert metadata["thresholds_source"].startswith("best F1 on 8 validation clips")
    assert len(metadata["training_data_fingerprint"]) == 64 and "macro_roc_auc" in metadata["test_metrics"]


def test_embeddings_are_the_vector_before_the_tag_layer_in_both_paths_without_keras_music(
        emotion_run, tmp_path, audio_dir):
    """`embeddings` (features) and serve_audio's `embeddings` (WAV) against a sub-model built here from the
    reloaded Keras model (the input of its layer `logits`), on the same inputs; tolerance 1e-5."""
    import keras

    from keras_music.audio.frontend import compute_features, resample
    from keras_music.scoring import window_starts
    from keras_music.training.common import load_run

    export = export_run(emotion_run, "emotion_embed", tmp_path / "models")
    model, config = load_run(emotion_run)
    logits_layer = model.get_layer("logits")
    kernel, bias = logits_layer.get_weights()
    reference = keras.Model(model.input, [logits_layer.input, model.output])  # (embeddings, logits)
    width = kernel.shape[0]
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert metadata["embedding_width"] == width == logits_layer.input.shape[-1]
    assert f"(batch, {width})" in metadata["signatures"]["embeddings"]
    assert "window_embeddings" in metadata["signatures"]["serve_audio"]

    rng = np.random.default_rng(1)
    mel = rng.normal(-40, 15, (3, 80, 64)).astype("float32")
    mfcc = rng.normal(0, 20, (3, 80, 20)).astype("float32")
    length = np.array([80, 33, 9], "int32")
    wavs = [audio_dir / "mozart_k545_bright_22k_mono_16bit.wav",
            audio_dir / "bach_chorale_bwv269_calm_44k_stereo_16bit.wav"]
    audio = [p.read_bytes() for p in wavs]
    served = run_fresh(export, {"embeddings/mel": mel, "embeddings/mfcc": mfcc, "embeddings/length": length,
                                "serving_default/mel": mel, "serving_default/mfcc": mfcc,
                                "serving_default/length": length,
                                "serve_audio/audio": np.array(audio, dtype=object)}, tmp_path)
    assert sorted(k for k in served if k.startswith("embeddings/")) == ["embeddings/embeddings"]

    expected, _ = reference({"mel": mel, "mfcc": mfcc, "length": length}, training=False)
    embeddings = served["embeddings/embeddings"]
    assert embeddings.shape == (3, width) and np.abs(embeddings).max() > 0
    assert np.max(np.abs(embeddings - np.asarray(expected))) <= 1e-5
    # it is the tag layer's input: the layer maps it onto serving_default's logits
    assert np.max(np.abs(embeddings @ kernel + bias - served["serving_default/logits"])) <= 1e-5

    window, hop = config["sequence_config"]["crop_frames"], config["sequence_config"]["window_hop"]
    counts = served["serve_audio/window_count"]
    for i, wav in enumerate(audio):  # the training-side path: package decode + resample + features + windows
        decoded, rate = tf.audio.decode_wav(wav)
        samples = resample(tf.reduce_mean(decoded, axis=1), int(rate), 22050).numpy()
        features = compute_features(samples)
        starts = window_starts(len(features["mel"]), window, hop).numpy()
        windows = {name: np.stack([features[name][s:s + window] for s in starts]) for name in ("mel", "mfcc")}
        window_embeddings, _ = reference({**windows, "length": np.full(len(starts), window, "int32")},
                                         training=False)
        window_embeddings = np.asarray(window_embeddings)
        assert counts[i] == len(starts)
        row = served["serve_audio/window_embeddings"][i]
        assert np.max(np.abs(row[:counts[i]] - window_embeddings)) <= 1e-5 and not row[counts[i]:].any()
        assert np.max(np.abs(served["serve_audio/embeddings"][i] - window_embeddings.mean(axis=0))) <= 1e-5
    # the mean embedding maps onto the mean logits (the tag layer is linear)
    assert np.max(np.abs(served["serve_audio/embeddings"] @ kernel + bias - served["serve_audio/logits"])) <= 1e-5


def prediction_log_class():
    """tensorflow_serving's PredictionLog message, declared from its .proto field numbers (the
    tensorflow-serving-api package is not installed), in the default pool beside TensorProto."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow.core.framework import tensor_pb2  # noqa: F401  (puts TensorProto in the default pool)

    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("warmupcheck.PredictionLog"))
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(name="warmupcheck.proto", package="warmupcheck", syntax="proto3",
                                               dependency=["tensorflow/core/framework/tensor.proto"])
    string, message, optional, repeated = 9, 11, 1, 3

    def add(name, fields):
        m = proto.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            m.field.add(name=field_name, number=number, type=kind, type_name=type_name, label=label)
        return m

    add("ModelSpec", [("name", 1, string, None, optional), ("signature_name", 3, string, None, optional)])
    request = add("PredictRequest", [("model_spec", 1, message, ".warmupcheck.ModelSpec", optional),
                                     ("inputs", 2, message, ".warmupcheck.PredictRequest.InputsEntry", repeated)])
    entry = request.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=string, label=optional)
    entry.field.add(name="value", number=2, type=message, type_name=".tensorflow.TensorProto", label=optional)
    add("PredictLog", [("request", 1, message, ".warmupcheck.PredictRequest", optional)])
    add("PredictionLog", [("predict_log", 6, message, ".warmupcheck.PredictLog", optional)])
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("warmupcheck.PredictionLog"))


def test_warmup_records_are_predict_requests_the_model_accepts(emotion_run, tmp_path):
    export = export_run(emotion_run, "warm", tmp_path)
    log_class = prediction_log_class()
    loaded = tf.saved_model.load(str(export))
    seen = []
    for record in tf.data.TFRecordDataset(str(export / "assets.extra" / "tf_serving_warmup_requests")):
        log = log_class.FromString(record.numpy())
        req = log.predict_log.request
        assert req.model_spec.name == "warm"
        inputs = {key: tf.make_ndarray(value) for key, value in req.inputs.items()}
        outputs = loaded.signatures[req.model_spec.signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert outputs["embeddings" if req.model_spec.signature_name == "embeddings" else "probabilities"
                       ].shape[0] == 1
        seen.append(req.model_spec.signature_name)
    assert sorted(seen) == sorted(loaded.signatures) == ["embeddings", "serve_audio", "serving_default"]


def test_versions_increase_never_overwrite_and_a_failed_export_leaves_nothing(emotion_run, tmp_path, monkeypatch):
    import keras_music.serving.warmup as warmup_module

    first = export_run(emotion_run, "m", tmp_path)
    second = export_run(emotion_run, "m", tmp_path)
    assert (first.name, second.name) == ("1", "2")
    before = (first / "saved_model.pb").read_bytes()
    with pytest.raises(ExportError, match="already exists; versions are never overwritten"):
        export_run(emotion_run, "m", tmp_path, version=1)
    assert (first / "saved_model.pb").read_bytes() == before

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(warmup_module, "prediction_log", broken)
    with pytest.raises(OSError, match="disk full"):
        export_run(emotion_run, "m", tmp_path)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no version 3, no temp folder
    with pytest.raises(ExportError, match="model name"):
        export_run(emotion_run, "../escape", tmp_path)


def test_genre_export_serves_the_raw_columns(genre_run, tmp_path):
    from keras_music.training.common import load_run
    from keras_music.data.genre import genre_dataset
    from keras_music.training import load_genre_data

    export = export_run(genre_run, None, tmp_path / "models")
    assert export == tmp_path / "models" / "genre_mlp" / "1"
    model, config = load_run(genre_run)
    frame = load_genre_data("demo", len(config["class_names"])).head(20)
    columns = next(iter(genre_dataset(frame, "full", 20)))
    served = run_fresh(export, {f"serving_default/{k}": v.numpy() for k, v in columns.items()}, tmp_path)
    expected = model.predict(columns, verbose=0)
    assert np.max(np.abs(served["serving_default/probabilities"] - expected)) <= 1e-5
    assert not [op for op in graph_ops(export) if op.startswith("IO>")]


def test_f1_thresholds_pick_the_best_cut():
    probabilities = np.array([[0.9, 0.2], [0.7, 0.4], [0.4, 0.6], [0.1, 0.8]])
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], "float32")
    mask = np.array([[1, 1], [1, 1], [1, 1], [1, 0]], "float32")
    thresholds = f1_thresholds(probabilities, labels, mask)
    assert thresholds == [0.7, 0.5]  # tag 0: 0.7 separates perfectly; tag 1 has no positive -> 0.5


def test_per_clip_tagger_exports_its_features_signature(cal500_labels, tmp_path):
    from keras_music.data.emotion import load_emotion_data
    from keras_music.data.sequences import SequenceConfig
    from keras_music.training.common import load_run
    from keras_music.training import train_emotion

    data = str(cal500_labels.parent)
    train_emotion(data, tmp_path / "run", TagMLPConfig(), SequenceConfig(),
                  TrainingConfig(epochs=2, min_epochs=0, validation_fraction=0.15, test_fraction=0.15), verbose=0)
    export = export_run(tmp_path / "run", None, tmp_path / "models")
    assert export == tmp_path / "models" / "emotion_tag_mlp" / "1"
    model, config = load_run(tmp_path / "run")
    emotion = load_emotion_data(data)
    features = emotion.clip_vectors(emotion.tags.clip_ids[:9])
    served = run_fresh(export, {"serving_default/features": features, "embeddings/features": features}, tmp_path)
    expected = 1 / (1 + np.exp(-np.asarray(model({"features": features}, training=False))))
    assert np.max(np.abs(served["serving_default/probabilities"] - expected)) <= 1e-5
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert "serve_audio" not in metadata["signatures"] and len(metadata["thresholds"]) == 18
    kernel, bias = model.get_layer("logits").get_weights()
    embeddings = served["embeddings/embeddings"]
    assert embeddings.shape == (9, kernel.shape[0]) and metadata["embedding_width"] == kernel.shape[0]
    assert np.max(np.abs(embeddings @ kernel + bias - served["serving_default/logits"])) <= 1e-5


@pytest.mark.slow
def test_musicnn_head_export_serves_16khz_audio_in_core_ops(musicnn_store, tmp_path):
    """A pretrained-front-end family exports like any tagger: its recipe (16 kHz, musicnn's
    float16 log compression) runs in the graph, with no keras_music and no tensorflow-io."""
    import dataclasses

    import keras

    from keras_music.audio.decoding import load_audio
    from keras_music.audio.frontend import compute_features
    from keras_music.config import EMOTION_TRAINING, RECIPES
    from keras_music.models.musicnn import MUSICNN_TAGS, build_musicnn
    from keras_music.models.musicnn_head import FAMILY, MusicnnHeadConfig
    from keras_music.scoring import window_starts
    from keras_music.training import train_emotion

    run = tmp_path / "run"
    train_emotion(str(musicnn_store / "store"), run, MusicnnHeadConfig(), FAMILY.sequence_config(),
                  dataclasses.replace(EMOTION_TRAINING, epochs=2, min_epochs=1), labels=str(musicnn_store / "labels.csv"),
                  verbose=0)
    export = export_run(run, "emotion_musicnn", tmp_path / "models")
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert metadata["sample_rate"] == 16000 and metadata["recipe"]["mel_compression"] == "musicnn"
    assert metadata["thresholds_source"].startswith("best F1 on")  # the run's --labels found its clips
    assert not [op for op in graph_ops(export) if op.startswith("IO>")]
    wavs = [musicnn_store / "audio" / f"C00{i}.wav" for i in range(3)]
    served = run_fresh(export, {"serve_audio/audio": np.array([p.read_bytes() for p in wavs], dtype=object)}, tmp_path)
    model = keras.saving.load_model(run / "model.keras")
    recipe = RECIPES["musicnn"]
    window, hop = FAMILY.sequences["crop_frames"], FAMILY.sequences["window_hop"]
    # musicnn's own 50 MSD tags come from the same pass (metadata.json says how to read them)
    assert list(metadata["tag_sets"]) == ["msd"]
    assert metadata["tag_sets"]["msd"]["labels"] == MUSICNN_TAGS["MSD_musicnn"]
    assert "not by keras_music" in metadata["tag_sets"]["msd"]["source"]
    assert "msd_probabilities" in metadata["signatures"]["serve_audio"]
    musicnn = build_musicnn("MSD_musicnn")
    for i, (path, served_logits) in enumerate(zip(wavs, served["serve_audio/logits"])):
        mel = compute_features(load_audio(path, recipe), recipe)["mel"]
        starts = window_starts(len(mel), window, hop).numpy()
        width = min(window, len(mel))
        windows = {"mel": np.stack([mel[s:s + width] for s in starts]), "length": np.full(len(starts), width, "int32")}
        logits = model(windows, training=False)
        assert np.max(np.abs(served_logits - np.asarray(logits).mean(axis=0))) <= 1e-4
        tag_logits = musicnn.predict(windows, verbose=0)["logits"]
        count = served["serve_audio/window_count"][i]
        np.testing.assert_allclose(served["serve_audio/msd_window_logits"][i][:count], tag_logits, atol=1e-4)
        np.testing.assert_allclose(served["serve_audio/msd_probabilities"][i],
                                   1 / (1 + np.exp(-tag_logits.mean(axis=0))), atol=1e-5)


def test_window_hop_scores_fewer_windows_and_says_so(emotion_run, tmp_path, audio_dir):
    """`export_run(window_hop=...)` (`export --window-hop`): serve_audio scores windows every that many
    frames (the windows `scoring.window_starts` gives), metadata.json records it and the run's own hop;
    a hop that makes no sense is refused by name, before anything is written."""
    import tensorflow as tf

    from keras_music.config import FeatureRecipe
    from keras_music.scoring import window_starts
    from keras_music.serving import ExportError
    from keras_music.training.common import load_run

    _, config = load_run(emotion_run)
    window, trained = config["sequence_config"]["crop_frames"], config["sequence_config"]["window_hop"]
    export = export_run(emotion_run, "sparse", tmp_path / "models", window_hop=window)
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert (metadata["window_hop_frames"], metadata["trained_window_hop_frames"]) == (window, trained)
    wav = (audio_dir / "mozart_k545_bright_22k_mono_16bit.wav").read_bytes()
    served = tf.saved_model.load(str(export)).signatures["serve_audio"](audio=tf.constant([wav]))
    frames = FeatureRecipe.from_dict(metadata["recipe"]).num_frames(12 * 22050)  # the 12 s file's frames
    assert int(served["window_count"][0]) == len(window_starts(frames, window, window)) < \
        len(window_starts(frames, window, trained))
    for bad in (0, -3, 2.5):
        with pytest.raises(ExportError, match="window_hop="):
            export_run(emotion_run, "bad", tmp_path / "models", window_hop=bad)
    assert not (tmp_path / "models" / "bad").exists()
