"""Audio in, named feature frames out (`mel`, and `mfcc` unless the recipe has none).

Two halves with different rules:

* Decoding (`decode_audio`) runs outside TensorFlow, as the TF/Keras ecosystem does now:
  libsndfile through `soundfile` (WAV of any depth, FLAC, Ogg Vorbis, Opus, MP3;
  thread-safe; the decoder librosa uses), or tensorflow-io as an optional backend. It runs
  only in extraction and prediction, never inside a model. `resample_like` brings the
  samples to the recipe's rate with the recipe's resampler (soxr by default).
* The feature front end is core TensorFlow (`tf.signal`), so it can live inside an exported
  model that stock TF Serving loads: the layer `AudioFeatures` (waveforms -> dict of named
  features; `LogMel` and `MFCC` remain for saved models that name them) and `resample` (an
  FFT resampler, which the serving graph uses for audio sent at another rate).

The filterbank and framing follow the `FeatureRecipe` (by default librosa 0.11's
conventions: Slaney mel scale and area normalisation, centred zero-padded frames),
because `tf.signal.linear_to_mel_weight_matrix` is HTK-style without normalisation and
would not match the shared features. The filterbank is a constant built in numpy.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_music.config import FeatureRecipe, config_to_dict

logger = logging.getLogger(__name__)

# Integer PCM from tensorflow-io is left-justified in its container type.
_PCM_SCALE = {tf.int16: 32768.0, tf.int32: 2147483648.0, tf.uint8: 128.0}


class AudioDecodeError(ValueError):
    """A file that cannot be turned into usable audio; the message names it and says why."""


def _short_reason(error: Exception) -> str:
    """TensorFlow's error text without its graph-node and op decorations."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(error)).strip()
    text = re.sub(r"\s*\[Op:.*$", "", text, flags=re.S).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


DECODERS = ("soundfile", "tfio")
# A file whose decoded length falls this far short of what its header announces is truncated;
# its audio is kept when at least MIN_TRUNCATED_SECONDS decoded (see `decode_audio`).
TRUNCATION_TOLERANCE = 0.98
MIN_TRUNCATED_SECONDS = 1.0
_TFIO_LOCK = threading.Lock()  # tensorflow-io's reader is not thread-safe


