"""Layers on musicnn's compressed mel, `log10(10000 P + 1)` of the mel power `P` (the `musicnn`
recipe): loudness normalisation, and spectral augmentation while training.

musicnn reads the level of a recording as much as its content: its compression is close to
log for loud bands and close to linear for quiet ones, so the same song 20 dB quieter looks like
another song (the packaged tagger's accuracy fell from 0.72 to 0.40 at -20 dB, `bench.robustness`).
`LevelNormalization` scales each example's power to one level before musicnn sees it, so a gain
changes nothing. `SpectralAugment` draws what playback chains and codecs do to a spectrum (gain,
tilt, low and high cuts, a noise floor) so a head learns from music heard through them.

Both layers take `[mel (batch, T, bands), length (batch,)]` and return the mel; frames past
`length` stay 0. They are registered under `keras_music` (`keras_music>ClassName`); the names
must never change.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_music.models.sequence_layers import length_mask

MUSICNN_SCALE = 10000.0  # musicnn's compression: log10(MUSICNN_SCALE * P + 1)
# The median level (10 log10 of the mean mel power) of the 3 s windows of the 765 4Q clips
# (musicnn recipe; 1% / 50% / 99% of windows: -20.7 / -5.3 / +2.6 dB): commercial previews, the
# level musicnn's own training audio (MSD and MTT previews) has too.
TARGET_LEVEL_DB = -5.3
LN10 = math.log(10.0)


def mel_power(mel):
    """`P` from `log10(MUSICNN_SCALE * P + 1)` (expm1: exact for quiet bands too)."""
    return ops.maximum(ops.expm1(mel * LN10) / MUSICNN_SCALE, 0.0)


def compressed(power):
    """`log10(MUSICNN_SCALE * power + 1)` (log1p)."""
    return ops.log1p(MUSICNN_SCALE * power) / LN10


def frame_mask(mel, length):
    """`(batch, T, 1)` float: 1 on each example's first `length` frames (`sequence_layers.length_mask`)."""
    return ops.expand_dims(ops.cast(length_mask(mel, length), mel.dtype), 2)


def level_db(power, mask):
    """`(batch,)` 10 log10 of each example's mean power over its real frames and all bands."""
    frames = ops.maximum(ops.sum(mask, axis=(1, 2)), 1.0)
    mean = ops.sum(power * mask, axis=(1, 2)) / (frames * ops.cast(ops.shape(power)[2], power.dtype))
    return 10.0 * ops.log10(ops.maximum(mean, 1e-20))


