"""The catalog tagger's output: a folder of record shards, each committed whole, that a rerun resumes.

A catalog run of millions of files must keep what it finished when it dies. So the Beam
tagger writes its records (the lines `predict --out` writes, `tagging.writers`) into a
folder, local or on object storage (`gs://bucket/tags/`), as shards named
`part-<time>-<random>.jsonl` (or `.csv`, with the header). Each shard is written under a
temporary name and renamed when complete (`commit_shard`): on a local disk a rename is
atomic; on object storage Beam's rename is a copy then a delete, and a copied object
appears whole or not at all. So a shard is either all there or absent, and a killed run
leaves only whole shards (and maybe a temporary file, which readers ignore).

`read_shards` reads them back: which files are done, which failed, with which model. The
same command run again skips those files (failed ones too, unless asked to retry) and
writes new shards beside the old ones. A file recorded twice (a bundle a runner retried
after its shard was committed) counts once: its newest record wins, as in `ResultLog`.

All I/O goes through Beam's `FileSystems`, so the same code serves a local folder and
`gs://` (and every other filesystem Beam has).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
import uuid

from keras_music.beam import require_beam
from keras_music.tagging.writers import keep_newest

beam = require_beam()

from apache_beam.io.filesystems import FileSystems  # noqa: E402

SHARD_PREFIX = "part-"
TEMPORARY_PREFIX = ".incomplete-"  # readers ignore it: a shard still being written, or left by a killed run
FORMATS = ("jsonl", "csv")


def shard_name(fmt: str) -> str:
    """A new shard's name: time-ordered (the newest record of a file wins) and unique across workers."""
    return f"{SHARD_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.{fmt}"


def join(folder: str, name: str) -> str:
    return FileSystems.join(folder, name)


def commit_shard(folder: str, fmt: str, lines: list[str], header: str | None = None) -> str:
    """Write `lines` (records without newlines) as one new shard of `folder`, whole or not at all."""
    name = shard_name(fmt)
    final, temporary = join(folder, name), join(folder, TEMPORARY_PREFIX + name)
    text = "".join(line + "\n" for line in ([header] if header else []) + lines)
    with FileSystems.create(temporary) as handle:
        handle.write(text.encode("utf-8"))
    FileSystems.rename([temporary], [final])
    return final


def shard_paths(folder: str, fmt: str) -> list[str]:
    """The committed shards of `folder` in the order they were written (temporary files left out)."""
    pattern = join(folder, f"{SHARD_PREFIX}*.{fmt}")
    matched = FileSystems.match([pattern])[0].metadata_list
    return sorted((m.path for m in matched), key=lambda path: path.rsplit("/", 1)[-1])


@dataclasses.dataclass
class ShardedRecords:
    """What a folder of shards holds: `{file: record}` of tagged files, `{file: reason}` of failed
    ones (a file's newest record wins), the model that wrote them, and how many records repeat a file."""

    done: dict[str, dict] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    model: str | None = None
    shards: int = 0
    repeated: int = 0


def parse_shard(text: str, fmt: str, path: str) -> list[dict]:
    """A shard's records as dicts (CSV: by its header)."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON lines ({error}); it is not a shard this tagger wrote.") from None


def read_shards(folder: str, fmt: str) -> ShardedRecords:
    """The records of every committed shard of `folder` (none when the folder does not exist yet).

    Raises ValueError when shards were written by two models: a run resumes only into the
    output of its own model.
    """
    found = ShardedRecords()
    for path in shard_paths(folder, fmt):
        with FileSystems.open(path) as handle:
            records = parse_shard(handle.read().decode("utf-8"), fmt, path)
        found.shards += 1
        for record in records:
            model = record.get("model")
            if found.model is None:
                found.model = model
            elif model != found.model:
                raise ValueError(f"{path}: written with model {model}, other shards of {folder} with {found.model}; "
                                 "one output folder holds one model's records.")
            if record["file"] in found.done or record["file"] in found.failed:
                found.repeated += 1
            keep_newest(record, found.done, found.failed, record)
    return found


class WriteShards(beam.DoFn):
    """Records (lines) -> shards of `folder`: one committed every `records` lines or `seconds`, and at
    the end of each bundle, so a run that dies keeps all but its last few records."""

    def __init__(self, folder: str, fmt: str, header: str | None = None, records: int = 256,
                 seconds: float = 60.0):
        self.folder, self.fmt, self.header, self.records, self.seconds = folder, fmt, header, records, seconds

    def start_bundle(self):
        self._lines, self._since = [], time.monotonic()

    def process(self, line: str):
        self._lines.append(line)
        if len(self._lines) >= self.records or time.monotonic() - self._since >= self.seconds:
            self._commit()

    def finish_bundle(self):
        self._commit()

    def _commit(self):
        if self._lines:
            commit_shard(self.folder, self.fmt, self._lines, self.header)
        self._lines, self._since = [], time.monotonic()
