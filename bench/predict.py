"""Throughput and memory of `python -m keras_music.predict` on a music collection, beside what users
compare it with, all on the same files in one run.

    python -m bench.predict --limit 100 --musicnn-python /work/venv-musicnn/bin/python --readme docs/benchmarks.md
    python -m bench.predict --limit 100 --baseline-repo /work/before

Each rate is files per second over the wall time of one whole command in a fresh process
(Python and TensorFlow start-up and model load included), on the first `--limit` files (sorted)
of `--audio` (default: the 30 s MP3 clips of ../shared/datasets/mer4q/audio):

* floor: `python -m keras_music.extract --recipe musicnn`, decoding and the packaged model's
  features (16 kHz, 96 mels) with no network: what predict cannot beat;
* packaged default: `predict` without `--model` (the packaged 4Q model, musicnn front end). It is
  built once, untimed, into the bench's own KERAS_MUSIC_CACHE, so its load is timed, its build not;
* packaged, as before: the same shipped run exported as it was scored before issue 43's speed work
  (windows every `--before-hop` frames, default 93; `predict --precision float32`), so the
  speed-up is a ratio measured in the same run;
* demo CNN-LSTM: `predict --model` with a small CNN-LSTM export trained on synthetic clips (or
  `--model`); with `--baseline-repo` also that checkout's predict, run the same way;
* original musicnn: musicnn 0.1.0's own TF1 graph (MSD_musicnn) through its
  `musicnn.extractor.extractor(path, input_length=3, input_overlap=False)`, file after file in one
  process, run by `--musicnn-python` (skipped without it). It rebuilds its graph and restores its
  checkpoint for every file, as the released code does. A bench-only environment that runs it
  (and reproduces ../shared/reference/musicnn's taggrams within 2e-7; NumPy 1.x is needed, under
  NumPy 2 its float16 log-mel overflows to inf):

      python3 -m venv /work/venv-musicnn && P=/work/venv-musicnn/bin/pip
      $P install -c .ci/constraints.txt tensorflow==2.21.0 tf_keras==2.21.0 librosa soundfile
      $P install numpy==1.26.4 "ml_dtypes<0.6" && $P install --no-deps musicnn==0.1.0
* 4-minute tracks: `--tracks` WAVs (44.1 kHz mono 16-bit) of 8 clips each, through the floor
  and the packaged default;
* peak RSS (the child's own VmHWM) of predict with the demo export on a 1-minute and a 60-minute
  WAV (a shared file looped): long files are read in blocks, so the difference should stay under 100 MB.

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

from bench.publish import check_block, measure_table, publish
from bench.serving import PEAK_RSS, RATE, demo_export, music

RESULTS = REPO_ROOT / "bench" / "results"
MER4Q_AUDIO = REPO_ROOT.parent / "shared" / "datasets" / "mer4q" / "audio"
TARGET_FILES_PER_SECOND = 5.0  # issue 43: the packaged default on 30 s clips, 2 cores, model load included
TRACK_RATE = 44100
CLIPS_PER_TRACK = 8  # 8 x 30 s = a 4-minute track
BEFORE_FLAGS = ["--precision", "float32"]  # predict flags that give the packaged model's earlier numerics
# `musicnn_python -c ORIGINAL_MUSICNN FILES...`: the released musicnn, file after file, as its README shows.
ORIGINAL_MUSICNN = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy
if int(numpy.__version__.split(".")[0]) >= 2:  # NEP 50: its float16 `10000 * mel` overflows to inf, wrong tags
    sys.exit(f"musicnn 0.1.0 needs NumPy 1.x (its log-mel overflows under NumPy 2); this has {numpy.__version__}")
from musicnn.extractor import extractor
for path in sys.argv[1:]:
    taggram, tags, _ = extractor(path, model="MSD_musicnn", input_length=3, input_overlap=False)
    assert taggram.shape[1] == 50, (path, taggram.shape)
print("MUSICNN_TAGGED", len(sys.argv) - 1, file=sys.stderr)
"""


