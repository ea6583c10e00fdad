"""A frozen pretrained front end (musicnn_head): the head trains on cached window embeddings,
and what is saved, reloaded and scored is the full model, with identical scores."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_music.config import EMOTION_TRAINING
from keras_music.data.emotion import load_emotion_data
from keras_music.models.musicnn import weights_path
from keras_music.models.musicnn_head import FAMILY, MusicnnHeadConfig, build_musicnn_head
from keras_music.scoring import score_tagger, tagger_logits
from keras_music.training.frozen import split_at, window_embeddings
from keras_music.training import train_emotion


@pytest.mark.slow
def test_head_fits_on_cached_windows_and_the_full_model_scores_the_same(musicnn_store, tmp_path):
    training = dataclasses.replace(EMOTION_TRAINING, epochs=3, min_epochs=1, patience=2)
    labels = str(musicnn_store / "labels.csv")
    report = train_emotion(str(musicnn_store / "store"), tmp_path / "run", MusicnnHeadConfig(weights="MSD_musicnn"),
                           FAMILY.sequence_config(), training, labels=labels, verbose=0)
    with _no_optimizer_warning():
        model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    emotion = load_emotion_data(str(musicnn_store / "store"), labels)
    test_ids = config["splits"]["test"]
    full = score_tagger(model, emotion, test_ids, FAMILY.sequence_config())
    for key in ("macro_roc_auc", "accuracy"):
        assert full[key] == pytest.approx(report[key], abs=1e-9), key  # cached scoring == full model
    full_logits, _, _ = tagger_logits(model, emotion, test_ids, FAMILY.sequence_config())
    front, head = split_at(model, "musicnn_penultimate")
    windows = window_embeddings(front, emotion, test_ids, FAMILY.sequence_config())
    cached_logits = np.stack([np.asarray(head(windows[c])).mean(axis=0) for c in test_ids])
    np.testing.assert_allclose(cached_logits, full_logits, atol=1e-5)
    keras.utils.set_random_seed(training.seed)  # the head as training started: it moved
    initial = build_musicnn_head(MusicnnHeadConfig(weights="MSD_musicnn"), emotion.tags.tags, {"mel": 96})
    assert np.abs(initial.get_layer("logits").get_weights()[0] - model.get_layer("logits").get_weights()[0]).max() > 1e-3
    # The front end is musicnn's, untouched by training.
    with np.load(weights_path("MSD_musicnn")) as trained:
        np.testing.assert_array_equal(model.get_layer("musicnn_timbral_74").get_weights()[0], trained["timbral_74/kernel"])
        np.testing.assert_array_equal(model.get_layer("musicnn_penultimate").get_weights()[0], trained["penultimate/gamma"])
    assert config["sequence_config"]["crop_frames"] == 187 and config["recipe"]["sample_rate"] == 16000


def test_frozen_family_refuses_features_of_another_recipe(tmp_path):
    from keras_music.data.emotion import demo_store

    store, labels = demo_store(tmp_path / "demo")
    with pytest.raises(ValueError, match="musicnn_head needs features of the 'musicnn' recipe"):
        train_emotion(str(store), tmp_path / "run", MusicnnHeadConfig(), FAMILY.sequence_config(),
                      dataclasses.replace(EMOTION_TRAINING, epochs=1), labels=str(labels), verbose=0)


class _no_optimizer_warning:
    """Reloading must not warn that the saved optimizer state does not fit (the head shares the
    model's optimizer, so its state is the model's)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self.records = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        bad = [str(w.message) for w in self.records if "optimizer" in str(w.message)]
        assert not bad, bad
        return False


