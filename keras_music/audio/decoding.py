"""Audio files -> mono float32 samples at the recipe's rate, outside TensorFlow.

As the TF/Keras ecosystem does now, decoding (`decode_audio`) runs outside TensorFlow:
libsndfile through `soundfile` (WAV of any depth, FLAC, Ogg Vorbis, Opus, MP3; thread-safe;
the decoder librosa uses), or tensorflow-io as an optional backend. It runs only in
extraction and prediction, never inside a model. `resample_like` brings the samples to the
recipe's rate with the recipe's resampler (soxr by default); `SampleStream` reads a long file
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
# A file that decodes to less than this share of what its header announces is reported; its
# audio is kept when at least MIN_TRUNCATED_SECONDS decoded (see `check_decoded_length`).
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

    A file that decodes to fewer samples than its header announces (a cut download, or an MP3
    without a Xing/Info frame, whose length is estimated from its bitrate) keeps the audio that
    decodes, as librosa does: see `check_decoded_length`, the policy `SampleStream` follows too.
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
    check_decoded_length(path, samples.size, announced, rate)
    if not np.isfinite(samples).all():
        raise AudioDecodeError(f"{path}: decoded samples contain NaN or infinity.")
    if not samples.any():
        raise AudioDecodeError(f"{path}: the audio is entirely silent ({samples.size / rate:.2f} s of zeros).")
    return samples, rate


def check_decoded_length(path: Path, decoded: int, announced: int, rate: int) -> None:
    """The policy for a file that decodes to fewer samples than its header announces, the same
    for a file decoded whole and one read block by block.

    Headers are not always exact: an MP3 without a Xing/Info frame (older CBR rips,
    concatenated streams) has a length estimated from its first frame's bitrate, which may be
    minutes off. So what decodes is kept, silently when it falls short by less than
    `1 - TRUNCATION_TOLERANCE` (2%), else with a warning naming the file (a cut download
    looks the same). Less than `MIN_TRUNCATED_SECONDS` is refused: that is no longer music.
    """
    if not announced or decoded >= TRUNCATION_TOLERANCE * announced:
        return
    decoded_s, announced_s = decoded / rate, announced / rate
    if decoded_s < MIN_TRUNCATED_SECONDS:
        raise AudioDecodeError(f"{path}: truncated: only {decoded_s:.2f} s decode of the {announced_s:.1f} s its "
                               f"header announces (less than {MIN_TRUNCATED_SECONDS:g} s is not kept).")
    logger.warning("%s: shorter than its header says: keeping the %.1f s that decode of the %.1f s it announces "
                   "(a cut file, or a length estimated from the bitrate).", path, decoded_s, announced_s)


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

# A multiple of every MPEG audio frame (384, 576 and 1152 samples): libsndfile 1.2's MP3 decoder gives
# other samples after a read that ends inside a frame (measured on a 56 kb/s file without a Xing/Info
# frame: up to 0.6 apart from one whole read), never after one that ends on a frame boundary.
READ_BLOCK_FRAMES = 56 * 1152


def audio_length(path: str | Path, target_rate: int) -> int:
    """Samples the file announces at `target_rate`, from its header (nothing decoded).

    An estimate for an MP3 without a Xing/Info frame: what decodes may be shorter
    (`SampleStream` keeps it, as `decode_audio` does)."""
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
    concatenated, exactly `load_audio` without `max_seconds` (soxr's stream equals its one-shot).
    At the end, `decode_audio`'s checks: its length policy (`check_decoded_length`), no silence."""
    import soundfile
    import soxr

    try:
        with soundfile.SoundFile(str(path)) as sound:
            rate, announced, decoded, heard = sound.samplerate, sound.frames, 0, False
            stream = None if rate == recipe.sample_rate else soxr.ResampleStream(
                rate, recipe.sample_rate, 1, dtype="float32", quality="HQ")
            while True:
                block = sound.read(READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < READ_BLOCK_FRAMES
                decoded += len(block)
                mono = mix_to_mono(block)
                if not np.isfinite(mono).all():
                    raise AudioDecodeError(f"{path}: decoded samples contain NaN or infinity.")
                heard = heard or bool(mono.any())
                yield mono if stream is None else stream.resample_chunk(mono, last=last)
                if last:
                    break
    except soundfile.LibsndfileError as error:
        raise _cannot_decode(path, f"libsndfile: {_libsndfile_reason(error)}") from error
    if not decoded:
        raise AudioDecodeError(f"{path}: decodes to zero samples.")
    check_decoded_length(path, decoded, announced, rate)
    if not heard:
        raise AudioDecodeError(f"{path}: the audio is entirely silent.")


class SampleStream:
    """A file's samples at the recipe's rate (its resampler), read forward block by block.

    Why: a 60-minute file decoded and resampled whole costs hundreds of MB; here memory is
    what lies between the oldest sample still wanted (`forget`) and the last one read.
    Block-wise resampling is soxr's stream, identical to resampling the whole file, so the
    samples are exactly `load_audio`'s. How many there are is known only at the end
    (`finished`): a header's length may be an estimate. A recipe with the `fft` resampler
    (stores made before soxr) is decoded whole instead. Decoding errors and
    `decode_audio`'s checks (silence, the length policy) raise `AudioDecodeError`.
    """

    def __init__(self, path: str | Path, recipe: FeatureRecipe):
        self.path = Path(path)
        self.finished = False
        self._start = 0  # self._buffer[0] is sample `_start` of the file
        if recipe.resampler == "soxr_hq":
            self._blocks, self._buffer = _stream(self.path, recipe), np.zeros(0, np.float32)
        else:
            self._blocks, self._buffer = iter(()), resample_like(*decode_audio(self.path), recipe)
            self.finished = True

    @property
    def read(self) -> int:
        """Samples read so far: all of them once `finished`."""
        return self._start + len(self._buffer)

    def read_block(self) -> None:
        """Read the next block (or learn that the file has ended: `finished`)."""
        block = next(self._blocks, None)
        if block is None:
            self.finished = True
        elif len(block):
            self._buffer = np.concatenate([self._buffer, block])

    def fill(self, end: int) -> None:
        """Read until sample `end` is in, or the file ends."""
        while self.read < end and not self.finished:
            self.read_block()

    def take(self, start: int, end: int) -> np.ndarray:
        """A copy of samples `[start, end)` of those read (and not forgotten)."""
        if start < self._start:
            raise ValueError(f"{self.path}: sample {start} was read and forgotten already (from {self._start}).")
        return self._buffer[start - self._start:end - self._start].copy()

    def forget(self, before: int) -> None:
        """Drop the samples before `before`: nothing later needs them."""
        drop = min(max(before - self._start, 0), len(self._buffer))
        self._buffer, self._start = self._buffer[drop:], self._start + drop

    def read_to_end(self) -> None:
        """Read the rest, keeping none of it: the checks at the end (silence, length) cover the whole file."""
        while not self.finished:
            self.forget(self.read)
            self.read_block()


def read_spans(path: str | Path, recipe: FeatureRecipe, spans):
    """Yield the samples `[start, end)` of each span, reading the file once (`SampleStream`);
    a span past the file's end gets what there is. Spans must not go backwards."""
    samples = SampleStream(path, recipe)
    for start, end in spans:
        samples.forget(start)
        samples.fill(end)
        yield samples.take(start, end)
    samples.read_to_end()