def decode_audio(path: str | Path, decoder: str = "soundfile", max_seconds: float | None = None
                 ) -> tuple[np.ndarray, int]:
    """Decode an audio file to mono float32 samples in [-1, 1] and its sample rate.

    `decoder`: `soundfile` (libsndfile: WAV, FLAC, Ogg Vorbis, Opus, MP3; thread-safe; what
    librosa uses) or `tfio` (tensorflow-io, optional: `pip install keras_music[tfio]`, needs
    TensorFlow 2.17). Channels are mixed down by averaging. `max_seconds` reads only the
    start of the file (libsndfile stops there, so a 2-hour file costs what 30 s cost). Raises
    `AudioDecodeError` for a missing, empty, unreadable, zero-length or entirely silent file.

    A truncated file (a cut download: fewer samples than its header announces) keeps the
    audio that decodes, as librosa does, with a warning, when at least
    `MIN_TRUNCATED_SECONDS` decoded: that much is still the music. Less is refused.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}.")
    path = _checked(path)
    if decoder == "soundfile":
        samples, rate, announced = _decode_soundfile(path, max_seconds)
    else:
        samples, rate, announced = _decode_tfio(path)
        if max_seconds is not None:
            samples = samples[: int(np.ceil(max_seconds * rate))]
    if samples.size == 0:
        raise AudioDecodeError(f"{path}: decodes to zero samples.")
    if rate <= 0:
        raise AudioDecodeError(f"{path}: invalid sample rate {rate}.")
    if announced and samples.size < TRUNCATION_TOLERANCE * announced:
        decoded_s, announced_s = samples.size / rate, announced / rate
        if decoded_s < MIN_TRUNCATED_SECONDS:
            raise AudioDecodeError(f"{path}: truncated: only {decoded_s:.2f} s decode of the {announced_s:.1f} s its "
                                   f"header announces (less than {MIN_TRUNCATED_SECONDS:g} s is not kept).")
        logger.warning("%s: truncated: keeping the %.1f s that decode of the %.1f s its header announces.", path,
                       decoded_s, announced_s)
    if not np.isfinite(samples).all():
        raise AudioDecodeError(f"{path}: decoded samples contain NaN or infinity.")
    if not samples.any():
        raise AudioDecodeError(f"{path}: the audio is entirely silent ({samples.size / rate:.2f} s of zeros).")
    return samples, rate


def _checked(path: str | Path) -> Path:
    """`path`, or the `AudioDecodeError` of a missing, empty or non-UTF-8-named file."""
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: no such file.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: empty file (0 bytes).")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise AudioDecodeError(f"{path}: the file name is not valid UTF-8 ({ascii(path.name)}); clip ids and "
                               "outputs are UTF-8 text, so rename the file.") from None
    return path


def _cannot_decode(path: Path, reason: str) -> AudioDecodeError:
    return AudioDecodeError(f"{path}: cannot decode as audio; the file may be truncated, corrupt or not audio "
                            f"(decoder: {reason}).")


def _libsndfile_reason(error) -> str:
    # libsndfile says "File does not exist or is not a regular file" for data it cannot parse.
    if "not a regular file" in str(error):
        return "unrecognised format or unreadable data"
    return error.error_string or str(error)


def _decode_soundfile(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int, int]:
    """libsndfile: `(mono float32, rate, frames expected)`: the header's length, or the
    `max_seconds` cut of it."""
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as audio:
            rate, announced = audio.samplerate, audio.frames
            wanted = -1 if max_seconds is None else int(np.ceil(max_seconds * rate))
            if wanted >= 0 and announced > 0:
                announced = min(announced, wanted)
            frames = audio.read(frames=wanted, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:
        raise _cannot_decode(path, f"libsndfile: {_libsndfile_reason(error)}") from error
    except (RuntimeError, ValueError, TypeError) as error:
        raise _cannot_decode(path, str(error)[:200]) from error
    if frames.shape[1] == 1:
        return frames[:, 0], rate, announced
    return frames.mean(axis=1, dtype=np.float32), rate, announced


def _decode_tfio(path: Path) -> tuple[np.ndarray, int, int]:
    """tensorflow-io (optional backend): `(mono float32, rate, 0)` (it trusts its header, so
    it never sees a truncation; it fails instead)."""
    try:
        import tensorflow_io as tfio
    except ImportError as error:
        raise AudioDecodeError(f"{path}: --decoder tfio needs tensorflow-io (pip install 'keras_music[tfio]', "
                               f"TensorFlow 2.17): {error}") from None
    try:
        with _TFIO_LOCK:
            audio = tfio.audio.AudioIOTensor(str(path))
            samples = audio.to_tensor()
            rate = int(audio.rate.numpy())
    except (tf.errors.OpError, ValueError, TypeError, RuntimeError) as error:
        raise _cannot_decode(path, _short_reason(error)) from error
    return _to_mono_float32(samples), rate, 0


def _to_mono_float32(decoded) -> np.ndarray:
    """tensorflow-io's PCM/float tensor `(samples[, channels])` -> mono float32 in [-1, 1], with as
    few full-length copies as possible (long files: memory grows with the audio, not a multiple)."""
    scale = _PCM_SCALE.get(decoded.dtype)
    array = decoded.numpy()
    del decoded
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        mono = array.mean(axis=1, dtype=np.float32)
    else:
        mono = array.astype(np.float32, copy=scale is not None)  # PCM: a copy we may scale in place
    del array
    if scale:
        mono *= np.float32(1.0 / scale)
    return mono


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM mono WAV file bytes of float samples in [-1, 1] (clipped); what `tf.audio.decode_wav`
    and the exported `serve_audio` signature read."""
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


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


def resample_like(samples: np.ndarray, orig_rate: int, recipe: FeatureRecipe) -> np.ndarray:
    """Numpy samples at `orig_rate` -> float32 at the recipe's rate, with the recipe's resampler."""
    if orig_rate == recipe.sample_rate:
        return samples
    if recipe.resampler == "soxr_hq":
        import soxr

        return soxr.resample(samples, orig_rate, recipe.sample_rate, quality="HQ").astype(np.float32, copy=False)
    return resample(samples, orig_rate, recipe.sample_rate).numpy()


def load_audio(path: str | Path, recipe: FeatureRecipe = FeatureRecipe(), decoder: str = "soundfile") -> np.ndarray:
    """Decode, mix to mono, resample to the recipe's rate (its resampler) and keep at most `max_seconds`."""
    # Only the start is read (with one sample of margin for the resampler's edge).
    margin = None if recipe.max_seconds is None else recipe.max_seconds + 1e-3
    samples, rate = decode_audio(path, decoder, max_seconds=margin)
    samples = resample_like(samples, rate, recipe)
    if recipe.max_seconds is not None:
        samples = samples[: int(round(recipe.max_seconds * recipe.sample_rate))]
    return samples


