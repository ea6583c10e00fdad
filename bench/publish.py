"""Write a benchmark's results (JSON, a Markdown table, optionally its block in a Markdown
document), name their files (`slug`), and read the `--set FIELD=VALUE` changes that benches
judge on the same splits.

Blocks look like `<!-- bench:NAME:start -->` ... `<!-- bench:NAME:end -->`; the text between the
markers is replaced, so result tables are never typed by hand. Every table's block lives in
docs/benchmarks.md, except the headline table's (README.md) and `scale`'s copy in ARCHITECTURE.md;
a bench's `--readme FILE` names the document to fill.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from keras_music.config import atomic_path


def _write_atomically(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def check_block(readme: Path, name: str) -> tuple[str, str]:
    """The markers of block `name` in `readme` (a Markdown document); ValueError when it lacks them.

    Benches call it before a long run, so a wrong document fails in seconds, not after hours.
    """
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill.")
    return start, end


def update_block(readme: Path, name: str, text: str) -> None:
    start, end = check_block(readme, name)
    content = readme.read_text()
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    _write_atomically(readme, f"{head}{start}\n{text.strip()}\n{end}{tail}")


def slug(text: str) -> str:
    """`text` as a file name: lower case, each run of other characters than a-z, 0-9, _ one dash."""
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")


def measure_table(meta: str, rows: list[dict]) -> str:
    """`meta` and a `| measure | value |` table of rows with `measure`, `value`, `unit`."""
    lines = [meta, "", "| measure | value |", "|---|---|"]
    return "\n".join(lines + [f"| {r['measure']} | {r['value']:.2f} {r['unit']} |" for r in rows])


def publish(name: str, payload: dict, markdown: str, out: Path, readme: Path | None = None) -> None:
    """Print `markdown`, write `out` (JSON) and `out` with suffix .md, and fill block `name` of `readme`."""
    print(markdown)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(out, json.dumps(payload, indent=2) + "\n")
    _write_atomically(out.with_suffix(".md"), markdown.strip() + "\n")
    if readme:
        update_block(readme, name, markdown)


def parse_overrides(words: list[str] | None) -> dict:
    """`--set FIELD=VALUE ...` as a dict; values read as JSON where they parse (0.1, true, [8, 16])."""
    overrides = {}
    for word in words or []:
        field, sep, value = word.partition("=")
        if not sep or not field:
            raise ValueError(f"--set {word!r}: expected FIELD=VALUE, e.g. spec_augment=0.1.")
        try:
            overrides[field] = json.loads(value)
        except ValueError:
            overrides[field] = value
    return overrides
