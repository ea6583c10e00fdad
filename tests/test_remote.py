"""Object storage from one machine (`keras_music.remote`): mirrors of stores and exports kept in a bucket,
against the Cloud Storage emulator on 127.0.0.1 (the `gcs_bucket` fixture), through Beam's filesystem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_music.errors import MissingPathError
from keras_music.remote import fetch, mirror, upload

pytest.importorskip("apache_beam", reason='object storage goes through Beam\'s filesystems: pip install "keras_music[beam]"')

REPO = Path(__file__).resolve().parents[1]


def test_upload_then_mirror_round_trips_and_refreshes_changed_files(gcs_bucket, tmp_path):
    folder = tmp_path / "export" / "tagger" / "3"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph" * 1000)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    upload(folder, "gs://music/mirror-test/tagger/3")
    local = mirror("gs://music/mirror-test/tagger/3", root=tmp_path / "cache")
    assert local.parts[-2:] == ("tagger", "3")  # NAME/VERSION kept: an export's identity reads them
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == [
        "saved_model.pb", "variables/variables.index"]
    assert (local / "saved_model.pb").read_bytes() == b"graph" * 1000
    gcs_bucket.blob("mirror-test/tagger/3/variables/variables.index").upload_from_string(b"a new index")
    assert mirror("gs://music/mirror-test/tagger/3", root=tmp_path / "cache") == local
    assert (local / "variables" / "variables.index").read_bytes() == b"a new index"
    with pytest.raises(MissingPathError, match="no files there"):
        mirror("gs://music/nothing-here", root=tmp_path / "cache")
    copied = fetch("gs://music/mirror-test/tagger/3/saved_model.pb", root=tmp_path / "files")
    assert copied.name == "saved_model.pb" and copied.read_bytes() == b"graph" * 1000
    with pytest.raises(MissingPathError, match="no such file"):
        fetch("gs://music/mirror-test/tagger/3/labels.csv", root=tmp_path / "files")


def run(module: str, *args, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.mark.slow
def test_train_from_a_store_in_a_bucket_and_predict_with_an_export_in_one(gcs_bucket, small_emotion_store, export,
                                                                           emotion_run, audio_dir, tmp_path,
                                                                           monkeypatch):
    """`train --data gs://...` fits one epoch on a store uploaded to the bucket; `predict --model
    gs://...` gives the records of the same export on local disk (same model identity); `export
    --base-dir gs://...` numbers versions in the bucket, and predict takes its newest."""
    monkeypatch.setenv("KERAS_MUSIC_CACHE", str(tmp_path / "cache"))  # the commands' mirrors land here
    upload(small_emotion_store, "gs://music/stores/small")
    gcs_bucket.blob("labels/small.csv").upload_from_filename(str(small_emotion_store / "labels.csv"))
    trained = run("keras_music.train", "--task", "emotion", "--model", "cnn_lstm", "--data", "gs://music/stores/small",
                  "--labels", "gs://music/labels/small.csv", "--epochs", "1", "--seed", "0", "--out", tmp_path / "run",
                  "--no-export")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "epoch 1/1" in trained.stderr and (tmp_path / "run" / "config.json").is_file()

    upload(export, "gs://music/models/tagger/1")
    song = audio_dir / "mozart_k545_bright_22k_mono_16bit.wav"
    local = run("keras_music.predict", song, "--model", export, "--format", "json")
    remote = run("keras_music.predict", song, "--model", "gs://music/models/tagger/1", "--format", "json")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr[-3000:]
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    missing = run("keras_music.predict", song, "--model", "gs://music/models/none")
    assert missing.returncode == 1 and "gs://music/models/none" in missing.stderr and "no files there" in missing.stderr
    for expected in ("gs://music/served/tagger/1", "gs://music/served/tagger/2"):
        exported = run("keras_music.export", "--model", emotion_run, "--name", "tagger", "--base-dir",
                       "gs://music/served")
        assert exported.returncode == 0 and exported.stdout.strip() == expected, exported.stderr[-3000:]
    names = sorted(b.name for b in gcs_bucket.client.list_blobs("music", prefix="served/tagger/2/"))
    assert "served/tagger/2/saved_model.pb" in names and "served/tagger/2/assets/metadata.json" in names
    newest = run("keras_music.predict", song, "--model", "gs://music/served/tagger", "--format", "json")
    assert newest.returncode == 0 and "/tagger/2;" in newest.stderr, newest.stderr[-3000:]
    assert json.loads(newest.stdout)[0]["tags"] == json.loads(local.stdout)[0]["tags"]
