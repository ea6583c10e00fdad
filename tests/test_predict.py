"""Tag audio files with an exported model: the same scores as evaluate and serve_audio, formats, bad files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_music.audio.decoding import wav_bytes

REPO = Path(__file__).resolve().parents[1]


def predict(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "keras_music.predict", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_predict_folder_tags_every_readable_file_and_reports_the_rest(export, audio_dir, tmp_path):
    folder = tmp_path / "music"
    shutil.copytree(audio_dir, folder)
    (folder / "notes.mp3").write_text("not audio at all\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "empty.wav").write_bytes(b"")
    result = predict(folder, "--model", export.parent)
    assert result.returncode == 1  # some files failed
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    good = sorted(p.name for p in audio_dir.iterdir() if p.suffix in (".wav", ".mp3", ".flac", ".ogg"))
    assert sorted(Path(r["file"]).name for r in rows) == good
    tags = json.loads((export / "assets" / "metadata.json").read_text())["labels"]
    for row in rows:
        assert all(0.0 <= float(row[t]) <= 1.0 for t in tags) and float(row["seconds"]) > 5
    assert "skipped" in result.stderr and "notes.mp3" in result.stderr and "empty.wav: " in result.stderr
    assert "empty file (0 bytes)" in result.stderr and "Traceback" not in result.stderr
    assert f"Tagged {len(good)} file(s)" in result.stderr


@pytest.mark.slow
def test_long_file_per_window_json_and_file_output(export, tmp_path):
    from keras_music.scoring import window_starts

    rate = 22050
    t = np.arange(int(47 * rate)) / rate
    long_file = tmp_path / "long.wav"
    long_file.write_bytes(wav_bytes(0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(t)), rate))
    out = tmp_path / "tags.json"
    result = predict(long_file, "--model", export, "--format", "json", "--per-window", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""
    (entry,) = json.loads(out.read_text())
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    window, hop = metadata["window_frames"], metadata["window_hop_frames"]  # the model's own rule
    starts = window_starts(1 + len(t) // 1024, window, hop).numpy()
    assert [w["start"] for w in entry["windows"]] == [round(s * 1024 / rate, 3) for s in starts]
    assert entry["windows"][-1]["end"] == 47.0 and entry["windows"][0]["end"] == round(window * 1024 / rate, 3)
    labels = list(entry["probabilities"])
    window_logits = np.array([[np.log(w["probabilities"][t] / (1 - w["probabilities"][t])) for t in labels]
                              for w in entry["windows"]])
    expected = 1 / (1 + np.exp(-window_logits.mean(axis=0)))
    np.testing.assert_allclose([entry["probabilities"][t] for t in labels], expected, atol=1e-4)
    assert entry["tags"] == [t for t in labels if entry["probabilities"][t] >= metadata["thresholds"][t]]


def three_minute_wav(audio_dir: Path, path: Path) -> Path:
    """A 3-minute 44.1 kHz stereo 16-bit WAV: the shared Bach chorale looped (its own PCM, no requantisation)."""
    import wave

    with wave.open(str(audio_dir / "bach_chorale_bwv269_calm_44k_stereo_16bit.wav")) as source:
        params, pcm = source.getparams(), source.readframes(source.getnframes())
    frames = 180 * params.framerate
    looped = (pcm * (frames // params.nframes + 1))[:frames * params.nchannels * params.sampwidth]
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(looped)
    return path


@pytest.mark.slow
def test_a_three_minute_file_scores_the_same_through_evaluate_serve_audio_and_predict(
        emotion_run, export, audio_dir, tmp_path, capsys):
    """Tolerance 1e-5 on probabilities (measured: ~1e-6). With --chunk-seconds 60 predict reads the file
    block by block (`audio.read_spans`, soxr's stream: the same samples); with 600 it decodes it whole as
    evaluate does. serve_audio gets the audio resampled by the recipe's resampler, as predict sends it
    (sent at 44.1 kHz, the graph's FFT resampler applies: that difference is reported, not asserted).
    Sources of difference: predict re-encodes the resampled audio
    as 16-bit PCM for serve_audio (+-1 LSB, about 3e-5 of full scale); the graph's float32 mean
    of the window logits vs evaluate's float64 one; chunked STFT frames equal to the whole
    file's up to float rounding. A float16 feature store (what `evaluate` reads after
    `extract`) moves features by up to ~0.03 dB, so it is only reported here. With --embeddings, the file's
    embedding (mean of its window embeddings) is checked the same way, whole and in chunks."""
    import keras
    import tensorflow as tf

    from keras_music.audio.decoding import decode_audio, resample_like, wav_bytes
    from keras_music.audio.frontend import compute_features
    from keras_music.data.sequences import ClipSource
    from keras_music.training.common import load_run
    from keras_music.predict import main
    from keras_music.tagging import Tagger
    from keras_music.scoring import WindowMeans, chunk_plan, window_dataset

    song = three_minute_wav(audio_dir, tmp_path / "three_minutes.wav")
    model, config = load_run(emotion_run)
    embed = keras.Model(model.input, model.get_layer("logits").input)  # the vector before the tag layer
    sequence_config = config["sequence_config"]
    tagger = Tagger(export)
    resampled = resample_like(*decode_audio(song), tagger.recipe)

    def evaluate_path(dtype):  # package features of the file -> evaluate's windows -> mean logits
        features = compute_features(resampled, tagger.recipe)
        mel, mfcc = features["mel"], features["mfcc"]
        clip = {"clip_id": "song", "mel": mel.astype(dtype).astype("float32"),
                "mfcc": mfcc.astype(dtype).astype("float32")}
        source = ClipSource(["song"], lambda ids: tf.data.Dataset.from_tensors(clip))
        means = WindowMeans(1, len(config["tags"]))
        embedding = WindowMeans(1, embed.output.shape[-1])
        for inputs, row in window_dataset(source, ["song"], sequence_config["crop_frames"],
                                          sequence_config["window_hop"], sequence_config["batch_size"]):
            means.add(row.numpy(), model(inputs, training=False))
            embedding.add(row.numpy(), embed(inputs, training=False))
        return 1 / (1 + np.exp(-means.means()[0])), int(means.counts[0]), embedding.means()[0]

    evaluated, windows, evaluated_embedding = evaluate_path("float32")
    from_store, _, _ = evaluate_path("float16")
    serve_audio = tf.saved_model.load(str(export)).signatures["serve_audio"]
    served = serve_audio(audio=tf.constant([wav_bytes(resampled, tagger.sample_rate)]))
    assert served["window_count"].numpy().tolist() == [windows] and windows > 100
    served = served["probabilities"].numpy()[0]
    served_44k = serve_audio(audio=tf.constant([song.read_bytes()]))["probabilities"].numpy()[0]
    predicted, embeddings = {}, {}
    assert len(chunk_plan(180 * 22050, tagger.recipe, tagger.window, tagger.hop, 60 * 22050)) == 4
    for chunk in ("600", "60"):  # the whole file in one call, and in 4 chunks of up to 60 s
        out = tmp_path / f"chunks-{chunk}.json"
        assert main([str(song), "--model", str(export), "--format", "json", "--out", str(out),
                     "--chunk-seconds", chunk, "--embeddings"]) == 0
        (entry,) = json.loads(out.read_text())
        predicted[chunk] = np.array([entry["probabilities"][t] for t in config["tags"]])
        embeddings[chunk] = np.array(entry["embedding"])
    differences = {"evaluate vs serve_audio": np.abs(evaluated - served).max(),
                   "evaluate vs predict": np.abs(evaluated - predicted["600"]).max(),
                   "serve_audio vs predict": np.abs(served - predicted["600"]).max(),
                   "predict whole vs 60 s chunks": np.abs(predicted["600"] - predicted["60"]).max(),
                   "evaluate float16 store vs float32": np.abs(from_store - evaluated).max(),
                   "serve_audio at 44.1 kHz (graph FFT resampler) vs evaluate (soxr)":
                       np.abs(served_44k - evaluated).max()}
    with capsys.disabled():
        print(f"\n3-minute file, {windows} windows; max abs difference in probabilities:")
        for name, value in differences.items():
            print(f"  {name}: {value:.2e}")
    assert max(v for k, v in differences.items() if "float16" not in k and "44.1" not in k) <= 1e-5
    assert differences["evaluate float16 store vs float32"] <= 1e-2
    embedding_differences = {"evaluate vs predict": np.abs(evaluated_embedding - embeddings["600"]).max(),
                             "predict whole vs 60 s chunks": np.abs(embeddings["600"] - embeddings["60"]).max()}
    with capsys.disabled():
        print(f"  embeddings (width {len(evaluated_embedding)}, max abs {np.abs(evaluated_embedding).max():.3f}): "
              + ", ".join(f"{name} {value:.2e}" for name, value in embedding_differences.items()))
    # Embeddings are not squashed by a sigmoid, so predict's 16-bit re-encoding shows more than in the
    # probabilities (measured 2e-5 of a max of 0.8; on the re-encoded samples the embeddings agree within
    # 1e-5: test_embeddings_round_trip_...). Chunks change nothing.
    assert np.abs(evaluated_embedding).max() > 0 and embedding_differences["evaluate vs predict"] <= 1e-4
    assert embedding_differences["predict whole vs 60 s chunks"] <= 1e-5


@pytest.mark.slow
def test_bad_model_folder_is_one_line_error(audio_dir, tmp_path):
    result = predict(audio_dir, "--model", tmp_path / "nothing")
    assert result.returncode == 1 and "no saved_model.pb there" in result.stderr and "Traceback" not in result.stderr
    typo = predict(audio_dir, "--model", "emotion_5q")  # a bare name: neither a folder here nor a packaged model
    assert typo.returncode == 1 and "nor a packaged model (those are emotion_4q, emotion_4q_dense)" in typo.stderr


def test_nothing_to_tag_is_an_error_before_any_model_loads(tmp_path):
    """A mistyped path or a folder without audio: exit 1 naming it, no CSV header on stdout, and the
    default model is not built (a typo costs no model load)."""
    env = {**os.environ, "KERAS_MUSIC_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here\n")
    for paths, expected in [([tmp_path / "typo.mp3"], f"error: no such file or folder: {tmp_path / 'typo.mp3'}"),
                            ([empty, tmp_path / "typo.mp3"], f"error: {empty}: No audio files in")]:
        result = subprocess.run([sys.executable, "-m", "keras_music.predict", *map(str, paths)], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 1 and expected in result.stderr, result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert not (tmp_path / "cache" / "models").exists()


@pytest.mark.slow
def test_collection_out_appends_per_file_resumes_and_batches_like_single_calls(export, audio_dir, tmp_path):
    """One file per call (--batch-size 1) and batched calls give the same scores (tolerance 1e-6; each file
    is scored alone inside a batch); a killed run's torn line is dropped and only missing files are redone;
    a failure is recorded and not retried; another model is a one-line error."""
    folder = tmp_path / "music"
    shutil.copytree(audio_dir, folder)
    (folder / "notes.mp3").write_text("not audio at all\n")
    out, plots = tmp_path / "tags.jsonl", tmp_path / "plots"
    result = predict(folder, "--model", export, "--out", out, "--batch-size", "3", "--jobs", "2", "--plot", plots)
    assert result.returncode == 1 and "notes.mp3" in result.stderr and "Traceback" not in result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    good = sorted(str(p) for p in folder.iterdir() if p.suffix in (".wav", ".mp3", ".flac", ".ogg")
                  and p.name != "notes.mp3")
    assert sorted(r["file"] for r in records if "error" not in r) == good
    (bad,) = [r for r in records if "error" in r]
    assert bad["file"].endswith("notes.mp3") and "cannot decode" in bad["error"]
    assert len({r["model"] for r in records}) == 1 and "windows" not in records[0]
    assert sorted(p.name for p in plots.iterdir()) == sorted(Path(f).name + ".png" for f in good)

    single = predict(folder, "--model", export, "--batch-size", "1", "--jobs", "1")
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(single.stdout))}
    for record in records:
        if "error" not in record:
            for tag, p in record["probabilities"].items():
                assert abs(float(rows[record["file"]][tag]) - p) <= 1e-4  # csv keeps 4 decimals

    lines = out.read_text().splitlines(keepends=True)
    lost_lines = [line for line in lines if '"error"' not in line][-2:]
    kept = [line for line in lines if line not in lost_lines]
    out.write_text("".join(kept) + lost_lines[0][:20])  # a killed run: 2 records lost, one torn
    lost = {json.loads(line)["file"] for line in lost_lines}
    again = predict(folder, "--model", export, "--out", out)
    assert again.returncode == 1 and "failed in an earlier run and were not retried" in again.stderr
    assert f"Tagged {len(lost)} file(s)" in again.stderr and "notes.mp3: " not in again.stderr
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["file"] for r in resumed if "error" not in r) == good and len(resumed) == len(records)

    out.write_text(out.read_text().replace(records[0]["model"], "other/1:0123456789ab"))
    mixed = predict(folder, "--model", export, "--out", out)
    assert mixed.returncode == 1 and "written with model other/1:0123456789ab" in mixed.stderr
    assert "Traceback" not in mixed.stderr


@pytest.mark.slow
def test_csv_out_resumes_and_refuses_another_layout(export, audio_dir, tmp_path):
    song = audio_dir / "mozart_k545_bright_22k_mono_16bit.wav"
    out = tmp_path / "tags.csv"
    assert predict(song, "--model", export, "--out", out).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["file"] for r in rows] == [str(song)] and rows[0]["error"] == "" and rows[0]["model"]
    again = predict(song, "--model", export, "--out", out)
    assert again.returncode == 0 and "1 file(s) already there" in again.stderr and out.read_text().count("\n") == 2
    windows = predict(song, "--model", export, "--out", out, "--per-window")
    assert windows.returncode == 1 and "are not this run's" in windows.stderr and "Traceback" not in windows.stderr


@pytest.mark.slow
def test_embeddings_round_trip_through_jsonl_and_csv_and_a_layout_change_is_an_error(
        emotion_run, export, audio_dir, tmp_path, capsys):
    """`--embeddings`: each record's `embedding` is the mean of the file's window embeddings, computed here
    from the Keras model on the audio predict sends (its soxr-resampled samples as 16-bit WAV); tolerance
    1e-5. Resuming a file written without embeddings with them (or the other way) is an error."""
    import keras
    import tensorflow as tf

    from keras_music.audio.decoding import decode_audio, resample_like
    from keras_music.audio.frontend import compute_features
    from keras_music.predict import main
    from keras_music.tagging import Tagger
    from keras_music.scoring import window_starts
    from keras_music.training.common import load_run

    model, config = load_run(emotion_run)
    embed = keras.Model(model.input, model.get_layer("logits").input)
    tagger = Tagger(export)
    window, hop = tagger.window, tagger.hop
    songs = [audio_dir / "mozart_k545_bright_44k_stereo_16bit.flac", audio_dir / "bach_chorale_bwv269_calm_22k_mono_64k.mp3"]
    expected = {}
    for song in songs:
        samples = resample_like(*decode_audio(song), tagger.recipe)
        decoded, _ = tf.audio.decode_wav(wav_bytes(samples, tagger.sample_rate))  # what serve_audio receives
        features = compute_features(decoded.numpy()[:, 0], tagger.recipe)
        starts = window_starts(len(features["mel"]), window, hop).numpy()
        windows = {name: np.stack([features[name][s:s + window] for s in starts]) for name in ("mel", "mfcc")}
        vectors = np.asarray(embed({**windows, "length": np.full(len(starts), window, "int32")}, training=False))
        expected[str(song)] = vectors.mean(axis=0)

    out = tmp_path / "music.jsonl"
    assert main([*map(str, songs), "--model", str(export), "--embeddings", "--out", str(out)]) == 0
    records = {r["file"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == sorted(expected)
    width = json.loads((export / "assets" / "metadata.json").read_text())["embedding_width"]
    for name, record in records.items():
        assert len(record["embedding"]) == width and all(isinstance(v, float) for v in record["embedding"])
        difference = np.max(np.abs(np.array(record["embedding"]) - expected[name]))
        with capsys.disabled():
            print(f"\n{Path(name).name}: embedding max abs {np.abs(expected[name]).max():.3f}, predict vs Keras "
                  f"{difference:.2e}")
        assert difference <= 1e-5

    capsys.readouterr()
    assert main([*map(str, songs), "--model", str(export), "--out", str(out)]) == 1
    assert "written with embeddings" in capsys.readouterr().err
    plain = tmp_path / "plain.jsonl"
    assert main([str(songs[0]), "--model", str(export), "--out", str(plain)]) == 0
    assert main([str(songs[1]), "--model", str(export), "--embeddings", "--out", str(plain)]) == 1
    assert "written without embeddings" in capsys.readouterr().err
    assert len(plain.read_text().splitlines()) == 1  # nothing mixed in

    table = tmp_path / "music.csv"
    assert main([*map(str, songs), "--model", str(export), "--embeddings", "--out", str(table)]) == 0
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(table.read_text()))}
    for name, row in rows.items():
        assert [k for k in row if k.startswith("emb_")] == [f"emb_{i}" for i in range(width)]
        assert [float(row[f"emb_{i}"]) for i in range(width)] == records[name]["embedding"]
    capsys.readouterr()
    assert main([str(songs[0]), "--model", str(export), "--out", str(table)]) == 1
    assert "written with embeddings" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # CSV rows are windows with --per-window; embeddings are per file
        main([str(songs[0]), "--model", str(export), "--embeddings", "--per-window", "--format", "csv"])
    assert "--embeddings with --per-window needs --format json or jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["beethoven_op18no4_minor_48k_mono_24bit.wav", "mozart_k545_bright_44k_stereo_128k.mp3",
                                  "mozart_k545_bright_22k_mono_16bit.wav"])
def test_read_spans_are_exactly_the_whole_file_resampled(audio_dir, name):
    """Block-wise reading with soxr's stream gives the very samples of decoding and resampling the whole file."""
    from keras_music.audio.decoding import audio_length, load_audio, read_spans
    from keras_music.config import FeatureRecipe

    recipe = FeatureRecipe(max_seconds=None)
    path = audio_dir / name
    whole = load_audio(path, recipe)
    n = audio_length(path, recipe.sample_rate)
    assert abs(n - len(whole)) <= 0.01 * len(whole)  # MP3 headers estimate their length
    n = len(whole)
    spans = [(0, n // 3 + 100), (n // 3 - 5000, 2 * n // 3), (2 * n // 3 + 11, n)]  # overlaps and a gap
    parts = list(read_spans(path, recipe, spans))
    for part, (a, b) in zip(parts, spans):
        np.testing.assert_array_equal(part, whole[a:b])


def test_stream_chunks_are_the_plan_of_the_length_that_decodes(estimated_length_mp3s):
    """Files whose headers overstate their length, read block by block: the chunks and their samples are
    `chunk_plan` of the samples that decode whole, the last one ending where the audio ends."""
    from keras_music.audio.decoding import load_audio
    from keras_music.config import FeatureRecipe
    from keras_music.scoring import chunk_plan
    from keras_music.tagging.streaming import stream_chunks

    recipe = FeatureRecipe(max_seconds=None)
    window, hop, max_samples = 64, 32, 20 * recipe.sample_rate
    for name in ("vbr_no_xing", "cbr_no_info", "concatenated", "cut"):
        path = estimated_length_mp3s[name]
        whole = load_audio(path, recipe)
        expected = chunk_plan(len(whole), recipe, window, hop, max_samples)
        streamed = list(stream_chunks(path, recipe, window, hop, max_samples))
        assert [chunk for chunk, _ in streamed] == expected and len(expected) >= 2, name
        assert expected[-1].end == len(whole)
        for chunk, samples in streamed:
            np.testing.assert_array_equal(samples, whole[chunk.start:chunk.end], err_msg=name)


@pytest.mark.slow
def test_long_files_whose_headers_overstate_are_tagged_as_their_decoded_samples(export, estimated_length_mp3s,
                                                                                tmp_path):
    """MP3s over 60 s without a Xing/Info frame (and a cut one) take the block-wise path at --chunk-seconds 60
    and get the probabilities of scoring the samples that decode, whole (tolerance 1e-5, as for a
    complete file: predict's 16-bit WAV re-encoding is the same on both sides). A large shortfall
    warns once, naming the file; 0.2 s is refused as on the short path. Also what a user should
    not see: TensorFlow's cuInit and oneDNN lines, a file named twice on its error line."""
    import tensorflow as tf

    from keras_music.audio.decoding import decode_audio, resample_like
    from keras_music.tagging import Tagger

    tagger = Tagger(export)
    files = estimated_length_mp3s
    result = predict(*files.values(), "--model", export, "--format", "jsonl", "--chunk-seconds", 60)
    assert result.returncode == 1, result.stderr[-3000:]  # crumbs.mp3 is refused
    records = {Path(r["file"]).stem: r for r in map(json.loads, result.stdout.splitlines())}
    assert sorted(records) == sorted(set(files) - {"crumbs"})
    for name, record in records.items():
        whole = resample_like(*decode_audio(files[name]), tagger.recipe)
        served = tagger.serve_audio(audio=tf.constant([wav_bytes(whole, tagger.sample_rate)]))
        expected = served["probabilities"].numpy()[0]
        got = np.array([record["probabilities"][label] for label in tagger.labels])
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)
        assert record["seconds"] == round(len(whole) / tagger.sample_rate, 3)
        from_python = tagger.tag(files[name])  # the Tagger: the same path, the same numbers
        np.testing.assert_allclose([from_python.probabilities[t] for t in tagger.labels], got, atol=1e-6)
    lines = result.stderr.splitlines()
    for name in ("vbr_no_xing", "concatenated", "cut"):
        warned = [line for line in lines if "shorter than its header says" in line and f"{name}.mp3" in line]
        assert len(warned) == 1 and warned[0].count(f"{name}.mp3") == 1, lines
    # 0.1% short of its estimate: nothing to say.
    assert not any("cbr_no_info.mp3" in line for line in lines if "header" in line)
    (skipped,) = [line for line in lines if line.startswith("skipped")]
    assert skipped == f"skipped {files['crumbs']}: truncated: only 0.18 s decode of the 75.0 s its header " \
                      "announces (less than 1 s is not kept)."
    noise = [line for line in lines if any(text in line for text in ("E0000", "cuInit", "oneDNN"))]
    assert not noise and "Traceback" not in result.stderr


@pytest.mark.slow
def test_packaged_default_model_tags_files_without_model_flag(audio_dir, tmp_path, monkeypatch):
    """Right after install: no --model, the packaged 4Q model (musicnn_head on 16 kHz audio), built
    on first use into an empty cache of this test's own (other tests may have built the session's),
    then reused."""
    from keras_music.config import DEFAULT_EMOTION_MODEL
    from keras_music.tagging.presets import installed

    monkeypatch.setenv("KERAS_MUSIC_CACHE", str(tmp_path / "cache"))  # the predict process inherits it

    card = DEFAULT_EMOTION_MODEL / "MODEL_CARD.md"
    assert card.is_file() and "research use only" in card.read_text()
    result = predict(audio_dir, "--format", "json", "--embeddings")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "First use of the packaged model emotion_4q" in result.stderr
    records = json.loads(result.stdout)
    assert len(records) == len([p for p in audio_dir.iterdir() if p.suffix in (".wav", ".mp3", ".flac", ".ogg")])
    export = installed()
    assert export.is_relative_to(os.environ["KERAS_MUSIC_CACHE"]) and f"with {export};" in result.stderr
    metadata = json.loads((export / "assets" / "metadata.json").read_text())
    assert metadata["thresholds_source"].startswith("best F1 on")  # tuned when it was trained, shipped with it
    assert metadata["model"] == "musicnn_head" and metadata["sample_rate"] == 16000
    for record in records:
        probabilities = [record["probabilities"][q] for q in metadata["labels"]]
        assert all(0 <= p <= 1 for p in probabilities) and len(record["embedding"]) == metadata["embedding_width"]
    # Not the same answer for every file (a model that learned nothing would give one).
    assert len({max(r["probabilities"], key=r["probabilities"].get) for r in records}) > 1 or \
        np.std([list(r["probabilities"].values()) for r in records], axis=0).max() > 0.02
    # What a person reads: the quadrant's name, arousal and valence, and musicnn's MSD/MTT tags grouped.
    assert set(metadata["tag_sets"]) == {"msd", "mtt"} and "arousal" in metadata["signatures"]["serve_audio"]
    for record in records:
        assert record["quadrant"].startswith(max(record["probabilities"], key=record["probabilities"].get)[-2:].upper())
        assert 0 <= record["arousal"] <= 1 and 0 <= record["valence"] <= 1
        assert list(record["top_tags"]) == ["genre", "mood", "instrument", "vocals", "era", "sound"]
        assert all(len(names) == 3 for names in record["top_tags"].values())  # --top-k's default
        assert [len(record["tag_probabilities"][s]) for s in ("msd", "mtt")] == [50, 50]
    mozart = next(r for r in records if "mozart_k545_bright_44k_stereo_128k" in r["file"])
    assert mozart["quadrant"] == "Q1 happy/excited" and "piano" in mozart["top_tags"]["instrument"]
    # serve_audio's arousal and valence are the tagger's (keras_music.quadrants), in the graph TF Serving runs
    import tensorflow as tf

    from keras_music.audio.decoding import decode_audio, resample_like, wav_bytes
    from keras_music.config import FeatureRecipe
    recipe = FeatureRecipe.from_dict(metadata["recipe"])
    samples = resample_like(*decode_audio(Path(mozart["file"])), recipe)
    served = tf.saved_model.load(str(export)).signatures["serve_audio"](
        audio=tf.constant([wav_bytes(samples, recipe.sample_rate)]))
    assert float(served["arousal"][0]) == pytest.approx(mozart["arousal"], abs=1e-4)
    assert float(served["valence"][0]) == pytest.approx(mozart["valence"], abs=1e-4)
    np.testing.assert_allclose(served["msd_probabilities"][0].numpy(),
                               list(mozart["tag_probabilities"]["msd"].values()), atol=1e-5)

    table = predict(audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", "--top-k", "1")
    assert table.returncode == 0, table.stderr[-2000:]
    (row,) = csv.DictReader(io.StringIO(table.stdout))
    assert row["quadrant"] == "Q1 happy/excited" and row["instrument"] == "piano" and "," not in row["genre"]
    assert "rock" not in row  # the 100 tag probabilities: JSON records only


@pytest.mark.slow
def test_presets_by_name_score_their_windows(audio_dir):
    """`--model emotion_4q_dense` is the packaged model scoring a window every 93 frames (as trained);
    the default `emotion_4q` scores one every 372: fewer windows, the same kind of answer."""
    song = audio_dir / "mozart_k545_bright_22k_mono_16bit.wav"  # 12 s: 751 frames at 16 kHz
    windows = {}
    for model in ("emotion_4q", "emotion_4q_dense"):
        done = predict(song, "--model", model, "--format", "json", "--per-window")
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"/{model}/1;" in done.stderr
        (record,) = json.loads(done.stdout)
        windows[model] = [w["start"] for w in record["windows"]]
        assert record["quadrant"] == "Q1 happy/excited"
    assert len(windows["emotion_4q"]) == 3 and len(windows["emotion_4q_dense"]) == 8
    assert windows["emotion_4q"][1] == pytest.approx(372 * 256 / 16000, abs=1e-3)