def test_window_embeddings_are_cached_on_disk_and_checked(musicnn_store, tmp_path, monkeypatch, caplog):
    import logging

    from keras_music.models.musicnn_head import build_musicnn_head
    from keras_music.training import frozen

    monkeypatch.setattr(frozen, "embedding_cache_dir", lambda: tmp_path / "cache")
    frozen._CACHE.clear()
    emotion = load_emotion_data(str(musicnn_store / "store"), str(musicnn_store / "labels.csv"))
    front, _ = frozen.split_at(build_musicnn_head(MusicnnHeadConfig(), emotion.tags.tags, {"mel": 96}),
                               "musicnn_penultimate")
    ids = emotion.tags.clip_ids[:5]
    with caplog.at_level(logging.INFO, logger="keras_music.training"):
        first = frozen.window_embeddings(front, emotion, ids, FAMILY.sequence_config())
        assert "windows of 5 clips" in caplog.text
        caplog.clear()
        frozen._CACHE.clear()  # a new process: read from disk, nothing recomputed
        again = frozen.window_embeddings(front, emotion, ids, FAMILY.sequence_config())
        assert "frozen front end" not in caplog.text
        for clip in ids:
            np.testing.assert_array_equal(again[clip], first[clip])
        [cache_file] = (tmp_path / "cache").glob("*.npz")
        cache_file.write_bytes(cache_file.read_bytes()[:1000])  # a truncated zip
        frozen._CACHE.clear()
        third = frozen.window_embeddings(front, emotion, ids, FAMILY.sequence_config())
        assert "ignoring the embedding cache" in caplog.text and "windows of 5 clips" in caplog.text
    np.testing.assert_array_equal(third[ids[0]], first[ids[0]])  # per-clip batches: the same to the bit
    assert first[ids[0]].shape == (2, 200)  # 250 frames: windows at 0 and 63 (the last ends at the end)


def test_augmented_passes_are_cached_apart_and_the_same_for_a_clip_in_any_subset(musicnn_store, tmp_path,
                                                                                   monkeypatch):
    from keras_music.training import frozen

    monkeypatch.setattr(frozen, "embedding_cache_dir", lambda: tmp_path / "cache")
    frozen._CACHE.clear()
    emotion = load_emotion_data(str(musicnn_store / "store"), str(musicnn_store / "labels.csv"))
    model = build_musicnn_head(MusicnnHeadConfig(spectral_augment=2), emotion.tags.tags, {"mel": 96})
    front, _ = frozen.split_at(model, "musicnn_penultimate")
    ids, sequence = emotion.tags.clip_ids[:4], FAMILY.sequence_config()
    clean = frozen.window_embeddings(front, emotion, ids, sequence)
    first = frozen.window_embeddings(front, emotion, ids, sequence, copy=1)
    second = frozen.window_embeddings(front, emotion, ids, sequence, copy=2)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3
    for clip in ids:
        assert np.abs(first[clip] - clean[clip]).mean() > 1e-3 and np.abs(second[clip] - first[clip]).mean() > 1e-3
    frozen._CACHE.clear()
    import shutil

    shutil.rmtree(tmp_path / "cache")
    alone = frozen.window_embeddings(front, emotion, ids[2:3], sequence, copy=1)  # another subset, recomputed
    np.testing.assert_allclose(alone[ids[2]], first[ids[2]], atol=1e-6)
    trained_on = frozen.training_embeddings(front, emotion, ids[:1], sequence)
    assert trained_on[ids[0]].shape == (3 * len(clean[ids[0]]), 200)  # the clean pass and two augmented
    plain, _ = frozen.split_at(build_musicnn_head(MusicnnHeadConfig(), emotion.tags.tags, {"mel": 96}),
                               "musicnn_penultimate")
    with pytest.raises(ValueError, match="no SpectralAugment layer"):
        frozen.window_embeddings(plain, emotion, ids, sequence, copy=1)
    # Augmentation is the identity at inference: the clean windows are the plain front end's (one cache)
    assert frozen.front_fingerprint(front) == frozen.front_fingerprint(plain)
    assert frozen.inference_architecture(front) == frozen.inference_architecture(plain)
    assert "SpectralAugment" in front.to_json() and "SpectralAugment" not in frozen.inference_architecture(front)
