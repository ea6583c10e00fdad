"""`keras-music report`: look at a tagged collection in a browser, as one self-contained HTML file.

    keras-music predict music/ --per-window --embeddings --out tags.jsonl
    keras-music report tags.jsonl --out report.html

The page works offline (its scripts, styles and data are inline; no CDN) and shows:
- the collection on the valence x arousal plane (4Q models; other models: any two scores),
  one point per file coloured by its quadrant or top tag, with counts per quadrant; hover
  for the file and its tags, click for its panel;
- a file's panel: its curve over time (`--per-window` records), its tags, an audio player
  (a link relative to the page, so keep the page beside the music or use `--audio-root`)
  and its most similar tracks (`--embeddings` records; cosine similarity,
  `keras_music.similarity`);
- filters by mood and tag, a search box by file name, a table sortable by any score, and the
  files that failed with their reasons.
Records without curves or embeddings still make a page; it says what is missing and how to
get it. The plots are Vega-Lite, bundled into the page from `vl-convert-python`
(`pip install 'keras_music[report]'`), chosen by measuring (bench/report_libraries.py).

From Python: `keras_music.build_report("tags.jsonl", "report.html")`.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from importlib import resources
from pathlib import Path

from keras_music.config import atomic_path
from keras_music.errors import ParameterError
from keras_music.tagging.records import Collection, RecordsError, read_collection

SIMILAR_TRACKS = 10  # per file in its panel
PAGE_FILES = ("page.html", "page.css", "page.js")


def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (from vl-convert-python, offline)."""
    try:
        import vl_convert
    except ImportError:
        raise ParameterError("report", "vl-convert-python", "is needed to bundle the plots into the page: "
                             "pip install 'keras_music[report]'.") from None
    return vl_convert.javascript_bundle()


def script_safe(code: str) -> str:
    """JavaScript that cannot close the <script> element it sits in (`</script` as `<\\/script`, which
    strings, regular expressions and comments read the same)."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def json_safe(payload: dict) -> str:
    """`payload` as JSON for a <script type="application/json"> element: every `<` as `\\u003c`."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(payload: dict) -> str:
    """The page's HTML: the template with its style, scripts and `payload` inline."""
    folder = resources.files(__package__)
    template, css, script = (folder.joinpath(name).read_text(encoding="utf-8") for name in PAGE_FILES)
    parts = {"css": css, "vega": script_safe(vega_bundle()), "script": script_safe(script), "data": json_safe(payload),
             "version": payload["version"], "title": html.escape(payload["title"])}
    return re.sub(r"\{\{(\w+)\}\}", lambda marker: parts[marker.group(1)], template)  # one pass: inserted text stays as is


def similar_tracks(collection: Collection, k: int):
    """Each file's `k` nearest other files by cosine similarity of embeddings: `(indices, scores)`, or
    None when the records have no embeddings."""
    if not collection.has_embeddings or len(collection) < 2:
        return None
    from keras_music.similarity import SimilarityIndex

    index = SimilarityIndex(collection.embeddings(), collection.files, model=collection.model)
    return index.all_neighbours(k)  # at most files - 1 each


def build_report(records: str | Path, out: str | Path, audio_root: str | Path | None = None,
                 title: str | None = None, similar: int = SIMILAR_TRACKS, log=None) -> Path:
    """Write the HTML report of a records file (`predict --out X.jsonl`) to `out`, atomically.

    Args:
        records: the records (JSON lines, or one JSON document) of a tagging run.
        out: the page to write (an .html file).
        audio_root: where relative file names in the records start (default: the current folder).
        title: the page's title (default: the records file's name and the count of files).
        similar: similar tracks listed per file (needs records with embeddings).
        log: a callable taking progress lines (the CLI passes one that prints to stderr).

    Returns the page's path. Raises `RecordsError` naming the file and line for bad records.

    Example:

    >>> import keras_music as km
    >>> page = km.build_report(RECORDS, TMP / "report.html")
    >>> page.name, page.stat().st_size > 500_000
    ('report.html', True)
    """
    from keras_music.collection_report.payload import report_payload

    log = log or (lambda line: None)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ParameterError("out", out, "expected an .html file to write the report to.")
    if not isinstance(similar, int) or similar < 1:
        raise ParameterError("similar", similar, "expected a whole number of at least 1.")
    if audio_root is not None and not Path(audio_root).is_dir():
        raise ParameterError("audio_root", audio_root, "no such folder (where relative file names in the records "
                             "start).")
    start = time.perf_counter()
    collection = read_collection(records)
    log(f"Read {len(collection):,} tagged and {len(collection.failures):,} failed file(s) from {records} "
        f"({time.perf_counter() - start:.1f} s).")
    if not len(collection):
        log("No file was tagged: the page lists the failures only.")
    start = time.perf_counter()
    neighbours = similar_tracks(collection, similar)
    if neighbours is not None:
        log(f"Found the {neighbours[0].shape[1]} most similar tracks of each file ({time.perf_counter() - start:.1f} s).")
    payload = report_payload(collection, out.parent, None if audio_root is None else Path(audio_root),
                             neighbours, title)
    page = render_page(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB).")
    return out


FLAGS = {"records": "RECORDS", "out": "--out", "audio_root": "--audio-root", "similar": "--similar"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="keras-music report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", help="Records of a tagging run: `keras-music predict ... --out X.jsonl` "
                                        "(add --per-window --embeddings for curves and similar tracks).")
    parser.add_argument("--out", default="report.html", help="The HTML file to write. Default: %(default)s")
    parser.add_argument("--audio-root", default=None, metavar="DIR",
                        help="Where relative file names in the records start (default: the current folder, where "
                             "predict ran). Audio links in the page are relative to the page's folder.")
    parser.add_argument("--title", default=None, help="The page's title.")
    parser.add_argument("--similar", type=int, default=SIMILAR_TRACKS,
                        help="Similar tracks per file (records with embeddings). Default: %(default)s")
    args = parser.parse_args(argv)
    try:
        build_report(args.records, args.out, args.audio_root, args.title, args.similar,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    except RecordsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ParameterError as error:
        print(f"error: {error.for_flags(FLAGS)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
