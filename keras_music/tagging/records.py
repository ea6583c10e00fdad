"""Reading back what `predict` wrote: a collection's records, checked line by line (`read_collection`).

`keras-music report` and `keras-music similar` start from the records of a tagging run
(`predict --out tags.jsonl`, `Tagger.tag_files(out=...)`, the Beam tagger, or one JSON
document from `--format json`). A bad input is a one-line error naming the file and line:
an empty file, a line that is not JSON, JSON that is not one of our records, or records
written by two different models (their `model` digests differ).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from keras_music.errors import MissingPathError, ParameterError
from keras_music.tagging.results import TagResult
from keras_music.tagging.writers import keep_newest

RECORD_KEYS = ("file", "probabilities")  # what every tagged file's record has (failed ones: file, error)


class RecordsError(ParameterError):
    """A records file that cannot be read as a collection: names the file and the line at fault."""

    def __init__(self, path, line: int | None, problem: str):
        self.line = line
        where = f"{path} line {line}" if line is not None else str(path)
        super().__init__("records", where, problem)

    def __reduce__(self):
        return type(self), (self.value, self.line, self.problem)

    def __str__(self) -> str:
        return f"{self.value}: {self.problem}"


@dataclasses.dataclass(frozen=True)
class Collection:
    """The tagged files of a records file: results (in file order), failures and the model's identity.

    Attributes:
        path: the records file.
        results: one `TagResult` per tagged file (the last record of a file wins, as resuming does).
        failures: `(file, reason)` of the files that could not be tagged.
        model: `NAME/VERSION:digest` of the export that wrote the records (`Tagger.identity`), or
            None for records without it (`--format json` or JSONL on stdout).

    Example:

    >>> collection = read_collection(RECORDS)    # `predict music/ --embeddings --out tags.jsonl`
    >>> len(collection), collection.model.startswith("emotion_4q/1:"), collection.embeddings().shape
    (7, True, (7, 64))
    >>> collection.failures
    [('.../bad/corrupt.mp3', '...')]
    """

    path: Path
    results: list[TagResult]
    failures: list[tuple[str, str]]
    model: str | None

    def __len__(self) -> int:
        return len(self.results)

    @property
    def files(self) -> list[str]:
        return [r.file for r in self.results]

    @property
    def has_windows(self) -> bool:
        return any(r.windows for r in self.results)

    @property
    def has_embeddings(self) -> bool:
        return any(r.embedding is not None for r in self.results)

    def embeddings(self) -> np.ndarray:
        """The files' embeddings `(files, width)` as float32; `ParameterError` when the records have none."""
        if not self.results or not self.has_embeddings:
            raise RecordsError(self.path, None, "its records have no embeddings; tag the files again with "
                               "`keras-music predict ... --embeddings --out FILE.jsonl`.")
        return np.stack([np.asarray(r.embedding, dtype="float32") for r in self.results])


def record_lines(path: Path) -> list[tuple[int, str]]:
    """`(line number, text)` of a records file: JSON lines, or the records of one JSON document (line None)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordsError(path, None, "not text (expected JSON records written by `keras-music predict --out "
                           "FILE.jsonl`).") from None
    if not text.strip():
        raise RecordsError(path, None, "empty (expected JSON records written by `keras-music predict --out "
                           "FILE.jsonl`).")
    if text.lstrip().startswith("["):  # `--format json`: one document
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecordsError(path, error.lineno, f"not valid JSON ({error.msg}).") from None
        return [(None, record) for record in records]
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            last = number == len(text.splitlines()) and not text.endswith("\n")
            hint = " (a torn last line: rerun the same predict command to finish it)" if last else ""
            raise RecordsError(path, number, f"not a JSON record ({error.msg}){hint}.") from None
    return lines


SHARDS = "part-*.jsonl"  # a folder of records: the Beam tagger's shards (keras_music.beam.shards), in order


def records_files(path: Path) -> list[Path]:
    """The records files `path` names: itself, or the JSON-lines shards of a folder (the Beam tagger's
    `--out`), oldest first, so that a file's newest record wins."""
    if path.is_dir():
        shards = sorted(path.glob(SHARDS))
        if not shards:
            raise RecordsError(path, None, f"a folder without record shards ({SHARDS}, as `python -m "
                               "keras_music.beam.tag --out FOLDER` writes them).")
        return shards
    if not path.is_file():
        raise MissingPathError("records", path, "no such file (expected the output of `keras-music predict --out "
                               "FILE.jsonl`).")
    if path.suffix.lower() == ".csv":
        raise RecordsError(path, None, "a CSV file; this reads JSON records: tag with `--out FILE.jsonl` (add "
                           "`--per-window --embeddings` for curves and similar tracks).")
    return [path]


def read_collection(path: str | Path) -> Collection:
    """The records of `path`, checked: .jsonl lines or one .json list, as `predict` writes them, or a
    folder of the Beam tagger's shards.

    Raises `RecordsError` (a `ParameterError`) naming the file and line for an empty file, a
    line that is not JSON, a record that is not ours, or records of two models.
    """
    path = Path(path)
    results: dict[str, TagResult] = {}
    failures: dict[str, str] = {}
    model = first_line = None
    lines = [(file, number, record) for file in records_files(path) for number, record in record_lines(file)]
    for file, number, record in lines:
        if not isinstance(record, dict) or "file" not in record or not (
                "error" in record or all(key in record for key in RECORD_KEYS)):
            keys = sorted(record)[:6] if isinstance(record, dict) else type(record).__name__
            raise RecordsError(file, number, f"not a keras_music record (has {keys}; expected the keys file, "
                               "probabilities, tags... that `keras-music predict` writes).")
        if record.get("model") is not None:
            if model is None:
                model, first_line = record["model"], f"line {number}" if file == path else f"{file.name} line {number}"
            elif record["model"] != model:
                raise RecordsError(file, number, f"written by model {record['model']}, but {first_line} by "
                                   f"{model}: records of two models cannot be compared; tag into separate files.")
        try:
            keep_newest({**record, "file": str(record["file"])}, results, failures,
                        None if record.get("error") else TagResult.from_record(record))
        except (KeyError, TypeError, ValueError) as error:
            raise RecordsError(file, number, f"a malformed record ({type(error).__name__}: {error}).") from None
    widths = {len(r.embedding) for r in results.values() if r.embedding is not None}
    if len(widths) > 1 or (widths and any(r.embedding is None for r in results.values())):
        raise RecordsError(path, None, f"records with and without embeddings or of several widths ({sorted(widths)}): "
                           "not one model's run; tag into a new file.")
    if not results and not failures:
        raise RecordsError(path, None, "holds no records.")
    return Collection(path, list(results.values()), list(failures.items()), model)
