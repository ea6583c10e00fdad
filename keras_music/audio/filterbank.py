"""The mel filterbank: a numpy constant, librosa-compatible (`librosa.filters.mel`).

Built here rather than with `tf.signal.linear_to_mel_weight_matrix`, which is HTK-style
without normalisation and would not match the shared features: the `FeatureRecipe` picks the
mel scale (Slaney by default, or HTK) and the normalisation (Slaney's area normalisation by
default), as librosa 0.11 does.
"""

from __future__ import annotations

import numpy as np

from keras_music.config import FeatureRecipe


def hz_to_mel(hz, scale: str = "slaney"):
    hz = np.asarray(hz, dtype="float64")
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    linear = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep, linear)


def mel_to_hz(mel, scale: str = "slaney"):
    mel = np.asarray(mel, dtype="float64")
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def band_edges(recipe: FeatureRecipe) -> np.ndarray:
    """The `n_mels + 2` edge frequencies (Hz) of the triangular filters, equally spaced in mel."""
    return mel_to_hz(np.linspace(hz_to_mel(recipe.fmin, recipe.mel_scale),
                                 hz_to_mel(recipe.mel_fmax, recipe.mel_scale), recipe.n_mels + 2),
                     recipe.mel_scale)


def band_centres(recipe: FeatureRecipe) -> list[float]:
    """The centre frequency (Hz) of each mel band: where its triangle peaks.

    >>> from keras_music.config import RECIPES
    >>> [round(f) for f in band_centres(RECIPES["musicnn"])[:3]], round(band_centres(RECIPES["musicnn"])[-1])
    ([31, 62, 93], 7748)
    """
    return [float(f) for f in band_edges(recipe)[1:-1]]


def mel_filterbank(recipe: FeatureRecipe) -> np.ndarray:
    """Triangular mel filters, shape `(1 + n_fft // 2, n_mels)`, as `librosa.filters.mel`."""
    fft_freqs = np.linspace(0, recipe.sample_rate / 2, 1 + recipe.n_fft // 2)
    edges = band_edges(recipe)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if recipe.mel_norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype("float32")
