"""The documentation holds together: links resolve, the README stays a front page, and user pages
use user paths (the shared datasets' `../shared/...` paths belong to the reproduction pages only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
DOCUMENTS = sorted([README, REPO_ROOT / "ARCHITECTURE.md", *DOCS.glob("**/*.md")])
# Pages that reproduce the published results on the shared datasets, so they may name `../shared`.
REPRODUCTION_PAGES = {DOCS / "datasets.md", DOCS / "benchmarks.md"}
README_MAX_LINES = 200

FENCED_BLOCK = re.compile(r"^ *(```|~~~).*?^ *\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`]*`")
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
BENCH_BLOCK = re.compile(r"<!-- bench:([\w-]+):start -->")


def prose(text: str) -> str:
    """`text` without code: links inside code blocks and inline code are examples, not links."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in `path`; repeated headings get -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", path.read_text())):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        result.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return result


def relative_links(text: str) -> list[str]:
    """Link targets in `text` that point into this repository (not URLs, not mail)."""
    text = prose(text)
    targets = MARKDOWN_LINK.findall(text) + IMG_SRC.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


def broken_links(document: Path) -> list[str]:
    """Each relative link of `document` whose file or heading does not exist, with the reason."""
    problems = []
    for target in relative_links(document.read_text()):
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.exists():
            problems.append(f"{target}: no file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


def test_the_documents_exist():
    assert README.is_file() and (DOCS / "index.md").is_file()
    assert len(DOCUMENTS) > 3


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(document):
    assert broken_links(document) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Its section\n")
    page.write_text("# Page\n\n[fine](other.md#its-section) [here](#page) ![img](missing.png)\n"
                    "[gone](nowhere.md) [bad anchor](other.md#no-such-section) <img src=\"lost.png\">\n"
                    "```\n[in code](not-a-link.md)\n```\n`[inline](not-a-link.md)` [web](https://example.org/x)\n")
    assert [problem.split(":")[0] for problem in broken_links(page)] == [
        "missing.png", "nowhere.md", "other.md#no-such-section", "lost.png"]


def test_github_slugs():
    assert github_slug("4Q, the literature's protocol (10-fold by clip)") == "4q-the-literatures-protocol-10-fold-by-clip"
    assert github_slug("`beam.tag`") == "beamtag"
    assert github_slug("doctor, musicnn_weights, default_model") == "doctor-musicnn_weights-default_model"


def test_the_readme_is_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_user_documents_use_user_paths():
    user_pages = [p for p in DOCUMENTS if p.parent != REPO_ROOT or p == README]
    offenders = [str(p.relative_to(REPO_ROOT)) for p in user_pages
                 if p not in REPRODUCTION_PAGES and p.suffix == ".md" and "../shared" in p.read_text()]
    assert offenders == [], "use paths like music/ and my-tags.csv; ../shared commands go to docs/datasets.md"


def test_every_bench_block_lives_in_one_page():
    """The README keeps one headline table; every other generated table is in docs/benchmarks.md."""
    readme_blocks = BENCH_BLOCK.findall(README.read_text())
    benchmark_blocks = BENCH_BLOCK.findall((DOCS / "benchmarks.md").read_text())
    assert len(readme_blocks) == 1
    assert len(set(benchmark_blocks)) == len(benchmark_blocks) and not set(readme_blocks) & set(benchmark_blocks)
    elsewhere = [p for p in DOCS.glob("**/*.md") if p.name != "benchmarks.md" and BENCH_BLOCK.search(p.read_text())]
    assert elsewhere == []


def test_the_benches_publish_where_the_blocks_are():
    """`python -m bench.run_all --readme docs/benchmarks.md` fills every block it names there."""
    from bench.publish import check_block
    from bench.run_all import BENCHMARKS

    for name in [*BENCHMARKS, "summary"]:
        check_block(DOCS / "benchmarks.md", name)
    check_block(README, "emotion-4q-5fold")  # the headline: `bench.emotion --merge ... --readme README.md`
    check_block(REPO_ROOT / "ARCHITECTURE.md", "scale")  # `bench.scale --architecture ARCHITECTURE.md`