# --- mel filterbank (numpy constant, librosa-compatible) -----------------------------------

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


def mel_filterbank(recipe: FeatureRecipe) -> np.ndarray:
    """Triangular mel filters, shape `(1 + n_fft // 2, n_mels)`, as `librosa.filters.mel`."""
    fft_freqs = np.linspace(0, recipe.sample_rate / 2, 1 + recipe.n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(recipe.fmin, recipe.mel_scale),
                                  hz_to_mel(recipe.mel_fmax, recipe.mel_scale), recipe.n_mels + 2),
                      recipe.mel_scale)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if recipe.mel_norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype("float32")


# --- feature front end (core TF ops) --------------------------------------------------------

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


# --- block-wise reading: long files in bounded memory ----------------------------------------------

READ_BLOCK_FRAMES = 1 << 16


def audio_length(path: str | Path, target_rate: int) -> int:
    """Samples the file has at `target_rate`, from its header (nothing decoded)."""
    import soundfile

    path = _checked(path)
    try:
        info = soundfile.info(str(path))
    except soundfile.LibsndfileError as error:
        raise _cannot_decode(path, f"libsndfile: {_libsndfile_reason(error)}") from error
    except (RuntimeError, ValueError, TypeError) as error:
        raise _cannot_decode(path, str(error).splitlines()[0][:200]) from error
    if info.samplerate <= 0 or info.frames <= 0:
        raise AudioDecodeError(f"{path}: decodes to zero samples.")
    return int(round(info.frames * target_rate / info.samplerate))


def _stream(path: Path, recipe: FeatureRecipe):
    """Mono float32 blocks at the recipe's rate, decoded and soxr-resampled block by block:
    concatenated, exactly `load_audio` without `max_seconds` (soxr's stream equals its one-shot)."""
    import soundfile
    import soxr

    try:
        with soundfile.SoundFile(str(path)) as sound:
            rate, heard = sound.samplerate, False
            stream = None if rate == recipe.sample_rate else soxr.ResampleStream(
                rate, recipe.sample_rate, 1, dtype="float32", quality="HQ")
            while True:
                block = sound.read(READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < READ_BLOCK_FRAMES
                mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
                if not np.isfinite(mono).all():
                    raise AudioDecodeError(f"{path}: decoded samples contain NaN or infinity.")
                heard = heard or bool(mono.any())
                yield mono if stream is None else stream.resample_chunk(mono, last=last)
                if last:
                    break
    except soundfile.LibsndfileError as error:
        raise _cannot_decode(path, f"libsndfile: {_libsndfile_reason(error)}") from error
    if not heard:
        raise AudioDecodeError(f"{path}: the audio is entirely silent.")


def read_spans(path: str | Path, recipe: FeatureRecipe, spans):
    """Yield the samples `[start, end)` (at the recipe's rate, with its resampler) of each span,
    reading the file once, block by block.

    Why: a 60-minute file decoded and resampled whole costs hundreds of MB; here memory is
    about one span. Spans must not go backwards (`scoring.chunk_plan`'s chunks overlap a
    little and move forward). Block-wise resampling is soxr's stream, identical to resampling
    the whole file, so the spans hold exactly the samples `load_audio` gives. A recipe with
    the `fft` resampler (stores made before soxr) is decoded whole instead. A file that ends
    before a span does (a truncated long file: its header announced more) is an
    `AudioDecodeError`.
    """
    path = Path(path)
    if recipe.resampler != "soxr_hq":
        samples = resample_like(*decode_audio(path), recipe)
        for start, end in spans:
            yield samples[start:end]
        return
    blocks = _stream(path, recipe)
    buffer, buffer_start = np.zeros(0, np.float32), 0  # buffer[0] is sample `buffer_start` of the file
    for start, end in spans:
        if start < buffer_start:
            raise ValueError(f"{path}: spans go backwards (sample {start} after {buffer_start}).")
        while buffer_start + len(buffer) < end:
            block = next(blocks, None)
            if block is None:
                seconds = (buffer_start + len(buffer)) / recipe.sample_rate
                raise AudioDecodeError(f"{path}: truncated: it ends after {seconds:.1f} s, before the end its "
                                       "header announces.")
            buffer = np.concatenate([buffer, block])
            drop = min(max(start - buffer_start, 0), len(buffer))  # what no later span needs
            buffer, buffer_start = buffer[drop:], buffer_start + drop
        yield buffer[start - buffer_start:end - buffer_start].copy()
    for _ in blocks:  # read to the end: the silence check covers the whole file
        pass
