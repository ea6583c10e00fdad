"""Scale-out benchmark: Beam's DirectRunner against the local extractor, and a 10-million-track plan.

    python -m bench.scale                       # the 765 shared 4Q MP3s
    python -m bench.scale --audio music/ --limit 200 --readme docs/benchmarks.md --architecture ARCHITECTURE.md

Measured here, in one run: the local extractor (`extract_folder`, 2 threads: the baseline)
and the Beam pipeline on the DirectRunner with 2 worker processes (`keras_music.beam.extract`)
extract the same files into fresh stores (their records are checked to be the same), so
their ratio is what scaling out costs on one machine; the store's bytes per audio second;
the CPU time of decode + features per audio second (extractor with 1 thread). Read from the
other benches' results (their own measurements, named in the table): the training step rate
and input pipeline rate (`bench.pipeline`) and the `serve_audio` throughput
(`bench.serving`). From these it works out what a catalog of 10 million tracks needs.
Everything under "plan" is arithmetic on these figures, not a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

from bench.publish import publish, update_block  # noqa: E402

DEFAULT_AUDIO = REPO_ROOT.parent / "shared" / "datasets" / "mer4q" / "audio"
RESULTS = REPO_ROOT / "bench" / "results"
# DirectRunner with 2 worker processes; Prism (its first choice) would be downloaded from GitHub.
DIRECT = ["--runner", "DirectRunner", "--prism_location", "/nonexistent/prism", "--direct_num_workers", "2",
          "--direct_running_mode", "multi_processing"]
CATALOG = 10_000_000
DAY = 86_400.0
PIPELINE_BATCH = 16  # bench.pipeline's batch size (its table states it)
TRACK_SECONDS = {"30 s previews": 30.0, "4 min tracks": 240.0}


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "shards").glob("*.tfrecord"))


def records(root: Path) -> dict:
    import tensorflow as tf

    from keras_music.data.store import FeatureStore

    out = {}
    for shard in FeatureStore(root).recorded_shards():
        for record in tf.data.TFRecordDataset([str(shard)]).as_numpy_iterator():
            example = tf.train.Example.FromString(record)
            out[example.features.feature["clip_id"].bytes_list.value[0]] = record
    return out


def measure(audio: Path, limit: int | None) -> dict:
    from keras_music.beam.extract import extract_with_beam
    from keras_music.config import FeatureRecipe
    from keras_music.data.extraction import extract_folder, find_audio

    files = find_audio(audio)[:limit]
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        folder = work / "audio"
        folder.mkdir()
        for path in files:  # links: the same bytes, only these files
            (folder / path.name).symlink_to(path.resolve())
        timings = {}
        for name, run in (
                ("local, 1 thread", lambda out: extract_folder(folder, out, workers=1)),
                ("local, 2 threads", lambda out: extract_folder(folder, out, workers=2)),
                ("Beam DirectRunner, 2 processes", lambda out: extract_with_beam(str(folder), out, FeatureRecipe(),
                                                                                DIRECT))):
            out = work / name.replace(" ", "_").replace(",", "")
            start = time.perf_counter()
            summary = run(out)
            timings[name] = {"seconds": time.perf_counter() - start, "written": summary.written,
                             "failed": len(summary.failed), "store": out}
            logging.info("%s: %.1f s, %d written, %d failed", name, timings[name]["seconds"], summary.written,
                         len(summary.failed))
        local, beam = timings["local, 2 threads"], timings["Beam DirectRunner, 2 processes"]
        same = records(local["store"]) == records(beam["store"])
        from keras_music.data.store import FeatureStore

        audio_seconds = sum(e["seconds"] for e in FeatureStore(local["store"]).manifest())
        result = {
            "files": len(files), "clips": local["written"], "audio_seconds": audio_seconds,
            "extract_seconds": {k: v["seconds"] for k, v in timings.items()},
            "beam_over_local": beam["seconds"] / local["seconds"],
            "beam_records_equal_local": same,
            "store_bytes_per_audio_second": store_bytes(local["store"]) / audio_seconds,
            "cpu_seconds_per_audio_second": timings["local, 1 thread"]["seconds"] / audio_seconds,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def other_benches() -> dict:
    """The figures this plan borrows from `bench.pipeline` and `bench.serving` results."""
    pipeline = json.loads((RESULTS / "pipeline.json").read_text())
    serving = json.loads((RESULTS / "serving.json").read_text())
    throughput = next(r["value"] for r in serving["rows"] if r["measure"].startswith("serve_audio throughput"))
    return {"train_clips_per_second": pipeline["steps_per_second"]["store (streamed)"] * PIPELINE_BATCH,
            "input_clips_per_second": pipeline["pipeline_batches_per_second"] * PIPELINE_BATCH,
            "training_model": pipeline["model"],
            "serve_clips_per_second": throughput, "serving_meta": serving["meta"]}


def plan(measured: dict, borrowed: dict) -> list[dict]:
    """What 10 million tracks need, per track length: arithmetic on the measured figures."""
    rows = []
    overhead = max(1.0, measured["beam_over_local"])
    for kind, seconds in TRACK_SECONDS.items():
        audio = CATALOG * seconds
        cpu = audio * measured["cpu_seconds_per_audio_second"] * overhead
        clip_30s = seconds / 30.0  # serving and training figures are for 30 s clips
        rows += [
            {"catalog": kind, "measure": "extraction, CPU core-hours (decode + features, x Beam overhead)",
             "value": cpu / 3600, "unit": "core-h"},
            {"catalog": kind, "measure": "extraction in 24 h: 4-core workers", "value": cpu / DAY / 4,
             "unit": "workers"},
            {"catalog": kind, "measure": "feature store size", "value": audio * measured["store_bytes_per_audio_second"]
             / 1e12, "unit": "TB"},
            {"catalog": kind, "measure": "input pipeline of one 2-CPU host, 30 s crops per second "
             "(must exceed a GPU's step rate)", "value": borrowed["input_clips_per_second"], "unit": "clips/s"},
            {"catalog": kind, "measure": "one training epoch on 2 CPUs (no GPU measured here)",
             "value": CATALOG * clip_30s / borrowed["train_clips_per_second"] / 3600, "unit": "h"},
            {"catalog": kind, "measure": "tagging with one 2-CPU TF Serving replica (serve_audio)",
             "value": CATALOG * clip_30s / borrowed["serve_clips_per_second"] / 3600, "unit": "h"},
            {"catalog": kind, "measure": "tagging in 24 h: 2-CPU replicas",
             "value": CATALOG * clip_30s / borrowed["serve_clips_per_second"] / DAY, "unit": "replicas"},
        ]
    return rows


def markdown(measured: dict, borrowed: dict, rows: list[dict], meta: str) -> str:
    t = measured["extract_seconds"]
    lines = [meta, "", "| measured here | value |", "|---|---|"]
    lines += [f"| extract {measured['clips']} clips: {name} | {seconds:.1f} s |" for name, seconds in t.items()]
    lines += [
        f"| ratio Beam DirectRunner / local (2 workers each; the cost of scaling out on one machine) | "
        f"{measured['beam_over_local']:.2f} x |",
        f"| Beam store records equal the local store's (bytes) | {measured['beam_records_equal_local']} |",
        f"| decode + features, CPU seconds per audio second (1 thread) | "
        f"{measured['cpu_seconds_per_audio_second'] * 1000:.2f} ms |",
        f"| feature store bytes per audio second | {measured['store_bytes_per_audio_second'] / 1000:.1f} kB |",
        "", "| borrowed from other benches | value |", "|---|---|",
        f"| training, {borrowed['training_model']} on 2 CPUs (`bench.pipeline`) | "
        f"{borrowed['train_clips_per_second']:.0f} clips/s |",
        f"| input pipeline alone, 2 CPUs (`bench.pipeline`) | {borrowed['input_clips_per_second']:.0f} clips/s |",
        f"| serve_audio, batches of 16 x 30 s, 2 CPUs (`bench.serving`) | "
        f"{borrowed['serve_clips_per_second']:.1f} clips/s |",
        "", f"| plan for {CATALOG:,} tracks (extrapolated) | " + " | ".join(TRACK_SECONDS) + " |",
        "|---|" + "---|" * len(TRACK_SECONDS)]
    for measure in dict.fromkeys(r["measure"] for r in rows):
        cells = [next(f"{r['value']:,.1f} {r['unit']}" for r in rows if r["measure"] == measure and r["catalog"] == k)
                 for k in TRACK_SECONDS]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="Audio folder. Default: %(default)s")
    parser.add_argument("--limit", type=int, default=None, help="Use the first N files only.")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file to update (block bench:scale; docs/benchmarks.md).")
    parser.add_argument("--architecture", type=Path, default=None,
                        help="ARCHITECTURE.md to update (block bench:scale).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        print('error: bench.scale needs apache-beam: pip install "keras_music[beam]"', file=sys.stderr)
        return 1
    measured = measure(args.audio, args.limit)
    borrowed = other_benches()
    rows = plan(measured, borrowed)
    command = "python -m bench.scale" + (f" --audio {args.audio}" if args.audio != DEFAULT_AUDIO else "") + (
        f" --limit {args.limit}" if args.limit else "")
    meta = (f"Measured {datetime.date.today().isoformat()} by `{command}` on {platform.machine()} ({os.cpu_count()} "
            f"CPUs): {measured['files']} files of `{args.audio.name}`, {measured['audio_seconds']:.0f} s of audio. "
            "The plan multiplies these figures out; it is arithmetic, not a measurement (linear scaling assumed; "
            f"extraction CPU time includes the measured Beam overhead). Serving figure: {borrowed['serving_meta']}")
    text = markdown(measured, borrowed, rows, meta)
    publish("scale", {"meta": meta, "measured": measured, "borrowed": borrowed, "plan": rows}, text, args.out,
            args.readme)
    if args.architecture:
        update_block(args.architecture, "scale", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