@keras.saving.register_keras_serializable(package="keras_music")
class LevelNormalization(keras.layers.Layer):
    """Each example's mel power scaled to `target_db` (mean over its real frames and bands), in
    training and inference alike: a recording played 20 dB quieter or 10 dB louder gives the same
    input (exactly, up to clipping and float rounding).

    `strength` < 1 moves the level only part of the way (`strength * (target - level)` dB), keeping
    some of a recording's loudness; the gain is capped at `max_gain_db` either way, so near-silence
    is not raised to the level of music.

    Args:
        target_db: float. The level every example is brought to (`TARGET_LEVEL_DB`).
        strength: float in (0, 1]. Share of the distance to the target that is corrected.
        max_gain_db: float. Largest gain or cut applied.
    """

    def __init__(self, target_db: float = TARGET_LEVEL_DB, strength: float = 1.0, max_gain_db: float = 40.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0 < strength <= 1:
            raise ValueError(f"LevelNormalization strength must be in (0, 1], got {strength!r}.")
        self.target_db, self.strength, self.max_gain_db = float(target_db), float(strength), float(max_gain_db)

    def call(self, inputs):
        mel, length = inputs
        power, mask = mel_power(mel), frame_mask(mel, length)
        gain_db = ops.clip(self.strength * (self.target_db - level_db(power, mask)),
                           -self.max_gain_db, self.max_gain_db)
        gain = ops.power(10.0, gain_db / 10.0)[:, None, None]
        return compressed(power * ops.cast(gain, power.dtype)) * mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"target_db": self.target_db, "strength": self.strength, "max_gain_db": self.max_gain_db})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class SpectralAugment(keras.layers.Layer):
    """While training only: per example, what a playback chain or codec does to a spectrum, drawn
    at random on the mel power. Inference passes the mel through unchanged.

    * a gain, uniform in +-`gain_db`;
    * a tilt, uniform in +-`tilt_db` from the lowest band to the highest (dull or bright EQ);
    * with probability `cut_probability` each: a low-pass at a cutoff log-uniform in
      `low_pass_hz`, and a high-pass at one log-uniform in `high_pass_hz` (the bands beyond a
      cutoff are cut by `cut_db`);
    * with probability `cut_probability`: a flat noise floor `noise_db` (uniform) below the
      example's level (hiss, quantisation and codec noise).

    `band_hz` are the centre frequencies of the mel bands (`audio.filterbank.band_centres`).
    `copies` is how many augmented passes over the training windows a frozen front end's
    training (`training.frozen`) adds to the clean one. Draws come from the layer's seed generator.

    Args:
        band_hz: list of float. Centre frequency of each band.
        gain_db, tilt_db: float. Largest gain and tilt.
        low_pass_hz, high_pass_hz: (float, float). Ranges of the cutoffs.
        noise_db: (float, float). Range of the noise floor below the level, in dB.
        cut_probability: float in [0, 1]. Probability of each cut and of the noise floor.
        cut_db: float. Attenuation beyond a cutoff.
        copies: int >= 1. Augmented passes of frozen-front-end training.
        seed: int or None. Seed of the draws.
    """

    def __init__(self, band_hz, gain_db: float = 12.0, tilt_db: float = 12.0, low_pass_hz=(1500.0, 7000.0),
                 high_pass_hz=(100.0, 600.0), noise_db=(20.0, 50.0), cut_probability: float = 0.5,
                 cut_db: float = 60.0, copies: int = 2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= cut_probability <= 1:
            raise ValueError(f"SpectralAugment cut_probability must be in [0, 1], got {cut_probability!r}.")
        if int(copies) < 1:
            raise ValueError(f"SpectralAugment copies must be >= 1, got {copies!r}.")
        self.band_hz = [float(f) for f in band_hz]
        self.gain_db, self.tilt_db, self.cut_probability, self.cut_db = (
            float(gain_db), float(tilt_db), float(cut_probability), float(cut_db))
        self.low_pass_hz, self.high_pass_hz, self.noise_db = (
            tuple(map(float, low_pass_hz)), tuple(map(float, high_pass_hz)), tuple(map(float, noise_db)))
        self.copies, self.seed = int(copies), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, batch, low, high):
        return low + (high - low) * keras.random.uniform((batch,), seed=self.seed_generator)

    def _chance(self, batch):
        return ops.cast(keras.random.uniform((batch,), seed=self.seed_generator) < self.cut_probability, "float32")

    def call(self, inputs, training=None):
        mel, length = inputs
        if not training:
            return mel
        batch = ops.shape(mel)[0]
        power, mask = mel_power(mel), frame_mask(mel, length)
        bands = ops.convert_to_tensor(self.band_hz, "float32")[None, :]  # (1, bands)
        position = ops.linspace(-0.5, 0.5, len(self.band_hz))[None, :]
        gain_db = self._uniform(batch, -self.gain_db, self.gain_db)[:, None]
        db = gain_db + self._uniform(batch, -self.tilt_db, self.tilt_db)[:, None] * position
        low_cut = ops.exp(self._uniform(batch, *map(math.log, self.low_pass_hz)))[:, None]
        high_cut = ops.exp(self._uniform(batch, *map(math.log, self.high_pass_hz)))[:, None]
        db -= self.cut_db * self._chance(batch)[:, None] * ops.cast(bands > low_cut, "float32")
        db -= self.cut_db * self._chance(batch)[:, None] * ops.cast(bands < high_cut, "float32")
        changed = power * ops.cast(ops.power(10.0, db / 10.0), power.dtype)[:, None, :]
        floor_db = level_db(changed, mask) - self._uniform(batch, *self.noise_db)
        floor = self._chance(batch) * ops.power(10.0, floor_db / 10.0)
        changed = changed + ops.cast(floor, power.dtype)[:, None, None]
        return compressed(changed) * mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"band_hz": self.band_hz, "gain_db": self.gain_db, "tilt_db": self.tilt_db,
                       "low_pass_hz": list(self.low_pass_hz), "high_pass_hz": list(self.high_pass_hz),
                       "noise_db": list(self.noise_db), "cut_probability": self.cut_probability,
                       "cut_db": self.cut_db, "copies": self.copies, "seed": self.seed})
        return config
