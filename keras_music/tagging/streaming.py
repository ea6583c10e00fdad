"""Tagging many files at once: reader threads decode while the model scores batches.

Each file (or waveform) is cut into the chunks of `scoring.chunk_plan` (one chunk unless it is
longer than `chunk_seconds`), each sent as WAV bytes to the export's `serve_audio`; the
windows a chunk keeps are exactly the whole file's, so scores do not depend on the chunk
size and memory does not grow with a file's length. Chunks of several files share a call,
each scored alone inside it, so a result equals one file per call. `predict`, the Python
`Tagger` and the Beam tagger (`keras_music.beam.tag`) all go through `read_chunks`.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from keras_music.tagging.results import WindowOutputs


MIN_CHUNK_SECONDS = 60.0  # shorter chunks would hold too few windows of a long model's crop


def check_batching(chunk_seconds: float, batch_size: int, jobs: int = 1) -> None:
    """`ParameterError` unless `chunk_seconds` >= 60 and `batch_size`, `jobs` >= 1."""
    from keras_music.errors import ParameterError

    if chunk_seconds < MIN_CHUNK_SECONDS:
        raise ParameterError("chunk_seconds", chunk_seconds, f"must be at least {MIN_CHUNK_SECONDS:g}.")
    for name, value in (("batch_size", batch_size), ("jobs", jobs)):
        if value < 1:
            raise ParameterError(name, value, "must be at least 1.")


@dataclasses.dataclass
class ChunkInput:
    """One serve_audio input: a chunk of source number `file`, and which of its windows the file keeps
    (`positions` among the chunk's windows, `starts`: their start frames in the file)."""

    file: int
    wav: bytes
    samples: int
    positions: np.ndarray
    starts: np.ndarray


class ReadingStopped(Exception):
    """Raised in a reader thread when the consumer has stopped: the reader quits mid-file."""


def failure_reason(error: Exception) -> str:
    """A one-line reason for a file that failed (decode errors name the file already)."""
    if isinstance(error, ValueError):  # AudioDecodeError and our own checks name the file already
        return str(error)
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"  # a TF op error


def read_chunks(tagger, index: int, source: Path | np.ndarray, chunk_seconds: float, put: Callable) -> None:
    """Cut one source into the chunks of `scoring.chunk_plan` and `put` each as a `ChunkInput`.

    `source` is a file, or mono float samples already at `tagger.sample_rate`. Puts the
    chunks, then `("done", index, samples)` (how many the source has), or `("error", index,
    reason)`. A file up to `chunk_seconds` long (its header says) is decoded and resampled
    whole, exactly as extraction does (`audio.decode_audio`: its checks and length policy, the
    recipe's resampler); a longer one is read block by block (`stream_chunks`: the same
    samples and chunks), so memory does not grow with its length.
    """
    from keras_music.audio.decoding import audio_length, decode_audio, resample_like, wav_bytes
    from keras_music.scoring import chunk_plan, kept_windows

    try:
        rate, recipe, window, hop = tagger.sample_rate, tagger.recipe, tagger.window, tagger.hop
        max_samples = int(chunk_seconds * rate)
        whole = source if isinstance(source, np.ndarray) else None
        if whole is None and audio_length(source, rate) <= max_samples:
            whole = resample_like(*decode_audio(source, tagger.decoder), recipe)
        if whole is not None:
            parts = ((chunk, whole[chunk.start:chunk.end]) for chunk in chunk_plan(len(whole), recipe, window, hop,
                                                                                   max_samples))
        else:
            parts = stream_chunks(source, recipe, window, hop, max_samples)
        num_samples = 0
        for chunk, samples in parts:
            positions, file_starts = kept_windows(chunk, recipe, window, hop)
            put(ChunkInput(index, wav_bytes(samples, rate), len(samples), positions, file_starts))
            num_samples = chunk.end  # the last chunk ends where the source does
        put(("done", index, num_samples))
    except ReadingStopped:
        raise
    except Exception as error:  # reported as this file's failure; the run goes on
        put(("error", index, failure_reason(error)))


def stream_chunks(path: Path, recipe, window: int, hop: int, max_samples: int):
    """Yield `(chunk, samples)` for the chunks of `scoring.chunk_plan` of a file read block by
    block (`audio.SampleStream`), without knowing its length beforehand.

    Why: a header's length may be an estimate (an MP3 without a Xing/Info frame), and the plan
    of the length the file really has is what scoring the decoded samples whole gives: its last
    chunk ends where the audio ends. A chunk is yielded once the samples read so far fix it:
    when, in the plan of that many samples, it is not the last and ends before them, it is the
    same chunk in the plan of any longer file. The rest come when the file has ended.
    """
    from keras_music.audio.decoding import SampleStream
    from keras_music.scoring import chunk_plan

    samples, done = SampleStream(path, recipe), 0
    while True:
        plan = chunk_plan(samples.read, recipe, window, hop, max_samples)
        if samples.finished:
            break
        if done < len(plan) and plan[done].keep_to != math.inf and plan[done].end < samples.read:
            chunk = plan[done]
            samples.forget(chunk.start)  # later chunks start no earlier
            yield chunk, samples.take(chunk.start, chunk.end)
            done += 1
        else:
            samples.read_block()
    for chunk in plan[done:]:
        samples.forget(chunk.start)
        yield chunk, samples.take(chunk.start, chunk.end)


def kept_outputs(chunk: ChunkInput, outputs):
    """The windows of a chunk's serve_audio outputs (`results.WindowOutputs`) that its file keeps
    (`chunk.positions`)."""
    if len(outputs) <= chunk.positions.max(initial=-1):
        raise ValueError(f"serve_audio returned {len(outputs)} windows for a chunk of {chunk.samples} samples, "
                         "keras_music.scoring expects more; the export and this keras_music disagree on the "
                         "window rule (export the run again).")
    return outputs.take(chunk.positions)


@dataclasses.dataclass
class _SourceWindows:
    num_samples: int = 0
    parts: list = dataclasses.field(default_factory=list)  # WindowOutputs of each chunk, in order
    starts: list = dataclasses.field(default_factory=list)
    error: str | None = None


def stream_results(tagger, sources: Sequence[Path | np.ndarray], names: Sequence[str | None],
                   chunk_seconds: float = 60.0, jobs: int = 2, batch_size: int = 8,
                   embeddings: bool = False) -> Iterator[tuple[int, object, str | None]]:
    """Yield `(index, TagResult or None, reason or None)` for each source as it finishes (not in input order).

    `jobs` reader threads decode files (soundfile releases the GIL) while this thread runs
    `serve_audio` on batches of up to `batch_size` chunks holding at most `chunk_seconds` of
    audio in all. A batch that fails is retried chunk by chunk, so one bad file fails alone.
    `names[i]` is the `file` of source i's result.
    """
    pending = queue.Queue(maxsize=batch_size + jobs)
    stop = threading.Event()
    max_samples = int(chunk_seconds * tagger.sample_rate)
    todo, todo_lock = iter(range(len(sources))), threading.Lock()

    def put(item):
        while not stop.is_set():
            try:
                return pending.put(item, timeout=0.5)
            except queue.Full:
                continue
        raise ReadingStopped

    def reader():
        while not stop.is_set():
            with todo_lock:
                index = next(todo, None)
            if index is None:
                return
            try:
                read_chunks(tagger, index, sources[index], chunk_seconds, put)
            except ReadingStopped:
                return

    # Daemon threads: a caller that stops iterating and keeps the generator (a notebook) must not
    # keep the process from exiting; closing or dropping the generator stops them at their next chunk.
    readers = [threading.Thread(target=reader, name=f"keras-music-read-{i}", daemon=True)
               for i in range(max(1, jobs))]
    states: dict[int, _SourceWindows] = {}
    finished, carry = 0, None
    try:
        for thread in readers:
            thread.start()
        while finished < len(sources):
            batch, controls, samples = [], [], 0
            item = carry if carry is not None else pending.get()
            carry = None
            while True:
                if isinstance(item, ChunkInput):
                    if batch and (len(batch) >= batch_size or samples + item.samples > max_samples):
                        carry = item
                        break
                    batch.append(item)
                    samples += item.samples
                else:
                    controls.append(item)
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
            _score(tagger, batch, states, embeddings)
            for kind, index, value in controls:
                state = states.setdefault(index, _SourceWindows())
                if kind == "done":
                    state.num_samples = value
                finished += 1
                del states[index]
                reason = value if kind == "error" else state.error
                if reason is not None:
                    yield index, None, reason
                else:
                    yield index, tagger.result(names[index], state.num_samples, WindowOutputs.join(state.parts),
                                               np.concatenate(state.starts)), None
    finally:
        stop.set()
        for thread in readers:
            if thread.is_alive():
                thread.join()


def _score(tagger, batch: list[ChunkInput], states: dict, embeddings: bool) -> None:
    """Run a batch through serve_audio and keep each chunk's windows; a failing batch goes chunk by chunk."""
    live = [c for c in batch if states.setdefault(c.file, _SourceWindows()).error is None]
    if not live:
        return
    try:
        outputs = tagger.window_outputs([c.wav for c in live], embeddings=embeddings)
    except Exception as error:
        if len(live) > 1:
            for chunk in live:
                _score(tagger, [chunk], states, embeddings)
            return
        states[live[0].file].error = failure_reason(error)
        return
    for chunk, chunk_outputs in zip(live, outputs):
        state = states[chunk.file]
        try:
            state.parts.append(kept_outputs(chunk, chunk_outputs))
        except ValueError as error:
            state.error = str(error)
            continue
        state.starts.append(chunk.starts)
