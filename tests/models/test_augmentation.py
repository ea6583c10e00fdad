"""SpecAugment: spans of time and bands zeroed while training, identity at inference."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.models import augmentation
from keras_music.models.augmentation import SpecAugment
from tests.models.conftest import registered_in

LENGTHS = [40, 25]


def features(lengths=LENGTHS, frames=40):
    """Normalised, zero-padded `mel (batch, T, 16)` and `mfcc (batch, T, 6)`, and `length`."""
    rng = np.random.default_rng(1)
    mel = rng.normal(0, 1, (len(lengths), frames, 16)).astype("float32")
    mfcc = rng.normal(0, 1, (len(lengths), frames, 6)).astype("float32")
    for i, n in enumerate(lengths):
        mel[i, n:] = 0
        mfcc[i, n:] = 0
    return mel, mfcc, np.asarray(lengths, "int32")


def test_registered_names_are_the_ones_saved_models_hold():
    assert registered_in(augmentation) == {"keras_music>SpecAugment"}


def test_config_round_trip():
    layer = SpecAugment(0.2, masks=3, seed=5)
    clone = SpecAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.fraction, clone.masks, clone.seed) == (0.2, 3, 5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match="fraction"):
        SpecAugment(fraction)


def test_inference_passes_the_features_through():
    mel, mfcc, length = features()
    layer = SpecAugment(0.4, masks=3, seed=0)
    for training in (False, None):
        out = layer([mel, mfcc, length], training=training)
        np.testing.assert_array_equal(np.asarray(out[0]), mel)
        np.testing.assert_array_equal(np.asarray(out[1]), mfcc)


def test_training_zeroes_spans_of_frames_and_bands_inside_the_real_frames():
    """Whole frames (in every feature at once) and whole bands are zeroed, never more than
    `masks` spans of `fraction`, and nothing past a clip's length changes."""
    mel, mfcc, length = features()
    masked_mel, masked_mfcc = (np.asarray(x) for x in SpecAugment(0.2, masks=2, seed=3)([mel, mfcc, length],
                                                                                          training=True))
    for out, original in ((masked_mel, mel), (masked_mfcc, mfcc)):
        kept = out == original
        assert np.all(kept | (out == 0)) and not kept.all()
    for i, n in enumerate(LENGTHS):
        dead_frames = np.where(np.all(masked_mel[i, :n] == 0, axis=1))[0]
        np.testing.assert_array_equal(dead_frames, np.where(np.all(masked_mfcc[i, :n] == 0, axis=1))[0])
        assert 0 < len(dead_frames) <= 2 * int(0.2 * n)
        assert len(np.where(np.all(masked_mel[i, :n] == 0, axis=0))[0]) <= 2 * int(0.2 * 16)
        assert len(np.where(np.all(masked_mfcc[i, :n] == 0, axis=0))[0]) <= 2 * int(0.2 * 6)
        # A value is zeroed only where its frame or its band is masked.
        partly = (masked_mel[i, :n] == 0) & (mel[i, :n] != 0)
        frame_dead = np.all(masked_mel[i, :n] == 0, axis=1, keepdims=True)
        band_dead = np.all(masked_mel[i, :n] == 0, axis=0, keepdims=True)
        assert np.all(~partly | frame_dead | band_dead)


def test_time_masks_stay_inside_each_clips_real_frames():
    """Padding made non-zero here to see it: past a clip's length only masked bands change."""
    mel, mfcc, length = features(lengths=[12, 5], frames=30)
    for i, n in enumerate([12, 5]):
        mel[i, n:] = 1.0
    for seed in range(5):
        out = np.asarray(SpecAugment(0.5, masks=3, seed=seed)([mel, mfcc, length], training=True)[0])
        for i, n in enumerate([12, 5]):
            band_dead = np.all(out[i, :n] == 0, axis=0)
            np.testing.assert_array_equal(out[i, n:, ~band_dead], mel[i, n:, ~band_dead])
            assert np.all(out[i, n:, band_dead] == 0)


def test_a_seed_gives_the_same_masks_and_draws_differ_between_calls():
    mel, mfcc, length = features()
    first = np.asarray(SpecAugment(0.3, masks=2, seed=7)([mel, mfcc, length], training=True)[0])
    again = np.asarray(SpecAugment(0.3, masks=2, seed=7)([mel, mfcc, length], training=True)[0])
    np.testing.assert_array_equal(first, again)
    layer = SpecAugment(0.3, masks=2, seed=7)
    layer([mel, mfcc, length], training=True)
    assert not np.array_equal(np.asarray(layer([mel, mfcc, length], training=True)[0]), first)


def test_a_saved_model_with_spec_augment_reloads_and_still_masks_in_training_only(save_and_load):
    mel_in = keras.Input((None, 16), name="mel")
    mfcc_in = keras.Input((None, 6), name="mfcc")
    length_in = keras.Input((), dtype="int32", name="length")
    masked = SpecAugment(0.2, masks=2, seed=3, name="spec_augment")([mel_in, mfcc_in, length_in])
    model = keras.Model({"mel": mel_in, "mfcc": mfcc_in, "length": length_in}, masked, name="augment")
    mel, mfcc, length = features()
    data = {"mel": mel, "mfcc": mfcc, "length": length}
    for pre_split in (False, True):
        reloaded = save_and_load(model, pre_split=pre_split)
        layer = reloaded.get_layer("spec_augment")
        assert isinstance(layer, SpecAugment) and (layer.fraction, layer.masks, layer.seed) == (0.2, 2, 3)
        out = reloaded.predict(data, verbose=0)
        np.testing.assert_array_equal(out[0], mel)
        np.testing.assert_array_equal(out[1], mfcc)
        assert not np.array_equal(np.asarray(reloaded(data, training=True)[0]), mel)
