"""`python -m keras_music.doctor`: versions, decoders, devices, a decode round trip per format."""

from __future__ import annotations

import importlib.util
import json

from keras_music import doctor
from keras_music.config import MUSICNN_MANIFEST_NAME, MUSICNN_PACKAGED_DIR


def test_doctor_reports_a_working_install(capsys):
    assert doctor.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versions"]["tensorflow"] and report["versions"]["libsndfile"]
    assert report["decoders"]["soundfile"] == "ok"
    assert set(report["decode"]) >= {"wav-pcm_16", "wav-pcm_24", "flac-pcm_16", "ogg-vorbis", "mp3-mpeg_layer_iii"}
    assert all(status == "ok" for status in report["decode"].values()), report["decode"]
    assert report["devices"]["cpu"] >= 1 and report["problems"] == []
    manifest = json.loads((MUSICNN_PACKAGED_DIR / MUSICNN_MANIFEST_NAME).read_text())
    for weights in ("MTT_musicnn", "MSD_musicnn"):  # shipped, their digests checked
        assert report["pretrained"][weights].startswith("ok (packaged: ")
        assert manifest["files"][f"{weights}.npz"]["sha256"] in report["pretrained"][weights]
    assert report["pretrained"]["default emotion model"].startswith("ok (")  # its head ships in the repository


def test_doctor_needs_no_musicnn_wheel_nor_cache(capsys, monkeypatch, tmp_path):
    """A fresh install: an empty cache and no musicnn wheel is a working install (the weights
    ship in the package); the wheel is reported as optional, for regenerating them."""
    monkeypatch.setenv("KERAS_MUSIC_CACHE", str(tmp_path / "empty"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "musicnn" else real_find_spec(name, *a))
    assert doctor.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == []
    assert all(report["pretrained"][w].startswith("ok (packaged: ") for w in ("MTT_musicnn", "MSD_musicnn"))
    assert report["pretrained"]["musicnn wheel"].startswith("not installed (optional: only to regenerate")
    assert not (tmp_path / "empty" / "musicnn").exists()


def test_doctor_fails_with_one_line_per_broken_part(capsys, monkeypatch):
    from keras_music.audio import decoding

    def broken(path, decoder="soundfile"):
        raise decoding.AudioDecodeError(f"{path}: cannot decode as audio (decoder: simulated)")

    monkeypatch.setattr(decoding, "decode_audio", broken)
    assert doctor.main([]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: decoding ")]
    assert len(errors) == len(doctor.FORMATS) and all("simulated" in line for line in errors)
