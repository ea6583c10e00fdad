"""Throughput and memory of `python -m keras_music.predict` on a music collection, before vs after.

    python -m bench.predict --limit 100 --baseline-repo /work/before
    python -m bench.predict --model saved_models/emotion_4q --readme docs/benchmarks.md

* files per second tagging the first `--limit` MP3s of `--audio` (default: the 765 30 s
  clips of ../shared/datasets/mer4q/audio), wall time of the whole command (model load
  included), in a fresh process; with `--baseline-repo` also the same command run from
  that checkout (the old serial predict, one file per serve_audio call);
* peak RSS (the child's own VmHWM) of predict on a 1-minute and a 60-minute WAV (a
  shared file looped, written to a temporary folder): long files are read in blocks, so
  the difference should stay under 100 MB.

Prints a Markdown table and writes `bench/results/predict.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

import numpy as np

from bench.publish import measure_table, publish
from bench.serving import PEAK_RSS, RATE, demo_export, music

RESULTS = REPO_ROOT / "bench" / "results"
MER4Q_AUDIO = REPO_ROOT.parent / "shared" / "datasets" / "mer4q" / "audio"


def run_predict(repo: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of `python -m keras_music.predict ARGS` run from `repo` in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True,
                            cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=7200)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1) or "PEAK_RSS_KB" not in result.stderr:
        raise RuntimeError(f"predict in {repo} failed: {result.stderr[-2000:]}")
    return seconds, int(result.stderr.split("PEAK_RSS_KB")[1].split()[0]) / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="An emotion export (default: train a demo one).")
    parser.add_argument("--audio", type=Path, default=MER4Q_AUDIO, help="Folder of audio files to tag.")
    parser.add_argument("--limit", type=int, default=None, help="Tag only the first N files (sorted).")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--baseline-repo", type=Path, default=None,
                        help="A checkout with the old predict, run the same way for the 'before' figures.")
    parser.add_argument("--out", type=Path, default=RESULTS / "predict.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    from keras_music.audio.decoding import wav_bytes

    from keras_music.data.extraction import find_audio

    files = find_audio(args.audio)  # the package's one list of audio extensions
    files = files[:args.limit] if args.limit else files
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export = (args.model or demo_export(tmp)).resolve()
        listing = tmp / "files"
        listing.mkdir()
        for path in files:  # a folder of links: the same command line for both checkouts
            (listing / path.name).symlink_to(path.resolve())
        speeds = {}
        for name, repo, extra in (("before", args.baseline_repo, []),
                                  ("after", REPO_ROOT, ["--jobs", str(args.jobs), "--out", str(tmp / "tags.csv")])):
            if repo is None:
                continue
            seconds, _ = run_predict(repo.resolve(), [str(listing), "--model", str(export), *extra])
            speeds[name] = len(files) / seconds
            rows.append({"measure": f"predict {name}: {len(files)} files ({seconds:.0f} s, model load included)",
                         "value": speeds[name], "unit": "files/s"})
        if len(speeds) == 2:
            rows.append({"measure": "speed-up after / before", "value": speeds["after"] / speeds["before"],
                         "unit": "x"})
        rss = {}
        for minutes in (1, 60):
            path = tmp / f"{minutes}min.wav"
            path.write_bytes(wav_bytes(np.tile(music(60.0), minutes), RATE))
            _, rss[minutes] = run_predict(REPO_ROOT, [str(path), "--model", str(export)])
            path.unlink()
        rows += [{"measure": "predict peak RSS, 1-minute file", "value": rss[1], "unit": "MB"},
                 {"measure": "predict peak RSS, 60-minute file", "value": rss[60], "unit": "MB"},
                 {"measure": "growth 1 -> 60 minutes (target: at most 100)", "value": rss[60] - rss[1], "unit": "MB"}]
    import tensorflow as tf

    meta = (f"Measured by `python -m bench.predict` on {platform.machine()} ({os.cpu_count()} CPUs, CPU only), "
            f"TensorFlow {tf.__version__}; {len(files)} files of {args.audio.name}, --jobs {args.jobs}; "
            f"model {'a demo CNN-LSTM' if args.model is None else args.model}.")
    publish("predict", {"meta": meta, "rows": rows}, measure_table(meta, rows), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
