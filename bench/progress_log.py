"""The finished runs of a benchmark table not yet written, so that a killed bench resumes.

Fits take minutes to hours, so a bench adds every finished run at once to
`<out>.progress.jsonl` beside its results file (`progress_path`): the first line holds the
settings of the command, each further line one run (`{"row": ..., "repeat": ..., "fold": ...,
"seed": ..., <scores>}`). The same command run again skips those runs; a file of other settings
is refused, never mixed in; the bench deletes the file once its table is written. The fit under
way trains in a folder of `<out>.work/` (`ProgressLog.fit_dir`), where the training library's
per-epoch backups let the same command resume that fit too.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.publish import slug
from keras_music.config import atomic_path


def differing_keys(one: dict, other: dict) -> list[str]:
    """The keys, sorted, whose values differ between `one` and `other` (a key one lacks counts as None)."""
    return [key for key in sorted(set(one) | set(other)) if one.get(key) != other.get(key)]


def progress_path(out: Path) -> Path:
    """Where the finished runs of the table `out` wait until it is written: beside it."""
    return out.with_name(f"{out.stem}.progress.jsonl")


class ProgressLog:
    """The finished runs of a table not yet written, one JSON line each in `path`, so that the
    same command resumes a killed bench where it stopped. The first line holds the command's
    `settings`; a file of other settings is refused (ValueError naming what differs). A last
    line cut short by a kill is dropped (that run runs again). The fit under way trains in a
    folder of `work` (see `fit_dir`); a new file starts with an empty `work`. `bench` names
    the bench whose file it is, in errors (`bench.emotion`).

    A run is known by its row's name, its repeat and fold of the splits, and its training seed
    (None for a model without one)."""

    def __init__(self, path: Path, settings: dict, bench: str):
        self.path, self.done = path, {}
        self.work = path.with_name(path.name.removesuffix(".progress.jsonl") + ".work")
        if not path.exists():
            shutil.rmtree(self.work, ignore_errors=True)  # left by a progress file since deleted
        else:
            lines = path.read_text().splitlines()
            try:
                found = json.loads(lines[0]) if lines else None
            except json.JSONDecodeError:
                found = None
            if not isinstance(found, dict):
                raise ValueError(f"{path}: not a progress file of {bench} (its first line is not its settings); "
                                 "delete it to start the table again.")
            differ = differing_keys(found, settings)
            if differ:
                raise ValueError(f"{path} holds finished runs of other settings ("
                                 + ", ".join(f"{key} {found.get(key)!r} there, {settings.get(key)!r} now"
                                             for key in differ)
                                 + "): run that command again to finish its table, or delete the file to start "
                                   "this one.")
            for line in lines[1:]:
                try:
                    run = json.loads(line)
                except json.JSONDecodeError:
                    break  # cut short by a kill: that run runs again
                self.done[self.key(run["row"], run["repeat"], run["fold"], run["seed"])] = run
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # the settings and the whole lines only
            tmp.write_text("".join(json.dumps(line) + "\n" for line in [settings, *self.done.values()]))

    @staticmethod
    def key(row: str, repeat: int, fold: int, seed: int | None) -> tuple:
        return row, repeat, fold, seed

    def get(self, row: str, repeat: int, fold: int, seed: int | None) -> dict | None:
        """The finished run of row `row` on (`repeat`, `fold`) with `seed`, without its row name;
        None if it has not run."""
        run = self.done.get(self.key(row, repeat, fold, seed))
        return None if run is None else {k: v for k, v in run.items() if k != "row"}

    def fit_dir(self, row: str, repeat: int, fold: int, seed: int | None) -> Path:
        """Where the fit of row `row` on (`repeat`, `fold`) with `seed` trains, kept until its line is added."""
        return self.work / f"{slug(row)}-r{repeat}-f{fold}-s{seed}"

    def add(self, row: str, run: dict) -> None:
        """Append finished `run` (with its `repeat`, `fold` and `seed`) of row `row`, synced to disk."""
        line = {"row": row, **run}
        with self.path.open("a") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self.done[self.key(row, run["repeat"], run["fold"], run["seed"])] = line

    def remove(self) -> None:
        """Delete the file and the work folder: the table is written."""
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)
