"""Fill a generated block of README.md from a benchmark's Markdown output.

Blocks look like `<!-- bench:NAME:start -->` ... `<!-- bench:NAME:end -->`; everything
between the markers is replaced, so README tables are never typed by hand.
"""

from __future__ import annotations

from pathlib import Path


def update_block(readme: Path, name: str, text: str) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill.")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")
    tmp.replace(readme)
