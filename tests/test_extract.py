"""Feature store + extraction: contents, bad files reported, resume after interruption."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from keras_music.audio.decoding import load_audio
from keras_music.audio.frontend import compute_features
from keras_music.config import FeatureRecipe
from keras_music.data.store import FeatureStore, StoreError
from keras_music.data.extraction import extract_folder
from tests.conftest import copy_shared_audio


@pytest.fixture
def audio_folder(tmp_path, audio_dir):
    """The shared clips plus, in a sub-folder, one corrupt and one silent file."""
    folder = copy_shared_audio(audio_dir, tmp_path / "audio")
    with wave.open(str(folder / "bad" / "silent.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(22050), out.writeframes(b"\0\0" * 4000)
    return folder


def stored_clips(store: FeatureStore) -> dict[str, dict]:
    return {c["clip_id"].decode(): {k: np.asarray(v) for k, v in c.items()}
            for c in store.dataset().as_numpy_iterator()}


def test_extraction_stores_every_good_clip_and_reports_bad_ones(audio_folder, tmp_path):
    summary = extract_folder(audio_folder, tmp_path / "store", workers=1, shard_size=3)
    assert summary.found == 9 and summary.written == 7 and summary.skipped == 0
    reasons = dict(summary.failed)
    assert "cannot decode" in reasons[str(audio_folder / "bad" / "corrupt.mp3")]
    assert "silent" in reasons[str(audio_folder / "bad" / "silent.wav")]

    store = FeatureStore(tmp_path / "store")
    assert store.recipe == FeatureRecipe()
    assert len(store.shard_paths()) == 3  # 7 clips, 3 per shard
    clips = stored_clips(store)
    entries = {e["clip_id"]: e for e in store.manifest()}
    assert set(clips) == set(entries) and len(clips) == 7
    flac = "mozart_k545_bright_44k_stereo_16bit"
    features = compute_features(load_audio(audio_folder / f"{flac}.flac"))
    mel, mfcc = features["mel"], features["mfcc"]
    assert clips[flac]["mel"].shape == (entries[flac]["frames"], 64) == mel.shape
    assert clips[flac]["mfcc"].shape == (mel.shape[0], 20)
    np.testing.assert_allclose(clips[flac]["mel"], mel, atol=0.07)  # float16 storage of dB values
    np.testing.assert_allclose(clips[flac]["mfcc"], mfcc, atol=0.5)


def test_extraction_resumes_after_an_interruption(audio_folder, tmp_path):
    out = tmp_path / "store"
    first = extract_folder(audio_folder, out, workers=1, shard_size=2, limit=3)  # a run cut short
    assert first.written == 2 and len(first.failed) == 1  # bach (mp3, wav), then bad/corrupt.mp3
    shards = out / "shards"
    # What a kill leaves behind: a half-written shard, and a shard renamed just before the
    # manifest was updated. Neither may be read, and both must go.
    (shards / "00007.tfrecord.tmp").write_bytes(b"half a shard")
    shutil.copy(shards / "00000.tfrecord", shards / "00009.tfrecord")
    assert len(stored_clips(FeatureStore(out))) == 2

    second = extract_folder(audio_folder, out, workers=2, shard_size=2)
    assert second.skipped == 2 and second.written == 5
    assert not (shards / "00007.tfrecord.tmp").exists() and not (shards / "00009.tfrecord").exists()
    store = FeatureStore(out)
    ids = [e["clip_id"] for e in store.manifest()]
    assert len(ids) == len(set(ids)) == 7
    assert sorted(stored_clips(store)) == sorted(ids)

    third = extract_folder(audio_folder, out, workers=1)
    assert third.written == 0 and third.skipped == 7


def test_a_store_refuses_another_recipe(audio_folder, tmp_path):
    extract_folder(audio_folder, tmp_path / "store", workers=1, limit=1)
    with pytest.raises(StoreError, match="another recipe"):
        extract_folder(audio_folder, tmp_path / "store", FeatureRecipe(n_mels=96), workers=1)


def test_duplicate_clip_ids_are_reported(audio_folder, tmp_path):
    shutil.copy(audio_folder / "mozart_k545_bright_22k_mono_16bit.wav", audio_folder / "bad")
    summary = extract_folder(audio_folder, tmp_path / "store", workers=1)
    assert any("duplicate clip id" in reason for _, reason in summary.failed)
    assert summary.written == 7


def test_cli_extract_dry_run_and_exit_status(audio_folder, tmp_path):
    out = tmp_path / "store"
    dry = subprocess.run([sys.executable, "-m", "keras_music.extract", str(audio_folder), "--out", str(out),
                          "--dry-run"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and dry.stdout.count("extract ") == 9 and not out.exists()
    run = subprocess.run([sys.executable, "-m", "keras_music.extract", str(audio_folder), "--out", str(out),
                          "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]  # some files failed: reported, others stored
    assert "7 extracted" in run.stdout and "corrupt.mp3" in run.stdout and "Traceback" not in run.stderr
    # Progress in a log (stderr is a pipe here): whole lines, no carriage returns; the last says 9/9.
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert "\r" not in run.stderr and progress and "9/9, 2 failed" in progress[-1]
    missing = subprocess.run([sys.executable, "-m", "keras_music.extract", str(tmp_path / "nowhere"), "--out",
                              str(out)], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = subprocess.run([sys.executable, "-m", "keras_music.extract", str(tmp_path / "empty"), "--out",
                            str(tmp_path / "empty-store")], capture_output=True, text=True, timeout=300)
    assert empty.returncode == 1 and "No audio files" in empty.stderr and not (tmp_path / "empty-store").exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_cli_extract_lists_the_folder_once(tmp_path, audio_dir, monkeypatch, dry_run):
    # The early check (a typo answers before TensorFlow) lists the folder; extraction reuses that
    # list instead of walking a large or network folder a second time.
    from keras_music import extract

    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", folder)
    walks = []
    rglob = Path.rglob
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: walks.append(self) or rglob(self, pattern))
    status = extract.main([str(folder), "--out", str(tmp_path / "store"), "--workers", "1"]
                          + (["--dry-run"] if dry_run else []))
    assert status == 0
    assert walks == [folder]
    assert (tmp_path / "store").exists() != dry_run


def test_recipe_flag_takes_a_named_recipe_or_a_json_file(tmp_path):
    from keras_music.config import RECIPES, config_to_dict, save_json
    from keras_music.extract import parse_args, recipe_from_args

    assert recipe_from_args(parse_args(["a", "--out", "s", "--recipe", "musicnn"])) == RECIPES["musicnn"]
    assert recipe_from_args(parse_args(["a", "--out", "s"])) == FeatureRecipe()
    save_json(tmp_path / "recipe.json", config_to_dict(FeatureRecipe(n_mels=32)))
    assert recipe_from_args(parse_args(["a", "--out", "s", "--recipe", str(tmp_path / "recipe.json"),
                                        "--hop-length", "512"])) == FeatureRecipe(n_mels=32, hop_length=512)
    with pytest.raises(FileNotFoundError, match="named recipe"):
        recipe_from_args(parse_args(["a", "--out", "s", "--recipe", "nope"]))


def test_musicnn_store_holds_only_mel(tmp_path, audio_dir):
    from keras_music.config import RECIPES

    folder = tmp_path / "audio"
    folder.mkdir()
    shutil.copy(audio_dir / "mozart_k545_bright_22k_mono_16bit.wav", folder)
    summary = extract_folder(folder, tmp_path / "store", RECIPES["musicnn"], workers=1)
    assert summary.written == 1
    store = FeatureStore(tmp_path / "store")
    assert store.features == {"mel": 96}
    (clip,) = stored_clips(store).values()
    assert clip["mel"].shape == (1 + 12 * 16000 // 256, 96) and "mfcc" not in clip


def test_beam_options_need_a_runner(tmp_path):
    result = subprocess.run([sys.executable, "-m", "keras_music.extract", str(tmp_path), "--out", str(tmp_path / "s"),
                             "--direct_num_workers", "2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Beam pipeline options need --runner" in result.stderr


def test_remote_paths_are_refused_where_they_cannot_work(tmp_path):
    def extract(*args):
        return subprocess.run([sys.executable, "-m", "keras_music.extract", *args], capture_output=True, text=True,
                              timeout=120)

    remote_store = extract(str(tmp_path), "--out", "gs://bucket/store", "--runner", "DirectRunner")
    assert remote_store.returncode == 2 and "a store on a remote filesystem is not supported" in remote_store.stderr
    assert not (tmp_path / "gs:").exists() and not Path("gs:").exists()
    remote_audio = extract("gs://bucket/music", "--out", str(tmp_path / "s"))
    assert remote_audio.returncode == 2 and "needs the Beam pipeline (--runner)" in remote_audio.stderr
