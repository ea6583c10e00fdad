"""`keras-music report`: records read back with one-line errors, the page's data, and the page itself
opened in a real headless Chromium (bench/browser.py) from a real `predict` run."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from bench.browser import chromium_problem, console_errors, headless_chromium, load_seconds
import keras_music as km
from keras_music.tagging.records import Collection, RecordsError, read_collection
from keras_music.tagging.results import TagResult, Window
from keras_music.tagging.writers import RecordLayout, ResultLog
from tests.test_api import run_examples

REPO = Path(__file__).resolve().parents[1]
LABELS = ("quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4")
READY = "return window.reportReady !== undefined"


def synthetic_results(count: int, seed: int = 0, windows: bool = True, embeddings: bool = True) -> list[TagResult]:
    """Results shaped as the packaged model's (4 quadrants, top tags, two tag sets), random values."""
    rng = np.random.default_rng(seed)
    results = []
    for i in range(count):
        probabilities = dict(zip(LABELS, map(float, rng.random(4))))
        curve = [Window(6.0 * w, 6.0 * w + 3.0, dict(zip(LABELS, map(float, rng.random(4))))) for w in range(3)]
        results.append(TagResult(
            file=f"music/artist {i % 3}/track <{i}>.mp3", seconds=18.0, probabilities=probabilities,
            tags=[t for t, p in probabilities.items() if p > 0.5], windows=curve if windows else [],
            embedding=rng.normal(size=8) if embeddings else None,
            tag_probabilities={"msd": {"rock": float(rng.random()), "jazz": float(rng.random())}},
            top_tags={"genre": ["rock", "jazz"] if i % 2 else ["jazz", "rock"], "mood": ["sad" if i % 3 else "happy"]}))
    return results


def write_records(path: Path, results: list[TagResult], model: str = "emotion_4q/1:0123456789ab",
                  failures: tuple = ()) -> Path:
    """A records file as `predict --out X.jsonl` writes it (ResultLog)."""
    layout = RecordLayout(LABELS, ("genre", "mood"), per_window=bool(results[0].windows),
                          embedding_width=0 if results[0].embedding is None else len(results[0].embedding))
    with ResultLog(path, "jsonl", layout, model) as log:
        for result in results:
            log.add(result)
        for name, reason in failures:
            log.add_failure(name, reason)
    return path


class PageElements(HTMLParser):
    """The elements of a page as a browser's tokenizer sees them (script contents are text)."""

    def __init__(self):
        super().__init__()
        self.tags, self.links = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, name, value) for name, value in attrs if name in ("src", "href")]


def decoded(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))


# --- reading records back ----------------------------------------------------------------------

def test_records_read_back_as_written_with_failures_and_the_model(tmp_path):
    results = synthetic_results(5)
    path = write_records(tmp_path / "tags.jsonl", results, failures=[("music/bad.mp3", "bad.mp3: not audio")])
    collection = read_collection(path)
    assert collection.files == [r.file for r in results] and collection.model == "emotion_4q/1:0123456789ab"
    assert collection.failures == [("music/bad.mp3", "bad.mp3: not audio")]
    assert collection.has_windows and collection.has_embeddings
    np.testing.assert_allclose(collection.embeddings(), np.stack([r.embedding for r in results]), rtol=1e-6)
    assert collection.results[2].windows == results[2].windows


