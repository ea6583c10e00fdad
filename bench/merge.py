"""One table from result files that each ran some of its rows (a bench's `--merge`).

Fits take hours, so a bench's rows run in parts (in parallel, or on other machines), each
writing its own result file: `{"setup": ..., "parts": [...], "rows": [{"model": ...}, ...]}`.
`read_parts` reads them, `check_one_table` refuses parts of different tables, `join_rows`
takes each row from exactly one part, and `table_order` puts the rows back in the bench's
order, whatever the order of the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from bench.progress_log import differing_keys


def read_parts(paths: list[Path], bench: str) -> list[tuple[Path, dict]]:
    """`(path, payload)` of each result file; ValueError naming a file that is not a result of
    `bench` (`bench.emotion`): unreadable, cut short, or without a `setup`."""
    parts = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not readable as a {bench} result ({type(error).__name__}: {error}).") \
                from None
        if not isinstance(payload, dict) or "setup" not in payload:
            raise ValueError(f"{path}: no 'setup' in it; it is not a result of this {bench} (re-run it).")
        parts.append((path, payload))
    return parts


def check_one_table(parts: list[tuple[Path, dict]], same: str, may_differ: tuple[str, ...] = (),
                    same_clips: Callable[[dict, dict], bool] | None = None) -> None:
    """ValueError unless every part has the first one's setup. Parts may differ in the keys of
    `may_differ` only where `same_clips(setup, first setup)` says their splits hold the same clips.
    `same` says in the error what must be the same (`data, protocol, folds, ...`)."""
    first_path, first = parts[0]
    for path, payload in parts[1:]:
        differ = differing_keys(first["setup"], payload["setup"])
        if (differ and set(differ) <= set(may_differ) and same_clips is not None
                and same_clips(payload["setup"], first["setup"])):
            differ = []
        if differ:
            raise ValueError(f"{path} and {first_path} are parts of different tables: "
                             + ", ".join(f"{key} {payload['setup'].get(key)!r} vs {first['setup'].get(key)!r}"
                                         for key in differ)
                             + f"; merge only runs of the same {same}.")


def join_rows(parts: list[tuple[Path, dict]], label: Callable[[dict, dict], str | None] | None = None) -> list[dict]:
    """The rows of every part, in the parts' order; ValueError for a row in two parts. Where
    `label(payload, row)` gives a label (the part's data, say), the row is named `model [label]`."""
    rows, source = [], {}
    for path, payload in parts:
        for row in payload["rows"]:
            tag = label(payload, row) if label else None
            if tag is not None:
                row = {**row, "model": f"{row['model']} [{tag}]"}
            if row["model"] in source:
                raise ValueError(f"row {row['model']!r} is in both {source[row['model']]} and {path}; "
                                 "give each row to one part.")
            source[row["model"]] = path
            rows.append(row)
    return rows


def table_order(rows: list[dict], order: list[str]) -> list[dict]:
    """`rows` sorted by the place of their `model` in `order` (row names in table order): a row
    labelled by `join_rows` (`name [label]`) where its name is, several in the order of their
    labels; a row changed by `--set` (`name (variant, field=value)`) right after the row it
    changes; any other row last."""
    def place(row) -> float:
        name = row["model"] if row["model"] in order else re.sub(r" \[[^\]]*\]$", "", row["model"])
        if name in order:
            return order.index(name)
        changed = re.sub(r", [a-z_]+=.*\)$", ")", name)
        return order.index(changed) + 0.5 if changed in order else len(order)

    return sorted(rows, key=lambda row: (place(row), re.findall(r"\[([^\]]*)\]$", row["model"])))
