"""Serving cost of an exported emotion model, on this machine's CPU.

    python -m bench.serving                          # trains + exports a small demo model first
    python -m bench.serving --model saved_models/emotion_cnn_lstm --readme docs/benchmarks.md

Measured on the SavedModel loaded with `tf.saved_model.load` (what TF Serving runs):

* latency of `serve_audio` for one 30 s clip (WAV bytes in, probabilities out): median of
  `--repeat` calls after warm-up; the baseline in the same run is `serving_default` on the
  same clip's precomputed features, so the ratio is the price of the in-graph audio front
  end (decode, resample, log-mel, MFCC, windows);
* throughput of `serve_audio` on batches of 16 clips (clips per second, median batch);
* peak memory (max RSS) of `python -m keras_music.predict` on a 1-minute and a 10-minute
  file, each in a fresh process, beside the size of the 10-minute file's decoded samples:
  the growth should be about the decoded audio (and its resampled copy), not more.

Prints a Markdown table and writes `bench/results/serving.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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

RESULTS = REPO_ROOT / "bench" / "results"
RATE = 22050
# `python -c PEAK_RSS ARGS` runs predict and prints the peak of its own memory (VmHWM). Not
# ru_maxrss: Linux carries a parent's peak through fork and exec into the child's ru_maxrss,
# so a child of a bench that trained a model first would report the bench's own peak.
PEAK_RSS = """
import runpy
import sys
sys.argv = ["predict", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("keras_music.predict", run_name="__main__")  # `python -m keras_music.predict ARGS`
except SystemExit as exit:
    code = exit.code
finally:
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("PEAK_RSS_KB", int(hwm.split()[1]), file=sys.stderr)
sys.exit(code)
"""


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """A deterministic music-like signal: chords with an envelope and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    notes = 220 * 2 ** (rng.integers(0, 12, 8) / 12)
    signal = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in notes) / len(notes)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t) ** 2
    return (0.4 * signal * envelope + 0.01 * rng.standard_normal(len(t))).astype("float32")


def demo_export(workdir: Path) -> Path:
    """Train the default CNN-LSTM for 2 epochs on a small synthetic set and export it (the
    architecture, not the training, sets the serving cost)."""
    from keras_music.config import TrainingConfig
    from keras_music.data.demo import make_emotion_demo
    from keras_music.data.sequences import SequenceConfig
    from keras_music.export import export_run
    from keras_music.data.extraction import extract_folder
    from keras_music.models.cnn_lstm import CNNLSTMConfig
    from keras_music.training import train_emotion

    root = make_emotion_demo(workdir / "demo", num_clips=40, seconds=4.0, seed=0)
    extract_folder(root / "audio", root / "store", workers=1)
    (root / "store" / "labels.csv").write_text((root / "labels.csv").read_text())
    train_emotion(str(root / "store"), workdir / "run", CNNLSTMConfig(), SequenceConfig(),
                  TrainingConfig(epochs=2, min_epochs=0, validation_fraction=0.2, test_fraction=0.2), verbose=0)
    return export_run(workdir / "run", "bench", workdir / "models")


def median_seconds(call, repeat: int) -> float:
    call()  # warm-up (tracing, allocation)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb(export: Path, path: Path) -> float:
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), "--model", str(export)], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(f"predict failed on {path}: {result.stderr[-2000:]}")
    kilobytes = int(result.stderr.split("PEAK_RSS_KB")[1].split()[0])
    return kilobytes / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="An emotion export (default: train a demo one).")
    parser.add_argument("--repeat", type=int, default=30, help="Timed calls per latency figure. Default: 30.")
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    import tensorflow as tf

    from keras_music.audio.decoding import wav_bytes
    from keras_music.audio.frontend import compute_features
    from keras_music.config import FeatureRecipe, config_from_dict
    from keras_music.scoring import clip_windows
    from keras_music.tagging import Tagger

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export = args.model or demo_export(tmp)
        tagger = Tagger(export)
        recipe = config_from_dict(FeatureRecipe, tagger.metadata["recipe"])
        if recipe.sample_rate != RATE:
            raise SystemExit(f"{export}: this bench feeds {RATE} Hz audio; the export expects {recipe.sample_rate} Hz.")
        loaded = tf.saved_model.load(str(tagger.path))
        serve_audio, serving_default = loaded.signatures["serve_audio"], loaded.signatures["serving_default"]
        clip = music(30.0)
        one = tf.constant([wav_bytes(clip, RATE)])
        batch = tf.constant([wav_bytes(music(30.0, seed), RATE) for seed in range(16)])
        features = clip_windows({name: tf.constant(values) for name, values in compute_features(clip, recipe).items()},
                                tagger.metadata["window_frames"], tagger.metadata["window_hop_frames"])

        audio_latency = median_seconds(lambda: serve_audio(audio=one), args.repeat)
        feature_latency = median_seconds(lambda: serving_default(**features), args.repeat)
        batch_seconds = median_seconds(lambda: serve_audio(audio=batch), max(3, args.repeat // 6))

        rss = {}
        for minutes in (1, 10):
            path = tmp / f"{minutes}min.wav"
            path.write_bytes(wav_bytes(np.tile(music(60.0), minutes), RATE))
            rss[minutes] = peak_rss_mb(tagger.path, path)
        decoded_mb = 10 * 60 * RATE * 4 / 2 ** 20

    rows = [
        {"measure": "serve_audio, one 30 s clip (median latency)", "value": audio_latency * 1000, "unit": "ms"},
        {"measure": "serving_default on the same clip's precomputed features (baseline)",
         "value": feature_latency * 1000, "unit": "ms"},
        {"measure": "ratio serve_audio / serving_default (cost of the in-graph audio front end)",
         "value": audio_latency / feature_latency, "unit": "x"},
        {"measure": "real-time factor of serve_audio (audio seconds per second)", "value": 30.0 / audio_latency,
         "unit": "x"},
        {"measure": "serve_audio throughput, batches of 16 x 30 s clips", "value": 16 / batch_seconds,
         "unit": "clips/s"},
        {"measure": "predict peak RSS, 1-minute file", "value": rss[1], "unit": "MB"},
        {"measure": "predict peak RSS, 10-minute file", "value": rss[10], "unit": "MB"},
        {"measure": "growth 1 -> 10 minutes", "value": rss[10] - rss[1], "unit": "MB"},
        {"measure": "decoded samples of 9 extra minutes (float32, 22,050 Hz mono)", "value": decoded_mb * 0.9,
         "unit": "MB"},
    ]
    meta = (f"Measured by `python -m bench.serving` on {platform.machine()} ({os.cpu_count()} CPUs, CPU only), "
            f"TensorFlow {tf.__version__}; {tagger.metadata['model']} ({len(tagger.labels)} tags"
            f"{', the default configuration' if args.model is None else ''}) loaded from its SavedModel; "
            f"windows of {tagger.metadata['window_frames']} frames every {tagger.metadata['window_hop_frames']}.")
    publish("serving", {"meta": meta, "rows": rows}, measure_table(meta, rows), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
