"""Audio files -> mono float32 samples at the recipe's rate, outside TensorFlow.

As the TF/Keras ecosystem does now, decoding (`decode_audio`) runs outside TensorFlow:
libsndfile through `soundfile` (WAV of any depth, FLAC, Ogg Vorbis, Opus, MP3; thread-safe;
the decoder librosa uses), or tensorflow-io as an optional backend. It runs only in
extraction and prediction, never inside a model. `resample_like` brings the samples to the
recipe's rate with the recipe's resampler (soxr by default); `read_spans` reads a long file
block by block in bounded memory; `wav_bytes` encodes samples for the exported `serve_audio`.

Nothing here imports TensorFlow at import time (only the tfio backend and the `fft`
resampler start it, when used), so extraction workers and prediction readers decode without
paying for TensorFlow.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import numpy as np

from keras_music.config import FeatureRecipe

logger = logging.getLogger(__name__)

# Integer PCM from tensorflow-io is left-justified in its container type.
_PCM_SCALE = {np.dtype("int16"): 32768.0, np.dtype("int32"): 2147483648.0, np.dtype("uint8"): 128.0}


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
    return mix_to_mono(frames), rate, announced


def _decode_tfio(path: Path) -> tuple[np.ndarray, int, int]:
    """tensorflow-io (optional backend): `(mono float32, rate, 0)` (it trusts its header, so
    it never sees a truncation; it fails instead)."""
    try:
        import tensorflow_io as tfio
    except ImportError as error:
        raise AudioDecodeError(f"{path}: --decoder tfio needs tensorflow-io (pip install 'keras_music[tfio]', "
                               f"TensorFlow 2.17): {error}") from None
    import tensorflow as tf

    try:
        with _TFIO_LOCK:
            audio = tfio.audio.AudioIOTensor(str(path))
            samples = audio.to_tensor()
            rate = int(audio.rate.numpy())
    except (tf.errors.OpError, ValueError, TypeError, RuntimeError) as error:
        raise _cannot_decode(path, _short_reason(error)) from error
    return _tfio_mono(samples), rate, 0


def mix_to_mono(frames: np.ndarray) -> np.ndarray:
    """Samples `(samples,)` or `(samples, channels)` -> mono float32 `(samples,)`, channels averaged.

    The one mix-down of every decoder and of the block-wise reader; a mono input is not copied
    when it is float32 already.
    """
    if frames.ndim == 2 and frames.shape[1] == 1:
        frames = frames[:, 0]
    if frames.ndim == 2:
        return frames.mean(axis=1, dtype=np.float32)
    return frames.astype(np.float32, copy=False)


def _tfio_mono(decoded) -> np.ndarray:
    """tensorflow-io's PCM/float tensor `(samples[, channels])` -> mono float32 in [-1, 1], with as
    few full-length copies as possible (long files: memory grows with the audio, not a multiple)."""
    array = decoded.numpy()
    del decoded
    scale = _PCM_SCALE.get(array.dtype)
    mono = mix_to_mono(array)  # PCM: always a new float32 array, which we may scale in place
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


def resample_like(samples: np.ndarray, orig_rate: int, recipe: FeatureRecipe) -> np.ndarray:
    """Numpy samples at `orig_rate` -> float32 at the recipe's rate, with the recipe's resampler."""
    if orig_rate == recipe.sample_rate:
        return samples
    if recipe.resampler == "soxr_hq":
        import soxr

        return soxr.resample(samples, orig_rate, recipe.sample_rate, quality="HQ").astype(np.float32, copy=False)
    # The `fft` resampler (stores made before soxr) is a TensorFlow op: the front end's.
    from keras_music.audio.frontend import resample

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
                mono = mix_to_mono(block)
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
