"""Writing results: CSV and JSON text, and `ResultLog`, the resumable output file of a collection.

`predict`, `Tagger.tag_files` and the Beam tagger write the same records, so a file tagged
by any of them reads the same. A collection file (`--out X.csv` / `X.jsonl`, `out=`) also
carries each record's `model` (the export's identity) and failed files' `error`: what
resuming reads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from pathlib import Path

from keras_music.errors import ParameterError
from keras_music.quadrants import quadrant_columns
from keras_music.tagging.results import TagResult

logger = logging.getLogger(__name__)

EMBEDDING_COLUMN = "emb_{}"  # CSV columns of embeddings: emb_0 .. emb_<width-1>


@dataclasses.dataclass(frozen=True)
class RecordLayout:
    """What a run's records hold, hence its CSV columns: the model's tags, the tag groups a person
    reads (exports with tag sets), per-window rows or not, and the embedding width (0: none).

    A file's CSV row reads left to right as a person asks: file, seconds, then for 4Q models the
    quadrant's name, arousal and valence, then the top names of each tag group (genre, mood,
    ...), the thresholded `tags`, each tag's probability and the embedding. The full vectors of
    the tag sets are in JSON records only (`TagResult.to_record`).
    """

    labels: tuple[str, ...]
    groups: tuple[str, ...] = ()
    per_window: bool = False
    embedding_width: int = 0

    @property
    def quadrants(self) -> bool:
        return quadrant_columns(list(self.labels)) is not None

    def header(self, collection: bool = False) -> list[str]:
        """CSV columns; collection files also carry `error` and `model` (what resuming reads)."""
        if self.per_window:
            head = ["file", "start", "end", *self.labels]
        else:
            head = ["file", "seconds", *(QUADRANT_COLUMNS if self.quadrants else ()), *self.groups, "tags",
                    *self.labels, *(EMBEDDING_COLUMN.format(i) for i in range(self.embedding_width))]
        return head + ["error", "model"] if collection else head

    def rows(self, result: TagResult) -> list[list]:
        """A result's CSV rows: one per window with `per_window`, else one for the file."""
        if self.per_window:
            return [[result.file, w.start, w.end, *(f"{w.probabilities[t]:.4f}" for t in self.labels)]
                    for w in result.windows]
        axes = [result.quadrant, *(f"{result.axes[axis]:.4f}" for axis in ("arousal", "valence"))] \
            if self.quadrants else []
        return [[result.file, result.seconds, *axes, *(", ".join(result.top_tags.get(g, [])) for g in self.groups),
                 ";".join(result.tags), *(f"{result.probabilities[t]:.4f}" for t in self.labels),
                 *(repr(v) for v in result.embedding_values())]]


QUADRANT_COLUMNS = ("quadrant", "arousal", "valence")


def csv_text(rows: list[list]) -> str:
    """Rows as the csv module writes them (with their newlines)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def format_results(results: list[TagResult], layout: RecordLayout, fmt: str) -> str:
    """A whole run's output (stdout, or `--format json`): files in the order given."""
    if fmt == "json":
        return json.dumps([r.to_record(windows=layout.per_window) for r in results], indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_record(windows=layout.per_window)) + "\n" for r in results)
    return csv_text([layout.header(), *(row for r in results for row in layout.rows(r))])


def record_text(result: TagResult, fmt: str, layout: RecordLayout, model: str) -> str:
    """A tagged file's record in a collection file: a JSON line, or its CSV row(s)."""
    if fmt == "jsonl":
        return json.dumps({**result.to_record(windows=layout.per_window), "model": model}) + "\n"
    return csv_text([row + ["", model] for row in layout.rows(result)])


def failure_text(name: str, reason: str, fmt: str, columns: int, model: str) -> str:
    """A failed file's record in a collection file: its name, the reason and the model."""
    if fmt == "jsonl":
        return json.dumps({"file": name, "error": reason, "model": model}) + "\n"
    return csv_text([[name] + [""] * (columns - 3) + [reason, model]])


def format_of(out: str | Path | None, fmt: str | None = None) -> str:
    """The output format: `fmt` if given, else from the file's extension (.jsonl, .json), else csv."""
    if fmt is not None:
        return fmt
    suffix = Path(out).suffix.lower() if out else ""
    return {".jsonl": "jsonl", ".json": "json"}.get(suffix, "csv")


def keep_newest(record: dict, done: dict, failed: dict, value) -> None:
    """Count one record of a collection in reading order: a file's newest record wins, in `done`
    (`{file: value}`) when it was tagged, in `failed` (`{file: reason}`) when it failed."""
    name = record["file"]
    if record.get("error"):
        failed[name] = record["error"]
        done.pop(name, None)
    else:
        done[name] = value
        failed.pop(name, None)


class ResultLog:
    """An output file that grows by one record per finished file (CSV rows or JSON lines), and resumes.

    Each file's record is appended with one write and flushed; the file is fsync'd after
    every `sync_every` records and on close, so a killed run keeps what it finished (at
    most a torn last line, dropped when resumed). Opening an existing file reads which
    files it has: `done` (tagged) and `failed` (an `error` record). A file written with
    another model or another layout (per-window, embeddings, format) is an error, never
    mixed. `layout`: what the records hold (`RecordLayout`).
    """

    def __init__(self, path: str | Path, fmt: str, layout: RecordLayout, model: str, sync_every: int = 16):
        path = Path(path)
        self.path, self.fmt, self.layout, self.model = path, fmt, layout, model
        self.per_window, self.embeddings = layout.per_window, layout.embedding_width > 0
        self.sync_every, self.unsynced = sync_every, 0
        self.done, self.failed = {}, {}
        self.header = layout.header(collection=True)
        fresh = not path.is_file() or path.stat().st_size == 0
        if not fresh:
            self._read_existing()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", newline="", encoding="utf-8")
        if fresh and fmt == "csv":
            self._write(csv_text([self.header]))

    def _mismatch(self, what: str) -> ParameterError:
        return ParameterError("out", self.path, f"{what}; write to another file (or delete this one) to start afresh.")

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
                    raise self._mismatch(f"written {'without' if self.embeddings else 'with'} embeddings")
                raise self._mismatch(f"its columns {rows[0][:4]}... are not this run's {self.header[:4]}... "
                                     "(another model, per-window, embeddings or format)")
            records = [dict(zip(self.header, row)) for row in rows[1:]]
        else:
            try:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as error:
                raise self._mismatch(f"not JSON lines ({error})") from None
            if any("error" not in r and ("windows" in r) != self.per_window for r in records):
                raise self._mismatch(f"written {'without' if self.per_window else 'with'} per-window scores")
            if any("error" not in r and ("embedding" in r) != self.embeddings for r in records):
                raise self._mismatch(f"written {'without' if self.embeddings else 'with'} embeddings")
        for record in records:
            if record.get("model") != self.model:
                raise self._mismatch(f"written with model {record.get('model')}, this run uses {self.model}")
            keep_newest(record, self.done, self.failed, True)

    def todo(self, files: list, retry_failed: bool = False) -> list:
        """The files not in this log yet (failed ones too, with `retry_failed`)."""
        return [f for f in files if str(f) not in self.done and (retry_failed or str(f) not in self.failed)]

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

    def add(self, result: TagResult) -> None:
        self._write(record_text(result, self.fmt, self.layout, self.model))

    def add_failure(self, name: str, reason: str) -> None:
        self._write(failure_text(name, reason, self.fmt, len(self.header), self.model))

    def close(self) -> None:
        self.sync()
        self.handle.close()

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
