"""The feature front end: waveforms -> the recipe's named features (`mel`, and `mfcc` unless
the recipe has none), in core TensorFlow (`tf.signal`).

Core ops only, so the front end can live inside an exported model that stock TF Serving
loads: the layer `AudioFeatures` (waveforms -> dict of named features; `LogMel` and `MFCC`
remain for saved models that name them) and `resample` (an FFT resampler, which the serving
graph uses for audio sent at another rate). Framing follows the `FeatureRecipe` (by default
librosa 0.11's: centred zero-padded frames); the filterbank is `filterbank.mel_filterbank`.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_music.audio.filterbank import mel_filterbank
from keras_music.config import FeatureRecipe, config_to_dict


def resample(samples, orig_rate: int, target_rate: int):
    """Band-limited resampling of a 1-D signal with one real FFT (core TF ops only).

    The spectrum is truncated (downsampling) or zero-padded (upsampling) to the new
    length and transformed back, so the output has `round(n * target / orig)` samples and
    no delay. Works eagerly and inside `tf.function` / exported graphs; `orig_rate` may be
    a tensor (e.g. the rate `tf.audio.decode_wav` returns).
    """
    samples = tf.convert_to_tensor(samples, tf.float32)
    if isinstance(orig_rate, (int, float)) and orig_rate == target_rate:
        return samples
    n = tf.shape(samples)[0]
    m = tf.cast(tf.math.round(tf.cast(n, tf.float64) * target_rate / tf.cast(orig_rate, tf.float64)), tf.int32)
    spectrum = tf.signal.rfft(samples)
    keep = tf.minimum(n // 2 + 1, m // 2 + 1)
    spectrum = tf.pad(spectrum[:keep], [[0, m // 2 + 1 - keep]])
    return tf.signal.irfft(spectrum, fft_length=[m]) * (tf.cast(m, tf.float32) / tf.cast(n, tf.float32))


def compressed_mel(waveforms, recipe: FeatureRecipe, filterbank):
    """Waveforms `(batch, samples)` -> the `mel` feature `(batch, frames, n_mels)`.

    Hann-windowed STFT (periodic window, as librosa), power spectrum, the recipe's mel
    filterbank, then its `mel_compression`. With `center`, frames are centred by zero
    padding, so frames = 1 + samples // hop_length.
    """
    r = recipe
    waveforms = tf.cast(waveforms, tf.float32)
    if r.center:
        waveforms = tf.pad(waveforms, [[0, 0], [r.n_fft // 2, r.n_fft // 2]])
    stft = tf.signal.stft(waveforms, frame_length=r.n_fft, frame_step=r.hop_length, fft_length=r.n_fft,
                          window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.square(tf.math.abs(stft))
    mel = tf.tensordot(power, filterbank, axes=1)
    if r.mel_compression == "musicnn":
        # musicnn casts the power to float16, then computes log10(10000 x + 1) in float32.
        mel = tf.cast(tf.cast(mel, tf.float16), tf.float32)
        return tf.math.log(10000.0 * mel + 1.0) / tf.math.log(10.0)
    return 10.0 * tf.math.log(mel + r.log_floor) / tf.math.log(10.0)


def mfcc_of(mel, n_mfcc: int):
    """The orthonormal DCT-II of the compressed mel (scipy's `dct(type=2, norm='ortho')`),
    first `n_mfcc` coefficients: the shared 4Q recipe, not `librosa.feature.mfcc`'s scaling."""
    return tf.signal.dct(tf.cast(mel, tf.float32), type=2, norm="ortho")[..., :n_mfcc]


def _recipe_of(recipe, layer: str) -> FeatureRecipe:
    """A layer's recipe argument: a FeatureRecipe, or its dict form (what get_config saves)."""
    if isinstance(recipe, FeatureRecipe):
        return recipe
    return FeatureRecipe.from_dict(recipe or {}, source=f"{layer} recipe")


@keras.saving.register_keras_serializable(package="keras_music")
class AudioFeatures(keras.layers.Layer):
    """Waveforms `(batch, samples)` at the recipe's rate -> dict of the recipe's named features.

    `{"mel": (batch, frames, n_mels), "mfcc": (batch, frames, n_mfcc)}` (no `mfcc` when
    `n_mfcc` is 0): the one front end of extraction, serving graphs and ports. Core TF ops
    only, so exported models that contain it load in stock TF Serving.

    Args:
        recipe: FeatureRecipe or its dict (JSON) form. The config stores the dict, and the
            filterbank is rebuilt from it on load.
    """

    def __init__(self, recipe=None, **kwargs):
        super().__init__(trainable=False, **{k: v for k, v in kwargs.items() if k != "trainable"})
        self.recipe = _recipe_of(recipe, "AudioFeatures")
        self.filterbank = tf.constant(mel_filterbank(self.recipe))

    def call(self, waveforms):
        mel = compressed_mel(waveforms, self.recipe, self.filterbank)
        features = {"mel": mel}
        if self.recipe.n_mfcc:
            features["mfcc"] = mfcc_of(mel, self.recipe.n_mfcc)
        return features

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else self.recipe.num_frames(samples)
        return {name: (input_shape[0], frames, dims) for name, dims in self.recipe.feature_dims.items()}

    def get_config(self):
        config = super().get_config()
        config.update({"recipe": config_to_dict(self.recipe)})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class LogMel(keras.layers.Layer):
    """Waveforms `(batch, samples)` -> the `mel` feature `(batch, frames, n_mels)` alone.

    Kept because saved models name it (`keras_music>LogMel`); new code uses `AudioFeatures`.
    Same computation (`compressed_mel`).

    Args:
        recipe: dict. A `FeatureRecipe` as a dict (its JSON form), so the config stores the
            recipe and the filterbank is rebuilt from it on load.
    """

    def __init__(self, recipe=None, **kwargs):
        super().__init__(trainable=False, **{k: v for k, v in kwargs.items() if k != "trainable"})
        self.recipe = _recipe_of(recipe, "LogMel")
        self.filterbank = tf.constant(mel_filterbank(self.recipe))

    def call(self, waveforms):
        return compressed_mel(waveforms, self.recipe, self.filterbank)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else self.recipe.num_frames(samples)
        return (input_shape[0], frames, self.recipe.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update({"recipe": config_to_dict(self.recipe)})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class MFCC(keras.layers.Layer):
    """The `mel` feature `(batch, frames, n_mels)` -> MFCC `(batch, frames, n_mfcc)` (`mfcc_of`).

    Kept because saved models name it (`keras_music>MFCC`); new code uses `AudioFeatures`.

    Args:
        n_mfcc: int. Coefficients kept. Defaults to `20`.
    """

    def __init__(self, n_mfcc=20, **kwargs):
        super().__init__(trainable=False, **{k: v for k, v in kwargs.items() if k != "trainable"})
        self.n_mfcc = int(n_mfcc)

    def call(self, log_mel):
        return mfcc_of(log_mel, self.n_mfcc)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.n_mfcc)

    def get_config(self):
        config = super().get_config()
        config.update({"n_mfcc": self.n_mfcc})
        return config


@functools.lru_cache(maxsize=8)
def _feature_function(recipe: FeatureRecipe):
    """One traced graph per recipe: waveform `(samples,)` -> dict of named features."""
    front_end = AudioFeatures(recipe)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)], reduce_retracing=True)
    def features(samples):
        return {name: value[0] for name, value in front_end(samples[None, :]).items()}

    return features


def compute_features(samples: np.ndarray, recipe: FeatureRecipe = FeatureRecipe()) -> dict[str, np.ndarray]:
    """The recipe's named features of one mono signal at its rate: `{"mel": (T, n_mels), "mfcc": (T, n_mfcc)}`."""
    features = _feature_function(recipe)(tf.convert_to_tensor(samples, tf.float32))
    return {name: features[name].numpy() for name in recipe.feature_dims}
