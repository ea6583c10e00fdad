"""Loudness normalisation and spectral augmentation on musicnn's compressed mel: real features of
real waveforms (the musicnn recipe), and a musicnn_head that saves and reloads with them."""

from __future__ import annotations

import numpy as np
import pytest

from keras_music.audio.filterbank import band_centres
from keras_music.audio.frontend import compute_features
from keras_music.config import RECIPES
from keras_music.models.spectral_layers import (
    TARGET_LEVEL_DB,
    LevelNormalization,
    SpectralAugment,
    frame_mask,
    level_db,
    mel_power,
)

RECIPE = RECIPES["musicnn"]
BANDS_HZ = band_centres(RECIPE)


def musicnn_mel(gain: float = 1.0, seconds: float = 3.0) -> np.ndarray:
    """The musicnn recipe's mel of a chord with noise, scaled by `gain` as a waveform."""
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(0)
    wave = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 1760.0)) + 0.02 * rng.normal(size=t.size)
    return compute_features((gain * wave / 2).astype("float32"), RECIPE)["mel"]


def batch(*mels):
    frames = max(len(m) for m in mels)
    padded = np.zeros((len(mels), frames, mels[0].shape[1]), "float32")
    for i, m in enumerate(mels):
        padded[i, :len(m)] = m
    return padded, np.array([len(m) for m in mels], "int32")


def test_level_normalization_makes_a_gain_change_nothing():
    mel, length = batch(musicnn_mel(1.0), musicnn_mel(0.1), musicnn_mel(2.0), musicnn_mel(1.0, seconds=2.0))
    before = np.asarray(level_db(mel_power(mel), frame_mask(mel, length)))
    assert before[0] - before[1] == pytest.approx(20.0, abs=0.2)  # what musicnn saw: 20 dB apart
    out = np.asarray(LevelNormalization()([mel, length]))
    after = np.asarray(level_db(mel_power(out), frame_mask(out, length)))
    np.testing.assert_allclose(after, TARGET_LEVEL_DB, atol=1e-3)
    # The same input up to musicnn's float16 power (quiet bands at -20 dB lose a few bits), where
    # the inputs musicnn saw differed by up to ~2.
    assert np.abs(mel[1] - mel[0]).max() > 1
    for other in (out[1], out[2]):
        assert np.abs(other - out[0]).max() < 0.02 and np.abs(other - out[0]).mean() < 3e-3
    assert np.abs(out[1] - mel[1]).max() > 1  # it did change the quiet input
    assert not out[3, length[3]:].any()  # padding stays 0
    half = np.asarray(LevelNormalization(strength=0.5)([mel, length]))
    moved = np.asarray(level_db(mel_power(half), frame_mask(half, length)))
    np.testing.assert_allclose(moved - TARGET_LEVEL_DB, 0.5 * (before - TARGET_LEVEL_DB), atol=1e-2)


def test_level_normalization_leaves_silence_silent_and_checks_its_strength():
    mel, length = batch(np.zeros((50, 96), "float32"))
    assert not np.asarray(LevelNormalization()([mel, length])).any()
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\], got 0"):
        LevelNormalization(strength=0)


def test_spectral_augment_changes_training_inputs_only_and_cuts_where_it_says():
    mel, length = batch(musicnn_mel(1.0), musicnn_mel(1.0, seconds=2.0))
    layer = SpectralAugment(BANDS_HZ, seed=3)
    np.testing.assert_array_equal(np.asarray(layer([mel, length])), mel)  # inference: unchanged
    changed = np.asarray(layer([mel, length], training=True))
    assert np.abs(changed - mel).mean() > 0.01 and not changed[1, length[1]:].any()
    again = np.asarray(SpectralAugment(BANDS_HZ, seed=3)([mel, length], training=True))
    np.testing.assert_array_equal(again, changed)  # seeded: the same draws
    cut = SpectralAugment(BANDS_HZ, gain_db=0, tilt_db=0, low_pass_hz=(3000, 3000), high_pass_hz=(200, 200),
                          noise_db=(300, 300), cut_probability=1.0, seed=0)
    ratio_db = 10 * np.log10((mel_power(np.asarray(cut([mel, length], training=True)))[0] + 1e-30)
                             / (mel_power(mel)[0] + 1e-30))
    bands = np.asarray(BANDS_HZ)
    kept = (bands > 200) & (bands < 3000)
    loud = np.asarray(mel_power(mel))[0] > 1e-6  # bands with power to measure
    assert np.abs(ratio_db[:, kept][loud[:, kept]]).max() < 0.05
    assert ratio_db[:, bands > 3000][loud[:, bands > 3000]].max() < -50
    with pytest.raises(ValueError, match="copies must be >= 1"):
        SpectralAugment(BANDS_HZ, copies=0)


def test_musicnn_head_with_both_layers_saves_and_reloads(tmp_path):
    import keras

    from keras_music.models.musicnn_head import MusicnnHeadConfig, build_musicnn_head

    config = MusicnnHeadConfig(level_normalization=1.0, spectral_augment=2)
    model = build_musicnn_head(config, ["Q1", "Q2", "Q3", "Q4"], {"mel": 96})
    assert [type(model.get_layer(n)).__name__ for n in ("spectral_augment", "level_normalization")] == [
        "SpectralAugment", "LevelNormalization"]
    mel, length = batch(musicnn_mel(1.0), musicnn_mel(0.1))
    logits = np.asarray(model({"mel": mel, "length": length}))
    np.testing.assert_allclose(logits[1], logits[0], atol=2e-2)  # 20 dB quieter: the same tags
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(reloaded({"mel": mel, "length": length})), logits, atol=1e-5)
    assert reloaded.get_layer("spectral_augment").copies == 2
    with pytest.raises(ValueError, match="level_normalization must be in"):
        MusicnnHeadConfig(level_normalization=2)
