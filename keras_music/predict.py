"""Tag audio files with an exported emotion model (the SavedModel alone; no training data).

    python -m keras_music.predict song.mp3                  # the packaged 4Q model (research use only)
    python -m keras_music.predict song.mp3 --model saved_models/emotion_cnn_lstm
    python -m keras_music.predict ../shared/audio --model saved_models/emotion_cnn_lstm/1 --format json
    python -m keras_music.predict long.flac --model saved_models/emotion_4q --per-window

    python -m keras_music.predict ~/music --model saved_models/emotion_4q --out tags.jsonl --plot curves/
    python -m keras_music.predict ~/music --model saved_models/emotion_4q --embeddings --out music.jsonl

Files and folders (searched recursively for .wav, .flac, .ogg, .oga, .opus, .mp3) are decoded
with soundfile (or `--decoder tfio`; files longer than `--chunk-seconds` block by block,
`audio.read_spans`), mixed to mono, resampled to the model's rate
and sent, as WAV bytes, to the model's `serve_audio` signature (the graph TF Serving runs),
which scores them as `keras_music.evaluate` does: windows of the model's training crop
every `window_hop` frames, mean of the windows' logits (`keras_music.scoring`). Files
longer than `--chunk-seconds` go in the overlapping chunks of `scoring.chunk_plan`, whose
windows are exactly the whole file's, so memory does not grow with a file's length and
the scores do not depend on the chunk size; shorter files share a call (`--batch-size`),
each scored alone inside it. `--jobs` threads decode while the model scores. A file's
scores are the sigmoid of the mean window logits; tags above the per-tag thresholds of
the export's metadata are listed. With `--embeddings` each file's record also holds its
`embedding`: the mean of its windows' embeddings (the export's vector before the tag
layer), for searching and clustering a collection; JSON: a list of floats, CSV: columns
`emb_0`..`emb_<width-1>` (not with `--per-window`, whose CSV rows are windows).

Collections: with `--out X.csv` or `--out X.jsonl` a record is appended and flushed as each
file finishes (fsync'd every 16 records and at the end), so a killed run keeps its work, and
the same command run again resumes automatically: files already in X are skipped, failed
ones too (their `error` record stays; `--retry-failed` tries them again, the newest record
of a file wins). X written with another model (export digest in each record's `model`) or
layout (`--per-window`, `--embeddings`, format) is an error, never mixed. More than 100 files need `--out`; without it results go
to stdout at the end, in the order given (jsonl: a line per file as it finishes).
Unreadable files are reported with the reason and skipped; the exit code is 1 when any
file failed.

Catalogs beyond one machine: `python -m keras_music.beam.tag` (pip install "keras_music[beam]")
tags files with an Apache Beam pipeline (RunInference over the same export) and writes the
same records.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from keras_music.tf_logging import import_tensorflow

logger = logging.getLogger("keras_music.predict")


def resolve_export(path: str | Path) -> tuple[Path, dict]:
    """The export `--model` names (its newest version when it names a model folder) and its
    metadata, or a clear error. Reads files only, so `main` checks `--model` before TensorFlow starts."""
    from keras_music.export import existing_versions

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        versions = existing_versions(path)
        if not versions:
            raise FileNotFoundError(f"--model {str(path)!r}: no saved_model.pb there and no version folders "
                                    "under it (expected saved_models/NAME or saved_models/NAME/VERSION).")
        path = path / str(versions[-1])
    metadata_path = path / "assets" / "metadata.json"
    if not metadata_path.is_file():
        raise FileNotFoundError(f"{metadata_path} does not exist: not an export of keras_music.export.")
    metadata = json.loads(metadata_path.read_text())
    if metadata.get("task") != "emotion" or "serve_audio" not in metadata.get("signatures", {}):
        raise ValueError(f"{path} ({metadata.get('task')} {metadata.get('model')}) has no serve_audio "
                         "signature; predict needs an emotion model on sequences (cnn_lstm or mlp_lstm).")
    return path, metadata


class InputError(Exception):
    """Nothing to tag, or `--model` is no export: its text is the `error: ...` lines to print."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(f"error: {problem}" for problem in problems))


