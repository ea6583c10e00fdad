"""`Tagger`: tag audio with an export of ours from Python, as `keras-music predict` does from the shell.

    import keras_music as km

    tagger = km.Tagger.from_preset("emotion_4q")      # the packaged 4Q emotion model
    result = tagger.tag("song.mp3")
    result.tags, result.arousal, result.valence

The tagger runs the export's `serve_audio` signature (the graph TF Serving runs), so Python,
`predict`, Beam and TF Serving give the same numbers for the same file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from keras_music.config import FeatureRecipe
from keras_music.errors import MissingPathError, ParameterError
from keras_music.precision import resolve_precision, use_precision
from keras_music.tagging.exports import export_identity, resolve_export
from keras_music.tagging.inputs import find_audio_files
from keras_music.tagging.presets import DEFAULT_PRESET, installed, preset_names
from keras_music.tagging.results import TagResult, WindowGeometry, WindowOutputs, result_from_windows, tag_groups
from keras_music.tagging.streaming import check_batching, stream_results
from keras_music.tagging.writers import RecordLayout, ResultLog, format_of

DECODERS = ("soundfile", "tfio")


def check_options(decoder: str = "soundfile", top_k: int = 3, precision: str = "float32") -> None:
    """`ParameterError` for a `Tagger` option out of range (before any model is built or loaded)."""
    if decoder not in DECODERS:
        raise ParameterError("decoder", decoder, f"expected one of {', '.join(DECODERS)}.")
    if not (isinstance(top_k, int) and top_k >= 1):
        raise ParameterError("top_k", top_k, "expected a whole number of at least 1.")
    resolve_precision(precision)


class Tagger:
    """An exported emotion tagger: decode audio, score it by windows, name its tags.

    Args:
        path: an export, as `keras-music export` writes it: a version folder
            (`saved_models/NAME/3`) or a model folder (`saved_models/NAME`, newest version).
        decoder: "soundfile" (libsndfile: WAV, FLAC, OGG, Opus, MP3) or "tfio" (tensorflow-io).
        load: load the graph now (default); False reads the metadata only and loads the graph
            at first use.
        top_k: how many names of each tag group (genre, mood, instrument, vocals, era, sound) a
            result's `top_tags` lists, for exports whose front end has tags of its own (the
            packaged model: musicnn's MSD and MTT tags, which have no thresholds).
        precision: "float32" (default), "bfloat16" or "auto" (bfloat16 on CPUs that compute it
            natively: about twice as fast for the packaged model, probabilities within 0.05).
            bfloat16 is TensorFlow's oneDNN auto mixed precision, a process-wide option: other
            graphs run later in the same process get it too (`keras_music.precision`).

    Example:

    >>> import keras_music as km
    >>> tagger = km.Tagger.from_preset("emotion_4q")
    >>> tagger.labels
    ['quadrant_q1', 'quadrant_q2', 'quadrant_q3', 'quadrant_q4']
    >>> result = tagger.tag(SONG)
    >>> sorted(result.probabilities) == tagger.labels and 0 <= result.arousal <= 1
    True
    >>> result.quadrant in ("Q1 happy/excited", "Q2 angry/tense", "Q3 sad/depressed", "Q4 calm/relaxed")
    True
    >>> list(result.top_tags), len(result.tag_probabilities["msd"])
    (['genre', 'mood', 'instrument', 'vocals', 'era', 'sound'], 50)
    """

    def __init__(self, path: str | Path, decoder: str = "soundfile", load: bool = True, top_k: int = 3,
                 precision: str = "float32"):
        check_options(decoder, top_k, precision)
        self.top_k = top_k
        self.precision = resolve_precision(precision)  # what it runs in: float32 or bfloat16
        self.path, self.metadata = resolve_export(path)
        self.decoder = decoder
        self.labels: list[str] = list(self.metadata["labels"])
        self.sample_rate = int(self.metadata["sample_rate"])
        self.thresholds = np.array([self.metadata["thresholds"][t] for t in self.labels])
        self.embedding_width = int(self.metadata.get("embedding_width") or 0)
        self.tag_sets: dict = self.metadata.get("tag_sets") or {}  # name -> labels, groups, names, source
        source = f"{self.path / 'assets' / 'metadata.json'} recipe"
        self.recipe = FeatureRecipe.from_dict(self.metadata["recipe"], source=source)
        self.window, self.hop = int(self.metadata["window_frames"]), int(self.metadata["window_hop_frames"])
        self.geometry = WindowGeometry(self.sample_rate, self.recipe, self.window, self.hop)
        self._graph_ran = False
        if load:
            self.serve_audio  # noqa: B018 -- load and check the graph now, not at the first file

    @classmethod
    def from_export(cls, path: str | Path, **kwargs) -> Tagger:
        """The tagger of an export folder (see the class's `path`)."""
        return cls(path, **kwargs)

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET, **kwargs) -> Tagger:
        """A model that ships with the package (`Tagger.presets()`), built on first use, offline."""
        check_options(**{k: v for k, v in kwargs.items() if k in ("decoder", "top_k", "precision")})
        return cls(installed(name), **kwargs)

    @staticmethod
    def presets() -> list[str]:
        """The names `from_preset` takes."""
        return preset_names()

    def __repr__(self) -> str:
        return f"Tagger({str(self.path)!r}, labels={self.labels})"

    @functools.cached_property
    def serve_audio(self):
        """The export's serve_audio signature, loaded on first use."""
        from keras_music.tf_logging import filtered_stderr, import_tensorflow

        import_tensorflow()  # without its C++ start-up lines
        import tensorflow as tf

        use_precision(self.precision)

        with filtered_stderr():
            signature = tf.saved_model.load(str(self.path)).signatures["serve_audio"]
        if "window_count" not in signature.structured_outputs:
            raise ValueError(f"{self.path}: its serve_audio has no window_logits/window_count outputs (exported by "
                             "an older keras_music); export the run again.")
        return signature

    @functools.cached_property
    def identity(self) -> str:
        """`NAME/VERSION:digest` of the export: what a resumed output file must have been written with."""
        return export_identity(self.path)

    def layout(self, per_window: bool = False, embeddings: bool = False) -> RecordLayout:
        """What this tagger's records hold (CSV columns), per window or per file, with embeddings or not."""
        return RecordLayout(tuple(self.labels), tuple(tag_groups(self.tag_sets)), per_window,
                            self.embedding_width if embeddings else 0)

    def check_embeddings(self) -> None:
        """`ValueError` unless the export serves embeddings (exports of older keras_music builds do not)."""
        if not self.embedding_width or "window_embeddings" not in self.serve_audio.structured_outputs:
            raise ValueError(f"{self.path}: its serve_audio has no embeddings (exported by an older keras_music); "
                             "export the run again.")

    def window_outputs(self, wavs: list[bytes], embeddings: bool = False) -> list[WindowOutputs]:
        """The `WindowOutputs` of each WAV-encoded clip (one serve_audio call): its windows' logits, their
        embeddings (when asked for) and tag sets' logits, windows in `scoring.window_starts` order."""
        import tensorflow as tf

        from keras_music.tf_logging import filtered_stderr

        if embeddings:
            self.check_embeddings()
        if self._graph_ran:
            out = self.serve_audio(audio=tf.constant(wavs, dtype=tf.string))
        else:  # the first run optimises the graph: oneDNN's DT_HALF line on CPUs without AVX-512
            with filtered_stderr():
                out = self.serve_audio(audio=tf.constant(wavs, dtype=tf.string))
            self._graph_ran = True
        logits, counts = out["window_logits"].numpy(), out["window_count"].numpy()
        vectors = out["window_embeddings"].numpy() if embeddings else None
        sets = {name: out[f"{name}_window_logits"].numpy() for name in self.tag_sets}
        return [WindowOutputs(logits[i, :counts[i]], None if vectors is None else vectors[i, :counts[i]],
                              {name: values[i, :counts[i]] for name, values in sets.items()})
                for i in range(len(wavs))]

    def result(self, file: str | Path | None, num_samples: int, windows: WindowOutputs,
               starts: np.ndarray) -> TagResult:
        """A `TagResult` from a source's window outputs and start frames (`keras_music.tagging.streaming`)."""
        return result_from_windows(file, num_samples, windows, starts, self.labels, self.thresholds, self.geometry,
                                   self.tag_sets, self.top_k)

    def _mono_at_model_rate(self, waveform, sample_rate: int | None) -> np.ndarray:
        from keras_music.audio.decoding import mix_to_mono, resample_like

        if sample_rate is None or not sample_rate > 0:
            raise ParameterError("sample_rate", sample_rate,
                                 "a waveform needs its sample rate in Hz (for example sample_rate=44100).")
        samples = np.asarray(waveform)
        if samples.dtype.kind in "iu":  # PCM integers: to [-1, 1], as the decoders scale them
            info = np.iinfo(samples.dtype)
            samples = (samples.astype("float64") - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
        elif samples.dtype.kind != "f":
            raise ParameterError("audio", f"array of {samples.dtype}", "expected float samples in [-1, 1] or PCM "
                                 "integers.")
        samples = samples.astype("float32")
        if samples.ndim == 2 and samples.shape[0] <= 8 < samples.shape[1]:
            samples = samples.T  # (channels, n), as librosa (mono=False) and torchaudio give it
        if samples.ndim == 2:
            samples = mix_to_mono(samples)
        if samples.ndim != 1 or not len(samples):
            raise ParameterError("audio", f"array of shape {np.shape(waveform)}",
                                 "expected samples (n,), (n, channels) or (channels, n) with n > 0.")
        if not np.isfinite(samples).all():
            raise ParameterError("audio", "waveform", "holds NaN or infinite samples.")
        if not samples.any():
            raise ParameterError("audio", "waveform", "is entirely silent.")
        return resample_like(samples, int(sample_rate), self.recipe)

    def _one(self, audio, sample_rate: int | None, embeddings: bool) -> TagResult:
        if embeddings:
            self.check_embeddings()
        if isinstance(audio, (str, Path)):
            path = Path(audio)
            if path.is_dir():
                raise ParameterError("audio", audio, "is a folder; tag_files tags folders.")
            if not path.is_file():
                raise MissingPathError("audio", audio, "no such file.")
            source, name = path, str(audio)
        else:
            source, name = self._mono_at_model_rate(audio, sample_rate), None
        (_, result, reason), = stream_results(self, [source], [name], jobs=1, embeddings=embeddings)
        if reason is not None:
            from keras_music.audio.decoding import AudioDecodeError

            raise AudioDecodeError(reason)
        return result

    def tag(self, audio: str | Path | np.ndarray, sample_rate: int | None = None, embeddings: bool = False) -> TagResult:
        """Tag one file, or a waveform with its `sample_rate`: `(n,)`, `(n, channels)` or
        `(channels, n)` floats in [-1, 1] (or PCM integers), resampled as files are.

        Raises `AudioDecodeError` (a ValueError) naming the file when it cannot be decoded, and
        `ParameterError` for a bad argument. `embeddings=True` also fills `result.embedding`.
        """
        return self._one(audio, sample_rate, embeddings)

    def embed(self, audio: str | Path | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """The export's embedding of a file or waveform: the mean of its windows' vectors before the
        tag layer (`embedding_width` values), for similarity search and clustering."""
        return np.asarray(self._one(audio, sample_rate, embeddings=True).embedding)

    def tag_files(self, paths: Iterable[str | Path], out: str | Path | None = None, *, embeddings: bool = False,
                  per_window: bool = False, retry_failed: bool = False, jobs: int = 2, batch_size: int = 8,
                  chunk_seconds: float = 60.0, fmt: str | None = None) -> Iterator[TagResult]:
        """Tag files and folders (recursive): an iterator of one `TagResult` per file, as each finishes.

        The arguments are checked (and `out` opened) when called; the work runs as you iterate
        (`for result in ...`, or `list(...)`). Files that cannot be read are yielded too, with
        `result.error` set; the others still run. With `out` (.csv or .jsonl) each record is
        appended as its file finishes, and calling again with the same `out` resumes: files
        already there are skipped (failed ones too, unless `retry_failed`) and not yielded
        again. `jobs` threads decode while the model scores batches of `batch_size` files;
        files longer than `chunk_seconds` go in chunks (same scores, bounded memory).
        Stopping early (`break`) stops the reader threads.
        """
        check_batching(chunk_seconds, batch_size, jobs)
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not any(Path(p).exists() for p in paths):
            raise MissingPathError("paths", ", ".join(map(str, paths)), "no such file or folder.")
        fmt = format_of(out, fmt)
        if out is not None and fmt not in ("csv", "jsonl"):
            raise ParameterError("out", out, "tag_files appends records to a .csv or .jsonl file.")
        if embeddings:
            self.check_embeddings()
        files, bad = find_audio_files(paths)
        # Opened now, not at the first result: a layout or model mismatch is an error of this call.
        log = ResultLog(out, fmt, self.layout(per_window, embeddings), self.identity) if out is not None else None
        if log:
            files = log.todo(files, retry_failed)
        return self._tag_files(files, bad, log, embeddings, jobs, batch_size, chunk_seconds)

    def _tag_files(self, files, bad, log, embeddings, jobs, batch_size, chunk_seconds) -> Iterator[TagResult]:
        try:
            for name, reason in bad:  # arguments that hold no audio: reported, never recorded in `out`
                yield TagResult(file=name, seconds=0.0, error=reason)
            names = [str(f) for f in files]
            for index, result, reason in stream_results(self, files, names, chunk_seconds, jobs, batch_size,
                                                         embeddings):
                if reason is not None:
                    result = TagResult(file=names[index], seconds=0.0, error=reason)
                    if log:
                        log.add_failure(names[index], reason)
                elif log:
                    log.add(result)
                yield result
        finally:
            if log:
                log.close()