@pytest.mark.parametrize("content, expected", [
    ("", r"empty \(expected JSON records"),
    ('{"file": "a.mp3", "probabilities": {}, "tags": [], "seconds": 1}\n{oops\n', r"line 2: not a JSON record"),
    ('{"name": "a.mp3", "score": 1}\n', r"line 1: not a keras_music record"),
    ('[1, 2]', r"not a keras_music record"),
    ('{"file": "a.mp3", "probabilities": {"t": 1}, "tags": [], "seconds": 1, "model": "a/1:aaa"}\n'
     '{"file": "b.mp3", "probabilities": {"t": 1}, "tags": [], "seconds": 1, "model": "b/1:bbb"}\n',
     r"line 2: written by model b/1:bbb, but line 1 by a/1:aaa"),
])
def test_bad_records_are_one_line_errors_naming_the_file_and_line(tmp_path, content, expected):
    path = tmp_path / "tags.jsonl"
    path.write_text(content)
    with pytest.raises(RecordsError, match=expected) as error:
        read_collection(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_csv_and_missing_records_say_what_to_do(tmp_path):
    (tmp_path / "tags.csv").write_text("file,seconds\n")
    with pytest.raises(RecordsError, match="--out FILE.jsonl"):
        read_collection(tmp_path / "tags.csv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_collection(tmp_path / "none.jsonl")


# --- the page's data ---------------------------------------------------------------------------

def test_payload_holds_every_score_curve_and_relative_audio_link(tmp_path):
    from keras_music.collection_report.payload import PROBABILITY_STEPS, report_payload
    from keras_music.quadrants import quadrant_scores

    results = synthetic_results(4)
    collection = read_collection(write_records(tmp_path / "tags.jsonl", results))
    payload = report_payload(collection, tmp_path / "pages", audio_root=tmp_path)
    names, width = payload["score_names"], len(payload["score_names"])
    assert names[:6] == ["arousal", "valence", "Q1 happy/excited", "Q2 angry/tense", "Q3 sad/depressed",
                         "Q4 calm/relaxed"] and names[6:] == ["msd: rock", "msd: jazz"]
    scores = decoded(payload["scores"], "uint16").reshape(len(results), width) / PROBABILITY_STEPS
    for i, result in enumerate(results):
        probabilities = [result.probabilities[t] for t in LABELS]
        axes = quadrant_scores(list(LABELS), [probabilities])
        expected = [axes["arousal"][0], axes["valence"][0], *probabilities, *result.tag_probabilities["msd"].values()]
        np.testing.assert_allclose(scores[i], expected, atol=1 / PROBABILITY_STEPS)
    assert payload["colour"] == [int(np.argmax([r.probabilities[t] for t in LABELS])) for r in results]
    # relative to the page's folder, URL-quoted: the page works beside the music
    assert payload["links"][1] == "../music/artist%201/track%20%3C1%3E.mp3"
    curves = payload["curves"]
    assert list(decoded(curves["offsets"], "uint32")) == [0, 3, 6, 9, 12] and curves["labels"] == 4
    values = decoded(curves["values"], "uint16").reshape(12, 6) / PROBABILITY_STEPS
    np.testing.assert_allclose(values[3, :4], [results[1].windows[0].probabilities[t] for t in LABELS], atol=2e-5)
    assert payload["missing"] == [] or payload["similar"] is None


def test_records_without_curves_or_embeddings_say_how_to_get_them(tmp_path):
    from keras_music.collection_report.payload import report_payload

    collection = read_collection(write_records(tmp_path / "t.jsonl", synthetic_results(3, windows=False,
                                                                                      embeddings=False)))
    payload = report_payload(collection, tmp_path)
    assert payload["curves"] is None and payload["similar"] is None
    assert any("--per-window" in m for m in payload["missing"]) and any("--embeddings" in m for m in payload["missing"])


def test_page_is_self_contained_and_user_text_cannot_break_out_of_it(tmp_path):
    from keras_music import build_report

    results = synthetic_results(6)
    hostile = dataclasses.replace(results[0], file="music/</script><script>alert(1)</script>.mp3")
    records = write_records(tmp_path / "tags.jsonl", [hostile, *results[1:]])
    page = build_report(records, tmp_path / "report.html", audio_root=tmp_path, title="<b>mine</b>")
    html = page.read_text()
    elements = PageElements()
    elements.feed(html)
    assert elements.links == []  # nothing loaded from anywhere (no src= or href= outside the scripts)
    assert elements.tags.count("script") == 3  # the plots, the data, the page: a file name opened none
    assert "<title>&lt;b&gt;mine&lt;/b&gt;</title>" in html
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)[1])
    assert data["files"][0] == hostile.file and data["similar"]["k"] == 5


