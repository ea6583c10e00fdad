"""The synthetic emotion demo: deterministic audio whose tags follow its cues."""

from __future__ import annotations

import numpy as np

from keras_music.audio.decoding import decode_audio
from keras_music.data.demo import DEMO_TAGS, demo_tags, make_emotion_demo, synthesize_clip
from keras_music.data.mer4q import tags_from_csv


def test_demo_is_deterministic_and_labelled(tmp_path):
    first = make_emotion_demo(tmp_path / "a", num_clips=6, seconds=2.0, seed=1)
    second = make_emotion_demo(tmp_path / "b", num_clips=6, seconds=2.0, seed=1)
    for name in ("demo_0000.wav", "demo_0005.wav"):
        assert (first / "audio" / name).read_bytes() == (second / "audio" / name).read_bytes()
    assert (first / "labels.csv").read_text() == (second / "labels.csv").read_text()
    table = tags_from_csv(first / "labels.csv")
    assert table.tags == list(DEMO_TAGS) and len(table.clip_ids) == 6
    samples, rate = decode_audio(first / "audio" / "demo_0000.wav")  # real audio through the real decoder
    assert rate == 22050 and abs(samples.size / rate - 2.0) < 1e-3


def test_tags_follow_the_cues_with_unknown_middle_zones():
    happy = {"tempo": 150.0, "major": True, "loudness": 0.7, "brightness": 0.9, "root": 48}
    sad = {"tempo": 70.0, "major": False, "loudness": 0.1, "brightness": 0.1, "root": 48}
    middle = {"tempo": 100.0, "major": True, "loudness": 0.4, "brightness": 0.5, "root": 48}
    assert demo_tags(happy) == {"happy": "1", "sad": "0", "energetic": "1", "calm": "0", "bright": "1"}
    assert demo_tags(sad) == {"happy": "0", "sad": "1", "energetic": "0", "calm": "1", "bright": "0"}
    assert demo_tags(middle)["happy"] == "" and demo_tags(middle)["bright"] == ""


def test_louder_and_brighter_clips_measure_so():
    base = {"tempo": 120.0, "major": True, "loudness": 0.2, "brightness": 0.1, "root": 48}
    quiet_dark = synthesize_clip(base, seconds=2.0)
    loud_bright = synthesize_clip({**base, "loudness": 0.8, "brightness": 0.9}, seconds=2.0)
    assert np.sqrt(np.mean(loud_bright ** 2)) > 2 * np.sqrt(np.mean(quiet_dark ** 2))

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x))
        return (spectrum * np.arange(spectrum.size)).sum() / spectrum.sum()

    assert centroid(loud_bright) > centroid(quiet_dark)
