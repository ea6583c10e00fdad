"""How big and how fast the collection report is: `keras-music report` on 10,000 synthetic records
(and on real ones), opened in headless Chromium.

    python -m bench.report_page --files 10000 --readme docs/benchmarks.md
    python -m bench.report_page --files 10000 --real tags.jsonl     # also a real predict run's records

The synthetic records have the packaged model's shape, as `predict --per-window --embeddings
--out` writes them (tagging.writers.ResultLog): 4 quadrant probabilities, musicnn's 100 MSD/MTT
tag probabilities and top tags per group, a window every 6 s over songs of 2 to 6 minutes, and
a 64-wide embedding drawn around one centre per quadrant. `--keep FILE.jsonl` keeps them.
Measured: the records' size, the seconds `build_report` takes (reading, each file's 10
nearest tracks, writing), the page's size, its load time in Chromium until the map is drawn
(median of `--repeat` loads), then in the loaded page: opening a file's panel until its curve
is drawn, and a search that filters the map and the table. Writes
`bench/results/report-page.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.browser import console_errors, headless_chromium, load_seconds
from bench.publish import publish
from keras_music.collection_report import build_report
from keras_music.config import TAG_GROUPS
from keras_music.tagging.results import TagResult, Window
from keras_music.tagging.writers import RecordLayout, ResultLog

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
LABELS = ("quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4")
MODEL = "emotion_4q/1:synthetic0000"
READY = "return window.reportReady !== undefined"
WORDS = {group: [f"{group} {i}" for i in range(12)] for group in TAG_GROUPS}


def synthetic_records(path: Path, files: int, seed: int = 0) -> Path:
    """`files` records shaped as the packaged model's, written as predict writes them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 64))
    layout = RecordLayout(LABELS, tuple(TAG_GROUPS), per_window=True, embedding_width=64)
    tag_names = {name: [f"{name} tag {i}" for i in range(50)] for name in ("msd", "mtt")}
    with ResultLog(path, "jsonl", layout, MODEL, sync_every=1000) as log:
        for i in range(files):
            quadrant = int(rng.integers(4))
            alpha = np.full(4, 0.6)
            alpha[quadrant] = 4.0
            seconds = float(rng.uniform(120, 360))
            starts = np.arange(0.0, seconds - 3.0, 6.0)
            curve = rng.dirichlet(alpha, size=len(starts))
            log.add(TagResult(
                file=f"music/artist {i // 12:04d}/album/track {i:05d}.mp3", seconds=round(seconds, 3),
                probabilities=dict(zip(LABELS, map(float, curve.mean(axis=0)))),
                tags=[LABELS[quadrant]],
                windows=[Window(float(s), float(s) + 3.0, dict(zip(LABELS, map(float, row))))
                         for s, row in zip(starts, curve)],
                embedding=centres[quadrant] + rng.normal(scale=0.8, size=64),
                tag_probabilities={name: dict(zip(names, map(float, rng.random(50) ** 3)))
                                   for name, names in tag_names.items()},
                top_tags={group: list(rng.choice(WORDS[group], 3, replace=False)) for group in TAG_GROUPS}))
    return path


def measure(records: Path, page: Path, repeat: int, label: str) -> dict:
    start = time.perf_counter()
    build_report(records, page)
    built = time.perf_counter() - start
    with headless_chromium() as browser:
        loads = [load_seconds(browser, page, READY, timeout=300) for _ in range(repeat)]
        files = browser.execute_script("return report.data.files.length")
        points = browser.execute_script("return report.pointCount()")
        start = time.perf_counter()
        browser.execute_script(f"report.openPanel({files // 2})")
        while not browser.execute_script("return report.curveView !== null"):
            time.sleep(0.005)
        panel = time.perf_counter() - start
        start = time.perf_counter()
        browser.execute_script("const s = document.getElementById('search'); s.value = 'track 00';"
                               "s.dispatchEvent(new Event('input'))")
        expected = sum(1 for i in range(files) if "track 00" in f"track {i:05d}")
        while browser.execute_script("return report.pointCount()") == points:
            time.sleep(0.005)
        search = time.perf_counter() - start - 0.15  # less the search box's 150 ms typing pause
        errors = console_errors(browser)
    row = {"records": label, "files": files, "points_drawn": points, "records_mb": records.stat().st_size / 1e6,
           "build_s": built, "page_mb": page.stat().st_size / 1e6, "load_s": statistics.median(loads),
           "loads_s": loads, "panel_s": panel, "search_s": search, "console_errors": errors}
    if label.startswith("synthetic"):
        row["search_expected_points"] = expected
    print(f"{label}: page {row['page_mb']:.1f} MB, load {row['load_s']:.2f} s", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10000, help="Synthetic records. Default: %(default)s")
    parser.add_argument("--real", type=Path, default=None, help="Also measure these records (predict --out).")
    parser.add_argument("--keep", type=Path, default=None, help="Write the synthetic records here and keep them.")
    parser.add_argument("--repeat", type=int, default=3, help="Page loads (median). Default: %(default)s")
    parser.add_argument("--out", type=Path, default=RESULTS / "report-page.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        records = args.keep or folder / "synthetic.jsonl"
        records.unlink(missing_ok=True)
        synthetic_records(records, args.files)
        rows.append(measure(records, folder / "synthetic.html", args.repeat, f"synthetic, {args.files:,} files"))
        if args.real:
            rows.append(measure(args.real, folder / "real.html", args.repeat, f"{args.real.name} (predict)"))
    lines = [f"`keras-music report` pages in headless Chromium ({platform.machine()}, 2 CPUs), median of {args.repeat} "
             "loads; `python -m bench.report_page`. Synthetic records: the packaged model's shape, songs of 2-6 "
             "minutes with a window every 6 s.", "",
             "| records | files | records size | report written in | page size | load until the map is drawn | "
             "open a file's panel | search (map + table) | console errors |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['records']} | {r['files']:,} | {r['records_mb']:.1f} MB | {r['build_s']:.1f} s | {r['page_mb']:.1f} MB "
              f"| {r['load_s']:.2f} s | {r['panel_s'] * 1000:.0f} ms | {r['search_s'] * 1000:.0f} ms | "
              f"{len(r['console_errors'])} |" for r in rows]
    publish("report-page", {"repeat": args.repeat, "rows": rows}, "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