def check_inputs(paths: list[str], model: str | None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The audio files of `paths` and the (path, reason) of bad ones, after every check that needs
    no TensorFlow, so a typo costs no start-up or model load (`predict`, `beam.tag`).

    Raises `InputError` when no path exists, none holds audio, or `model` is not an export."""
    if not any(os.path.exists(name) for name in paths):
        raise InputError([f"no such file or folder: {', '.join(paths)}"])
    files, failed = expand(paths)
    if not files:
        raise InputError([f"{name}: {reason}" for name, reason in failed] + ["no audio file to tag."])
    if model is not None:
        try:
            resolve_export(model)
        except (FileNotFoundError, ValueError) as error:
            raise InputError([str(error)]) from None
    return files, failed


class ExportedTagger:
    """An exported emotion model: its `serve_audio` signature and metadata.

    Args:
        path: a version folder (`saved_models/NAME/3`) or a model folder
            (`saved_models/NAME`, whose newest version is used).
        embeddings: also return the windows' embeddings (`window_outputs`) and each file's
            `embedding` (`file_result`); an export without them is an error.
        load: load the graph now (default); False reads the metadata only and loads the
            graph at the first `window_outputs` (Beam steps that only decode or assemble).
    """

    def __init__(self, path: str | Path, decoder: str = "soundfile", embeddings: bool = False, load: bool = True):
        self.path, self.metadata = resolve_export(path)
        self.decoder = decoder
        self.labels = self.metadata["labels"]
        self.sample_rate = int(self.metadata["sample_rate"])
        self.thresholds = np.array([self.metadata["thresholds"][t] for t in self.labels])
        self.embeddings = embeddings
        self.embedding_width = int(self.metadata["embedding_width"]) if embeddings else 0
        from keras_music.config import FeatureRecipe

        source = f"{self.path / 'assets' / 'metadata.json'} recipe"
        self.recipe = FeatureRecipe.from_dict(self.metadata["recipe"], source=source)
        self.window, self.hop = int(self.metadata["window_frames"]), int(self.metadata["window_hop_frames"])
        if load:
            self._serve_audio  # noqa: B018 -- load and check the graph now, not at the first file

    @functools.cached_property
    def _serve_audio(self):
        """The export's serve_audio signature, loaded on first use (metadata-only users never load it)."""
        import tensorflow as tf

        signature = tf.saved_model.load(str(self.path)).signatures["serve_audio"]
        if "window_count" not in signature.structured_outputs:
            raise ValueError(f"{self.path}: its serve_audio has no window_logits/window_count outputs (exported by "
                             "an older keras_music); export the run again.")
        if self.embeddings and "window_embeddings" not in signature.structured_outputs:
            raise ValueError(f"{self.path}: its serve_audio has no embeddings (exported by an older keras_music); "
                             "export the run again for --embeddings.")
        return signature

    def window_outputs(self, wavs: list[bytes]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """`(logits (windows, tags), embeddings (windows, width) or None)` of each WAV-encoded clip (one
        serve_audio call), windows in `scoring.window_starts` order; embeddings only with `embeddings`."""
        import tensorflow as tf

        out = self._serve_audio(audio=tf.constant(wavs, dtype=tf.string))
        logits, counts = out["window_logits"].numpy(), out["window_count"].numpy()
        embeddings = out["window_embeddings"].numpy() if self.embeddings else None
        return [(logits[i, :counts[i]], None if embeddings is None else embeddings[i, :counts[i]])
                for i in range(len(wavs))]

    def window_logits(self, wavs: list[bytes]) -> list[np.ndarray]:
        """Logits `(windows, tags)` of each WAV-encoded clip (one serve_audio call), windows in
        `scoring.window_starts` order."""
        return [logits for logits, _ in self.window_outputs(wavs)]

    @functools.cached_property
    def identity(self) -> str:
        """`NAME/VERSION:digest` of the export's graph, weights index and metadata: what a resumed
        output file must have been written with."""
        digest = hashlib.sha256()
        for part in ("saved_model.pb", "variables/variables.index", "assets/metadata.json"):
            if (self.path / part).is_file():
                digest.update((self.path / part).read_bytes())
        return f"{self.path.parent.name}/{self.path.name}:{digest.hexdigest()[:12]}"


@dataclasses.dataclass
class _Chunk:
    """One serve_audio input: a chunk of file `file` and which of its windows the file keeps."""

    file: int
    wav: bytes
    samples: int
    positions: np.ndarray
    starts: np.ndarray


@dataclasses.dataclass
class _FileState:
    num_samples: int = 0
    logits: list = dataclasses.field(default_factory=list)
    embeddings: list = dataclasses.field(default_factory=list)
    starts: list = dataclasses.field(default_factory=list)
    error: str | None = None


def _reason(error: Exception) -> str:
    if isinstance(error, ValueError):  # AudioDecodeError and our own checks name the file already
        return str(error)
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"  # a TF op error


def read_chunks(tagger: ExportedTagger, index: int, path: Path, chunk_seconds: float, put) -> None:
    """Decode one file into the chunks of `scoring.chunk_plan` and `put` each as WAV bytes.

    Runs in a reader thread; puts `("start", index, samples)`, the `_Chunk`s, then
    `("done", index, None)`, or `("error", index, reason)`. A file up to `chunk_seconds` long
    is decoded and resampled whole, exactly as extraction does (`audio.decode_audio`: its
    checks and truncation policy, the recipe's resampler); a longer one is read block by
    block (`audio.read_spans`, the same samples), so memory does not grow with its length.
    """
    from keras_music.audio import audio_length, decode_audio, read_spans, resample_like, wav_bytes
    from keras_music.scoring import chunk_plan, kept_windows

    try:
        rate, recipe, window, hop = tagger.sample_rate, tagger.recipe, tagger.window, tagger.hop
        max_samples = int(chunk_seconds * rate)
        num_samples = audio_length(path, rate)
        whole = None
        if num_samples <= max_samples:
            whole = resample_like(*decode_audio(path, tagger.decoder), recipe)
            num_samples = len(whole)
        plan = chunk_plan(num_samples, recipe, window, hop, max_samples)
        put(("start", index, num_samples))
        spans = [(c.start, c.end) for c in plan]
        parts = (whole[start:end] for start, end in spans) if whole is not None else read_spans(path, recipe, spans)
        for chunk, samples in zip(plan, parts):
            positions, file_starts = kept_windows(chunk, recipe, window, hop)
            put(_Chunk(index, wav_bytes(samples, rate), len(samples), positions, file_starts))
        put(("done", index, None))
    except Exception as error:  # reported as this file's failure; the run goes on
        put(("error", index, _reason(error)))


def mean_windows(values: np.ndarray) -> np.ndarray:
    """The mean over a file's windows `(windows, n)` -> `(n,)`, as evaluate averages logits (`WindowMeans`)."""
    from keras_music.scoring import WindowMeans

    means = WindowMeans(1, values.shape[1])
    means.add(np.zeros(len(values), int), values)
    return means.means()[0]


def file_result(tagger: ExportedTagger, path: Path, num_samples: int, logits: np.ndarray, starts: np.ndarray,
                embeddings: np.ndarray | None = None) -> dict:
    """Per-file probabilities and tags (sigmoid of the mean window logit), each window's probabilities and,
    given the windows' `embeddings`, the file's `embedding` (their mean, 9 significant digits: float32's)."""
    probabilities = 1 / (1 + np.exp(-mean_windows(logits)))
    frames = tagger.recipe.num_frames(num_samples)
    width = tagger.window if tagger.window and tagger.hop else frames
    seconds = tagger.recipe.hop_length / tagger.sample_rate  # per frame; window times are frame times, as librosa's
    length = num_samples / tagger.sample_rate
    result = {
        "file": str(path),
        "seconds": round(length, 3),
        "probabilities": dict(zip(tagger.labels, map(float, probabilities))),
        "tags": [t for t, p, th in zip(tagger.labels, probabilities, tagger.thresholds) if p >= th],
    }
    if embeddings is not None:
        result["embedding"] = [float(f"{v:.9g}") for v in mean_windows(embeddings)]
    result["windows"] = [{"start": round(s * seconds, 3), "end": round(min((s + width) * seconds, length), 3),
                          "probabilities": dict(zip(tagger.labels, map(float, 1 / (1 + np.exp(-row)))))}
                         for s, row in zip(starts.tolist(), logits)]
    return result


def tag_files(tagger: ExportedTagger, files: list[Path], chunk_seconds: float, jobs: int = 2, batch_size: int = 8):
    """Yield `(index, result or None, reason or None)` for each file as it finishes (not in input order).

    `jobs` reader threads decode files (soundfile releases the GIL) while this thread runs
    `serve_audio` on batches of up to `batch_size` chunks holding at most `chunk_seconds` of
    audio in all; each file's windows are scored alone inside the batch, so its result
    equals one file per call. A batch that fails is retried chunk by chunk, so one bad
    file fails alone.
    """
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pending = queue.Queue(maxsize=batch_size + jobs)
    stop = threading.Event()
    max_samples = int(chunk_seconds * tagger.sample_rate)

    def put(item):
        while not stop.is_set():
            try:
                return pending.put(item, timeout=0.5)
            except queue.Full:
                continue

    def read(index):
        if not stop.is_set():
            read_chunks(tagger, index, files[index], chunk_seconds, put)

    states: dict[int, _FileState] = {}
    finished, carry = 0, None
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="predict-read") as pool:
        try:
            for index in range(len(files)):
                pool.submit(read, index)
            while finished < len(files):
                batch, controls, samples = [], [], 0
                item = carry if carry is not None else pending.get()
                carry = None
                while True:
                    if isinstance(item, _Chunk):
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
                _score(tagger, batch, states)
                for kind, index, value in controls:
                    state = states.setdefault(index, _FileState())
                    if kind == "start":
                        state.num_samples = value
                        continue
                    finished += 1
                    del states[index]
                    reason = value if kind == "error" else state.error
                    if reason is not None:
                        yield index, None, reason
                    else:
                        embeddings = np.concatenate(state.embeddings) if tagger.embeddings else None
                        yield index, file_result(tagger, files[index], state.num_samples, np.concatenate(state.logits),
                                                 np.concatenate(state.starts), embeddings), None
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


def _score(tagger: ExportedTagger, batch: list[_Chunk], states: dict) -> None:
    """Run a batch through serve_audio and keep each chunk's windows; a failing batch goes chunk by chunk."""
    live = [c for c in batch if states.setdefault(c.file, _FileState()).error is None]
    if not live:
        return
    try:
        outputs = tagger.window_outputs([c.wav for c in live])
    except Exception as error:
        if len(live) > 1:
            for chunk in live:
                _score(tagger, [chunk], states)
            return
        states[live[0].file].error = _reason(error)
        return
    for chunk, (logits, embeddings) in zip(live, outputs):
        state = states[chunk.file]
        try:
            logits, embeddings = kept_outputs(chunk, logits, embeddings)
        except ValueError as error:
            state.error = str(error)
            continue
        state.logits.append(logits)
        state.starts.append(chunk.starts)
        if embeddings is not None:
            state.embeddings.append(embeddings)


def kept_outputs(chunk: _Chunk, logits: np.ndarray, embeddings: np.ndarray | None):
    """The windows of a chunk's serve_audio outputs that its file keeps (`chunk.positions`)."""
    if len(logits) <= chunk.positions.max(initial=-1):
        raise ValueError(f"serve_audio returned {len(logits)} windows for a chunk of {chunk.samples} samples, "
                         "keras_music.scoring expects more; the export and this keras_music disagree on the "
                         "window rule (export the run again).")
    return logits[chunk.positions], None if embeddings is None else embeddings[chunk.positions]


def expand(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files of the given files and folders (recursive), and (path, reason) of bad arguments."""
    from keras_music.data.extraction import find_audio

    files, bad = [], []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            try:
                files.extend(find_audio(path))
            except (ValueError, FileNotFoundError) as error:
                bad.append((name, str(error)))
        elif path.is_file():
            files.append(path)
        else:
            bad.append((name, "no such file or folder"))
    return files, bad


EMBEDDING_COLUMN = "emb_{}"  # CSV columns of --embeddings: emb_0 .. emb_<width-1>


def csv_header(labels: list[str], per_window: bool, collection: bool = False, embedding_width: int = 0) -> list[str]:
    """CSV columns; files written by `--out` also carry `error` and `model` (what resuming reads).
    `embedding_width` (file rows only): the `emb_<i>` columns of `--embeddings`."""
    head = ["file", "start", "end", *labels] if per_window else \
        ["file", "seconds", *labels, "tags", *(EMBEDDING_COLUMN.format(i) for i in range(embedding_width))]
    return head + ["error", "model"] if collection else head


def csv_rows(result: dict, labels: list[str], per_window: bool) -> list[list]:
    if per_window:
        return [[result["file"], w["start"], w["end"], *(f"{w['probabilities'][t]:.4f}" for t in labels)]
                for w in result["windows"]]
    return [[result["file"], result["seconds"], *(f"{result['probabilities'][t]:.4f}" for t in labels),
             ";".join(result["tags"]), *(repr(v) for v in result.get("embedding", ()))]]


def format_results(results: list[dict], labels: list[str], fmt: str, per_window: bool,
                   embedding_width: int = 0) -> str:
    """The whole output of a run to stdout (or `--format json`): files in the order given."""
    if fmt == "json":
        if not per_window:
            results = [{k: v for k, v in r.items() if k != "windows"} for r in results]
        return json.dumps(results, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_header(labels, per_window, embedding_width=embedding_width))
    for r in results:
        writer.writerows(csv_rows(r, labels, per_window))
    return buffer.getvalue()


def record_text(result: dict, fmt: str, labels: list[str], per_window: bool, model: str) -> str:
    """A tagged file's record in a collection file (`--out`): a JSON line, or its CSV row(s)."""
    if fmt == "jsonl":
        record = result if per_window else {k: v for k, v in result.items() if k != "windows"}
        return json.dumps({**record, "model": model}) + "\n"
    return _csv_text([row + ["", model] for row in csv_rows(result, labels, per_window)])


def failure_text(name: str, reason: str, fmt: str, columns: int, model: str) -> str:
    """A failed file's record in a collection file: its name, the reason and the model."""
    if fmt == "jsonl":
        return json.dumps({"file": name, "error": reason, "model": model}) + "\n"
    return _csv_text([[name] + [""] * (columns - 3) + [reason, model]])


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class ResultLog:
    """An output file that grows by one record per finished file (CSV rows or JSON lines), and resumes.

    Each file's record is appended with one write and flushed; the file is fsync'd after
    every `sync_every` records and on close, so a killed run keeps what it finished (at
    most a torn last line, dropped when resumed). Opening an existing file reads which
    files it has: `done` (tagged) and `failed` (an `error` record). A file written with
    another model or another layout (`--per-window`, `--embeddings`, format) is an error,
    never mixed. `embedding_width`: records carry embeddings of that width (0: none).
    """

    def __init__(self, path: Path, fmt: str, labels: list[str], per_window: bool, model: str, sync_every: int = 16,
                 embedding_width: int = 0):
        self.path, self.fmt, self.labels, self.per_window, self.model = path, fmt, labels, per_window, model
        self.embeddings = embedding_width > 0
        self.sync_every, self.unsynced = sync_every, 0
        self.done, self.failed = {}, {}
        self.header = csv_header(labels, per_window, collection=True, embedding_width=embedding_width)
        fresh = not path.is_file() or path.stat().st_size == 0
        if not fresh:
            self._read_existing()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", newline="", encoding="utf-8")
        if fresh and fmt == "csv":
            self._append([self.header])

    def _mismatch(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: {what}; use another --out (or delete this one) to start afresh.")

    def _read_existing(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        if not text.endswith("\n"):  # a run killed mid-line: drop the torn line
            keep = text.rfind("\n") + 1
            logger.warning("%s: dropped a partial last line (an interrupted run).", self.path)
            with open(self.path, "r+b") as handle:
                handle.truncate(len(text[:keep].encode("utf-8")))
            text = text[:keep]
        if self.fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            if rows and rows[0] != self.header:
                if (EMBEDDING_COLUMN.format(0) in rows[0]) != self.embeddings:
                    raise self._mismatch(f"written {'without' if self.embeddings else 'with'} --embeddings")
                raise self._mismatch(f"its columns {rows[0][:4]}... are not this run's {self.header[:4]}... "
                                     "(another model, --per-window, --embeddings or format)")
            records = [dict(zip(self.header, row)) for row in rows[1:]]
        else:
            try:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as error:
                raise self._mismatch(f"not JSON lines ({error})") from None
            if any("error" not in r and ("windows" in r) != self.per_window for r in records):
                raise self._mismatch(f"written {'without' if self.per_window else 'with'} --per-window")
            if any("error" not in r and ("embedding" in r) != self.embeddings for r in records):
                raise self._mismatch(f"written {'without' if self.embeddings else 'with'} --embeddings")
        for record in records:
            if record.get("model") != self.model:
                raise self._mismatch(f"written with model {record.get('model')}, this run uses {self.model}")
            name = record["file"]
            if record.get("error"):
                self.failed[name] = record["error"]
                self.done.pop(name, None)
            else:
                self.done[name] = True
                self.failed.pop(name, None)

    def _append(self, rows: list[list]) -> None:
        self._write(_csv_text(rows))

    def _write(self, text: str) -> None:
        self.handle.write(text)
        self.handle.flush()
        self.unsynced += 1
        if self.unsynced >= self.sync_every:
            self.sync()

    def sync(self) -> None:
        if self.unsynced:
            os.fsync(self.handle.fileno())
            self.unsynced = 0

    def add(self, result: dict) -> None:
        self._write(record_text(result, self.fmt, self.labels, self.per_window, self.model))

    def add_failure(self, name: str, reason: str) -> None:
        self._write(failure_text(name, reason, self.fmt, len(self.header), self.model))

    def close(self) -> None:
        self.sync()
        self.handle.close()


def plot_name(path: Path, root: Path) -> str:
    """`sub__song.mp3.png`: the file's path under the inputs' common folder, so same-named files do not clash."""
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return "__".join(relative.parts) + ".png"


def plot_result(result: dict, labels: list[str], out: Path) -> None:
    from keras_music.reports import plot_emotion_curve

    times = np.array([(w["start"] + w["end"]) / 2 for w in result["windows"]])
    probabilities = np.array([[w["probabilities"][t] for t in labels] for w in result["windows"]])
    plot_emotion_curve(out, times, labels, probabilities, Path(result["file"]).name)


COLLECTION_FILES = 100


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_music.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="Audio files and/or folders (recursive).")
    parser.add_argument("--model", default=None,
                        help="Export folder: saved_models/NAME or saved_models/NAME/VERSION. Default: the packaged "
                             "4Q emotion model (keras_music/pretrained/emotion_4q; see its MODEL_CARD.md: research "
                             "use only), built on first use, offline, into $KERAS_MUSIC_CACHE/models/.")
    parser.add_argument("--window", type=float, default=None,
                        help="Deprecated and ignored: files are scored with the model's own training window and "
                             "hop (metadata window_frames / window_hop_frames), as keras_music.evaluate scores them.")
    parser.add_argument("--hop", type=float, default=None, help="Deprecated and ignored (see --window).")
    parser.add_argument("--format", choices=["csv", "json", "jsonl"], default=None,
                        help="csv, json (one document) or jsonl (one object per file). Default: from --out's "
                             "extension (.jsonl, .json), else csv.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores (a curve).")
    parser.add_argument("--embeddings", action="store_true",
                        help="Also output each file's embedding: the mean of its windows' vectors before the tag "
                             "layer (the export's embeddings), to search or cluster a collection. JSON/JSONL: a "
                             "list of floats under 'embedding'; CSV: columns emb_0..emb_<width-1> (not with "
                             "--per-window).")
    parser.add_argument("--chunk-seconds", type=float, default=60.0,
                        help="Most audio per serve_audio call (memory): longer files are read in blocks and sent in "
                             "overlapping chunks whose windows are exactly the whole file's, so scores do not "
                             "change; shorter files share a call. Default: 60.")
    parser.add_argument("--batch-size", type=int, default=8, help="Most files (chunks) per serve_audio call. "
                        "Default: 8.")
    parser.add_argument("--decoder", choices=["soundfile", "tfio"], default="soundfile",
                        help="soundfile (libsndfile; default) or tfio (tensorflow-io, optional; files longer than "
                             "--chunk-seconds are always read block by block with libsndfile).")
    parser.add_argument("--jobs", type=int, default=2, help="Threads decoding files while the model scores. "
                        "Default: 2.")
    parser.add_argument("--out", default=None,
                        help="Output file. csv/jsonl: a record is appended (flushed) as each file finishes, and "
                             "running the same command again skips the files already there (failed ones too, "
                             "unless --retry-failed). json: written atomically at the end. Required for more than "
                             f"{COLLECTION_FILES} files.")
    parser.add_argument("--retry-failed", action="store_true",
                        help="Resuming: try again the files the output records as failed.")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="Write a PNG per file of its per-window emotion curve (quadrant models: also arousal "
                             "and valence) into DIR.")
    args = parser.parse_args(argv)
    if args.chunk_seconds < 60:
        parser.error(f"--chunk-seconds must be at least 60 (got {args.chunk_seconds}).")
    if args.batch_size < 1 or args.jobs < 1:
        parser.error("--batch-size and --jobs must be at least 1.")
    if args.format is None:
        suffix = Path(args.out).suffix.lower() if args.out else ""
        args.format = {".jsonl": "jsonl", ".json": "json"}.get(suffix, "csv")
    if args.embeddings and args.per_window and args.format == "csv":
        parser.error("--embeddings with --per-window needs --format json or jsonl (CSV rows are windows there; "
                     "embeddings are per file).")
    for flag in ("window", "hop"):
        if getattr(args, flag) is not None:
            print(f"warning: --{flag} is deprecated and ignored; files are scored with the model's training window "
                  "and hop (see --help).", file=sys.stderr)
    try:
        files, failed = check_inputs(args.paths, args.model)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    if len(files) > COLLECTION_FILES and not args.out:
        print(f"error: {len(files)} files: give --out FILE (.csv or .jsonl) so each file's result is kept as it "
              "finishes and a rerun resumes.", file=sys.stderr)
        return 1
    import_tensorflow()  # after the checks above: --help, usage errors and typos answer without TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.config import atomic_path
    from keras_music.progress import Progress

    try:
        if args.model is None:
            from keras_music.default_model import installed

            args.model = installed()  # the packaged default, built on first use
        tagger = ExportedTagger(args.model, decoder=args.decoder, embeddings=args.embeddings)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        log = ResultLog(Path(args.out), args.format, tagger.labels, args.per_window, tagger.identity,
                        embedding_width=tagger.embedding_width) if args.out and args.format != "json" else None
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    skipped, tagged, earlier_failures = 0, 0, 0
    if log:
        before = len(files)
        files = [f for f in files if str(f) not in log.done and (args.retry_failed or str(f) not in log.failed)]
        skipped = before - len(files)
        earlier_failures = 0 if args.retry_failed else sum(1 for name in log.failed if name not in log.done)
        if skipped:
            print(f"Resuming {args.out}: {skipped} file(s) already there ({len(log.failed)} failed"
                  f"{', retried' if args.retry_failed else ', not retried (--retry-failed)'}).", file=sys.stderr)
    plot_dir = Path(args.plot) if args.plot else None
    if plot_dir:
        plot_dir.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.commonpath([str(f.resolve().parent) for f in files])) if files else Path.cwd()
    results = {}
    progress = Progress(len(files))
    stream = log is None and args.format == "jsonl"  # jsonl to stdout: a line per file as it finishes
    try:
        for index, result, reason in tag_files(tagger, files, args.chunk_seconds, args.jobs, args.batch_size):
            name = str(files[index])
            if reason is not None:
                failed.append((name, reason))
                if log:
                    log.add_failure(name, reason)
            else:
                tagged += 1
                if log:
                    log.add(result)
                elif stream:
                    record = result if args.per_window else {k: v for k, v in result.items() if k != "windows"}
                    sys.stdout.write(json.dumps(record) + "\n")
                    sys.stdout.flush()
                else:
                    results[index] = result
                if plot_dir:
                    plot_result(result, tagger.labels, plot_dir / plot_name(files[index], root))
            progress.update(files[index].name, failed=reason is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {'finished files are in ' + args.out if log else 'nothing written'}.", file=sys.stderr)
        return 130
    finally:
        if log:
            log.close()
    progress.close()
    if not log and not stream:
        text = format_results([results[i] for i in sorted(results)], tagger.labels, args.format, args.per_window,
                              tagger.embedding_width)
        if args.out:
            with atomic_path(Path(args.out)) as tmp:
                Path(tmp).write_text(text)
        else:
            sys.stdout.write(text)
    for name, reason in failed:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    resumed = f" ({skipped} already in {args.out})" if skipped else ""
    print(f"Tagged {tagged} file(s) with {tagger.path}; {len(failed)} skipped{resumed}.", file=sys.stderr)
    if earlier_failures:
        print(f"{earlier_failures} file(s) failed in an earlier run and were not retried (error records in "
              f"{args.out}; --retry-failed tries them again).", file=sys.stderr)
    return 1 if failed or earlier_failures or not (tagged or skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