def run_timed(command: list[str], cwd: Path, env: dict | None = None, what: str = "") -> tuple[float, str]:
    """(wall seconds, stderr) of `command` in a fresh process; RuntimeError with its stderr's tail on failure."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=7200, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{what or command[0]} failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return seconds, result.stderr


def run_predict(repo: Path, args: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of `python -m keras_music.predict ARGS` run from `repo` in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True,
                            cwd=repo, env={**(env or os.environ), "PYTHONPATH": str(repo)}, timeout=7200)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1) or "PEAK_RSS_KB" not in result.stderr:
        raise RuntimeError(f"predict in {repo} failed: {result.stderr[-2000:]}")
    if result.returncode == 1:  # some files failed: a rate over fewer files would flatter it
        raise RuntimeError(f"predict in {repo} could not tag every file: {result.stderr[-2000:]}")
    return seconds, int(result.stderr.split("PEAK_RSS_KB")[1].split()[0]) / 1024


def rate_row(key: str, label: str, files: int, seconds: float) -> dict:
    """A files/s row: `label` with the count and wall time it came from."""
    return {"key": key, "measure": f"{label}: {files} files in {seconds:.0f} s", "value": files / seconds,
            "unit": "files/s"}


def track_groups(files: list, tracks: int, clips_per_track: int = CLIPS_PER_TRACK) -> list[list]:
    """`tracks` lists of `clips_per_track` consecutive files each, taken in order and wrapping
    round when there are fewer files than that (a few clips make any number of tracks)."""
    if not files:
        raise ValueError("track_groups: no files to build tracks from.")
    if tracks < 0 or clips_per_track < 1:
        raise ValueError(f"track_groups: tracks must be >= 0 and clips_per_track >= 1, got {tracks}, "
                         f"{clips_per_track}.")
    return [[files[(t * clips_per_track + c) % len(files)] for c in range(clips_per_track)] for t in range(tracks)]


def write_track(clips: list[Path], path: Path) -> float:
    """Decode `clips` (once each), join them and write a 44.1 kHz mono 16-bit WAV at `path`; its seconds."""
    import soundfile
    import soxr

    from keras_music.audio.decoding import decode_audio

    parts = []
    for clip in clips:
        samples, rate = decode_audio(clip)
        parts.append(samples if rate == TRACK_RATE else soxr.resample(samples, rate, TRACK_RATE, quality="HQ"))
    joined = np.concatenate(parts)
    soundfile.write(path, np.clip(joined, -1, 1), TRACK_RATE, subtype="PCM_16")
    return joined.size / TRACK_RATE


def linked_folder(folder: Path, files: list[Path]) -> Path:
    """`folder` made to hold a link to each of `files`: one command line for any number of files."""
    folder.mkdir()
    for path in files:
        (folder / path.name).symlink_to(path.resolve())
    return folder


def floor_seconds(folder: Path, store: Path, env: dict) -> float:
    """Wall seconds of `python -m keras_music.extract FOLDER --recipe musicnn` in a fresh process."""
    seconds, _ = run_timed([sys.executable, "-m", "keras_music.extract", str(folder), "--out", str(store),
                            "--recipe", "musicnn"], REPO_ROOT, env, "extract --recipe musicnn")
    return seconds


def original_musicnn(python: Path, files: list[Path], workdir: Path) -> float:
    """Wall seconds of the released musicnn tagging `files` in one fresh process of `python`."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "KERAS_MUSIC_CACHE")}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    seconds, stderr = run_timed([str(python), "-c", ORIGINAL_MUSICNN, *map(str, files)], workdir, env,
                                f"musicnn 0.1.0 ({python})")
    if f"MUSICNN_TAGGED {len(files)}" not in stderr:
        raise RuntimeError(f"musicnn 0.1.0 ({python}) did not report tagging {len(files)} files: {stderr[-2000:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None,
                        help="An emotion export for the demo row and the RSS rows (default: train a demo CNN-LSTM).")
    parser.add_argument("--audio", type=Path, default=MER4Q_AUDIO, help="Folder of audio files to tag.")
    parser.add_argument("--limit", type=int, default=None, help="Tag only the first N files (sorted).")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tracks", type=int, default=10,
                        help=f"4-minute tracks ({CLIPS_PER_TRACK} clips each) to time; 0 skips them. Default: 10.")
    parser.add_argument("--musicnn-python", type=Path, default=None,
                        help="Python interpreter with musicnn 0.1.0, tf_keras and librosa (the original's row).")
    parser.add_argument("--baseline-repo", type=Path, default=None,
                        help="A checkout with the old predict, run the same way for 'before' figures.")
    parser.add_argument("--before-hop", type=int, default=93,
                        help="Scoring hop (frames) of the 'as before' row. Default: 93 (before issue 43).")
    parser.add_argument("--out", type=Path, default=RESULTS / "predict.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    if args.readme:
        check_block(args.readme, "predict")  # fail now, not after the run
    if args.musicnn_python and not args.musicnn_python.is_file():
        parser.error(f"--musicnn-python {args.musicnn_python}: no such interpreter.")
    from keras_music.audio.decoding import wav_bytes
    from keras_music.data.extraction import find_audio

    files = find_audio(args.audio)  # the package's one list of audio extensions
    files = files[:args.limit] if args.limit else files
    rows, skipped, speeds = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KERAS_MUSIC_CACHE": str(tmp / "cache")}
        os.environ["KERAS_MUSIC_CACHE"] = env["KERAS_MUSIC_CACHE"]  # the build below lands where predict looks
        from keras_music.tagging.presets import installed

        installed()  # the one-off build of the packaged model, untimed
        export = (args.model or demo_export(tmp)).resolve()
        clips = linked_folder(tmp / "clips", files)

        seconds = floor_seconds(clips, tmp / "floor", env)
        rows.append(rate_row("floor", "floor: decode + musicnn features (`extract --recipe musicnn`)", len(files),
                             seconds))
        seconds, _ = run_predict(REPO_ROOT, [str(clips), "--jobs", str(args.jobs), "--out", str(tmp / "d.csv")], env)
        rows.append(rate_row("packaged", f"ours, packaged default model (`predict`; target >= "
                             f"{TARGET_FILES_PER_SECOND:g} files/s)", len(files), seconds))
        speeds["packaged"] = len(files) / seconds
        from keras_music.tagging.presets import DEFAULT_PRESET, build

        before = build(DEFAULT_PRESET, tmp / "before", window_hop=args.before_hop)
        seconds, _ = run_predict(REPO_ROOT, [str(clips), "--model", str(before), *BEFORE_FLAGS, "--jobs",
                                             str(args.jobs), "--out", str(tmp / "b.csv")], env)
        rows.append(rate_row("packaged-before", f"ours, packaged model as scored before (windows every "
                             f"{args.before_hop} frames, `{' '.join(BEFORE_FLAGS)}`)", len(files), seconds))
        rows.append({"key": "packaged-speed-up", "measure": "speed-up packaged default / as before",
                     "value": speeds["packaged"] * seconds / len(files), "unit": "x"})
        for name, repo, extra in (("before", args.baseline_repo, []),
                                  ("demo", REPO_ROOT, ["--jobs", str(args.jobs), "--out", str(tmp / "tags.csv")])):
            if repo is None:
                continue
            seconds, _ = run_predict(repo.resolve(), [str(clips), "--model", str(export), *extra], env)
            label = ("ours, demo CNN-LSTM export (`predict --model`)" if name == "demo"
                     else f"predict of {repo.name} (baseline checkout), demo CNN-LSTM export")
            rows.append(rate_row(name, label, len(files), seconds))
            speeds[name] = len(files) / seconds
        if "before" in speeds:
            rows.append({"key": "speed-up", "measure": "speed-up demo export / baseline checkout",
                         "value": speeds["demo"] / speeds["before"], "unit": "x"})
        if args.musicnn_python is None:
            skipped.append("original musicnn 0.1.0: no --musicnn-python given")
        else:
            try:
                seconds = original_musicnn(args.musicnn_python, files, tmp)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                skipped.append(f"original musicnn 0.1.0: {str(error).strip().splitlines()[-1]}")
            else:
                rows.append(rate_row("musicnn", "original musicnn 0.1.0, MSD_musicnn TF1 graph (`extractor` per file)",
                                     len(files), seconds))
                rows.append({"key": "packaged-vs-musicnn", "measure": "packaged default / original musicnn",
                             "value": speeds["packaged"] * seconds / len(files), "unit": "x"})
        if args.tracks:
            tracks = linked_folder(tmp / "tracks", [])
            minutes = [write_track(group, tracks / f"track{t:03d}.wav") / 60
                       for t, group in enumerate(track_groups(files, args.tracks))]
            label = f"{args.tracks} tracks of {np.mean(minutes):.1f} min"
            seconds = floor_seconds(tracks, tmp / "floor-tracks", env)
            rows.append(rate_row("floor-tracks", f"floor on {label}", args.tracks, seconds))
            seconds, _ = run_predict(REPO_ROOT, [str(tracks), "--jobs", str(args.jobs), "--out",
                                                 str(tmp / "tracks.csv")], env)
            rows.append(rate_row("packaged-tracks", f"ours, packaged default on {label}", args.tracks, seconds))
            seconds, _ = run_predict(REPO_ROOT, [str(tracks), "--model", str(before), *BEFORE_FLAGS, "--jobs",
                                                 str(args.jobs), "--out", str(tmp / "tracks-before.csv")], env)
            rows.append(rate_row("packaged-before-tracks", f"ours, packaged as before on {label}", args.tracks,
                                 seconds))
        else:
            skipped.append("4-minute tracks: --tracks 0")
        rss = {}
        for minutes in (1, 60):
            path = tmp / f"{minutes}min.wav"
            path.write_bytes(wav_bytes(np.tile(music(60.0), minutes), RATE))
            _, rss[minutes] = run_predict(REPO_ROOT, [str(path), "--model", str(export)], env)
            path.unlink()
        rows += [{"key": "rss-1", "measure": "predict peak RSS, 1-minute file (demo export)", "value": rss[1],
                  "unit": "MB"},
                 {"key": "rss-60", "measure": "predict peak RSS, 60-minute file (demo export)", "value": rss[60],
                  "unit": "MB"},
                 {"key": "rss-growth", "measure": "growth 1 -> 60 minutes (target: at most 100)",
                  "value": rss[60] - rss[1], "unit": "MB"}]
    import tensorflow as tf

    meta = (f"Measured by `python -m bench.predict` on {platform.machine()} ({os.cpu_count()} CPUs, CPU only), "
            f"TensorFlow {tf.__version__}; the first {len(files)} files (sorted) of {args.audio.name}, --jobs "
            f"{args.jobs}; each rate is the wall time of one command in a fresh process, model load included; "
            f"demo rows: {'a demo CNN-LSTM' if args.model is None else args.model}.")
    markdown = measure_table(meta, rows) + "".join(f"\n\nSkipped: {reason}." for reason in skipped)
    publish("predict", {"meta": meta, "rows": rows, "skipped": skipped}, markdown, args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
