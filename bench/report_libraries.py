"""Which plotting library the collection report embeds: Plotly, Bokeh or Vega-Lite (through Altair),
each drawing the same 10,000-point scatter as a self-contained offline HTML page.

    python -m bench.report_libraries --points 10000 --repeat 5 --readme docs/benchmarks.md

For each library: the page's size (its JavaScript inline, no CDN), the seconds Python takes
to write it, and its load time in headless Chromium (from asking for the page until the
points are drawn; median of `--repeat` loads in one browser), plus console errors. The
points are random, in four coloured groups with a file name each (a hover text), as the
report's arousal/valence map has them. Needs `pip install plotly bokeh altair
vl-convert-python selenium` and Chromium (bench/browser.py). Writes
`bench/results/report-libraries.json` (+ `.md`).
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

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
GROUPS = ("Q1", "Q2", "Q3", "Q4")

# JavaScript that is true once each library has drawn its points.
READY = {
    "plotly": "var g = document.querySelector('.js-plotly-plot'); return !!(g && g._fullLayout && g.querySelector('canvas'))",
    "bokeh": "return !!(window.Bokeh && Bokeh.index && Bokeh.index.roots && Bokeh.index.roots.length)",
    "vega-lite": "var v = document.querySelector('#vis'); return !!(v && v.querySelector('canvas, svg'))",
}


def synthetic_points(count: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.random(count), "y": rng.random(count), "group": rng.choice(GROUPS, count),
            "name": [f"music/artist_{i // 12:04d}/track_{i:05d}.mp3" for i in range(count)]}


def plotly_page(points: dict, path: Path) -> None:
    import plotly.graph_objects as go

    group = np.asarray(points["group"])
    traces = [go.Scattergl(x=points["x"][group == g], y=points["y"][group == g], mode="markers", name=g,
                           text=list(np.asarray(points["name"])[group == g])) for g in GROUPS]
    go.Figure(traces).write_html(path, include_plotlyjs=True)


def bokeh_page(points: dict, path: Path) -> None:
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.palettes import Category10
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
    from bokeh.transform import factor_cmap

    plot = figure(output_backend="webgl", tools="tap,pan,wheel_zoom,reset")
    source = ColumnDataSource({**points, "group": list(points["group"])})
    plot.scatter("x", "y", source=source, color=factor_cmap("group", Category10[4], GROUPS), legend_field="group")
    plot.add_tools(HoverTool(tooltips=[("file", "@name")]))
    path.write_text(file_html(plot, INLINE, "scatter"))


def vega_lite_page(points: dict, path: Path) -> None:
    import altair as alt
    import pandas as pd

    alt.data_transformers.disable_max_rows()
    frame = pd.DataFrame({**points, "group": list(points["group"])})
    chart = alt.Chart(frame).mark_circle().encode(x="x", y="y", color="group", tooltip=["name"]).interactive()
    chart.save(str(path), inline=True)


BUILDERS = {"plotly": plotly_page, "bokeh": bokeh_page, "vega-lite": vega_lite_page}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("plotly", "bokeh", "altair", "vl-convert-python", "selenium")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5, help="Loads per page (median). Default: %(default)s")
    parser.add_argument("--out", type=Path, default=RESULTS / "report-libraries.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md")
    args = parser.parse_args(argv)
    points = synthetic_points(args.points)
    rows = []
    with tempfile.TemporaryDirectory() as folder, headless_chromium() as browser:
        for library, build in BUILDERS.items():
            page = Path(folder) / f"{library}.html"
            start = time.perf_counter()
            build(points, page)
            built = time.perf_counter() - start
            console_errors(browser)  # clear
            loads = [load_seconds(browser, page, READY[library]) for _ in range(args.repeat)]
            rows.append({"library": library, "mb": page.stat().st_size / 1e6, "build_s": built,
                         "load_s": statistics.median(loads), "loads_s": loads, "errors": console_errors(browser)})
            print(f"{library}: {rows[-1]['mb']:.2f} MB, load {rows[-1]['load_s']:.2f} s", flush=True)
    lines = [f"{args.points:,} points, one self-contained page per library, median of {args.repeat} loads in "
             f"headless Chromium ({platform.machine()}, 2 CPUs); `python -m bench.report_libraries`.", "",
             "| library | page size | written by Python | load until drawn | console errors |", "|---|---|---|---|---|"]
    lines += [f"| {r['library']} | {r['mb']:.2f} MB | {r['build_s']:.2f} s | {r['load_s']:.2f} s | {len(r['errors'])} |"
              for r in rows]
    publish("report-libraries", {"points": args.points, "repeat": args.repeat, "versions": versions(), "rows": rows},
            "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