def test_report_command_errors_are_one_line(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    done = subprocess.run([sys.executable, "-m", "keras_music.collection_report", str(tmp_path / "empty.jsonl"),
                           "--out", str(tmp_path / "r.html")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0
    assert "empty.jsonl: empty" in done.stderr and not (tmp_path / "r.html").exists()


# --- in a real browser -------------------------------------------------------------------------

needs_browser = pytest.mark.skipif(chromium_problem() is not None, reason=str(chromium_problem()))


def wait_for(browser, script: str, expected, timeout: float = 20.0):
    """What `script` returns once it equals `expected` (polled every 50 ms), else its last value."""
    deadline = time.monotonic() + timeout
    while (value := browser.execute_script(script)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def click(browser, x: float, y: float) -> None:
    """A real left click at page coordinates (Chrome DevTools input events: move, press, release)."""
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                             "clickCount": 1})


@needs_browser
def test_page_without_curves_or_embeddings_still_works_and_says_what_is_missing(tmp_path):
    from keras_music import build_report

    records = write_records(tmp_path / "t.jsonl", synthetic_results(40, windows=False, embeddings=False),
                            failures=[("music/broken.mp3", "broken.mp3: not audio")])
    page = build_report(records, tmp_path / "report.html")
    with headless_chromium() as browser:
        load_seconds(browser, page, READY, timeout=60)
        assert browser.execute_script("return report.pointCount()") == 40
        notes = browser.execute_script("return [...document.querySelectorAll('.note')].map(n => n.textContent)")
        assert any("--per-window" in n for n in notes) and any("--embeddings" in n for n in notes)
        assert "broken.mp3: not audio" in browser.find_element("id", "failures").text
        # filters: search, mood boxes, tag select; the map, counts and table follow
        browser.execute_script("const s = document.getElementById('search'); s.value = 'ARTIST 1';"
                               "s.dispatchEvent(new Event('input'))")
        wanted = sum(1 for i in range(40) if i % 3 == 1)
        assert wait_for(browser, "return report.pointCount()", wanted) == wanted
        assert browser.execute_script("return document.querySelectorAll('#files tbody tr').length") == wanted
        browser.execute_script("const box = document.querySelector('[data-mood=\"0\"]'); box.click()")
        left = browser.execute_script("return report.view.data('points').filter(p => p.colour.startsWith('Q1')).length")
        assert left == 0
        assert console_errors(browser) == []


@needs_browser
@pytest.mark.slow
def test_report_of_a_real_predict_run_in_chromium(packaged_records, audio_dir, tmp_path):
    """predict (the packaged model, --per-window --embeddings) -> report -> Chromium: one point per file,
    a real click on a point opens its panel with the curve and similar tracks, no console errors."""
    records = packaged_records
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "keras_music.collection_report", str(records), "--out", str(page)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "most similar tracks" in done.stderr and "Wrote" in done.stderr
    collection = read_collection(records)
    tagged = len(collection)
    run_examples(Collection, {"RECORDS": records})  # the docstrings' examples, on this run
    run_examples(km.build_report, {"RECORDS": records, "TMP": tmp_path})
    assert tagged == len([p for p in audio_dir.iterdir() if p.suffix != ".md"]) and len(collection.failures) == 1
    with headless_chromium(height=1100) as browser:
        seconds = load_seconds(browser, page, READY, timeout=60)
        assert browser.execute_script("return report.pointCount()") == tagged
        counts = browser.find_element("id", "counts").text
        assert f"{tagged} shown" in counts
        # the point farthest from the others, so the click cannot land on a neighbour
        xy = np.array(browser.execute_script("return report.view.data('points').map(p => [p.i, p.x, p.y])"))
        gaps = [min(np.hypot(*(xy[j, 1:] - xy[k, 1:])) for k in range(len(xy)) if k != j) for j in range(len(xy))]
        target = int(xy[int(np.argmax(gaps)), 0])
        browser.execute_script("document.getElementById('map').scrollIntoView()")
        click(browser, *browser.execute_script(f"return report.pointPosition({target})"))
        name = Path(collection.files[target]).name
        shown = wait_for(browser, "const h = document.getElementById('panel-file'); return h && h.textContent", name)
        wait_for(browser, "return report.curveView !== null", True)
        assert shown == name
        windows = len(collection.results[target].windows)
        assert browser.execute_script("return document.querySelectorAll('#curve canvas').length") == 1
        assert browser.execute_script("return report.curveView.data('source_0').length") == windows * 6
        similar = browser.execute_script("return [...document.querySelectorAll('#similar li')].map(li => li.title)")
        assert len(similar) == tagged - 1 and collection.files[target] not in similar
        audio = browser.execute_script("return document.querySelector('#panel audio').getAttribute('src')")
        assert (page.parent / audio).resolve() == Path(collection.files[target]).resolve()
        assert "corrupt.mp3" in browser.find_element("id", "failures").text
        assert console_errors(browser) == []
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000
    print(f"report of {tagged} files: {page.stat().st_size / 1e6:.2f} MB, loaded in {seconds:.2f} s; "
          f"screenshot {tmp_path / 'report.png'}")
