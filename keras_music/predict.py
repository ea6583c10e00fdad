"""Tag audio files with an exported emotion model (the SavedModel alone; no training data).

    python -m keras_music.predict song.mp3 --model saved_models/emotion_cnn_lstm
    python -m keras_music.predict ../shared/audio --model saved_models/emotion_cnn_lstm/1 --format json
    python -m keras_music.predict long.flac --model saved_models/emotion_4q --window 30 --hop 10 --per-window

Files and folders (searched recursively for .wav, .flac, .ogg, .mp3) are decoded with the
audio module (tensorflow-io), mixed to mono and resampled to the model's rate, then cut
into windows of `--window` seconds every `--hop` seconds; each window goes to the
model's `serve_audio` signature as WAV bytes (the same graph TF Serving runs). A file's
scores are the sigmoid of the mean window logits; tags above the per-tag thresholds of
the export's metadata are listed. The model is loaded once. Unreadable files are
reported with the reason and skipped; the exit code is 1 when any file failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

logger = logging.getLogger("keras_music.predict")


class ExportedTagger:
    """An exported emotion model: its `serve_audio` signature and metadata.

    Args:
        path: a version folder (`saved_models/NAME/3`) or a model folder
            (`saved_models/NAME`, whose newest version is used).
    """

    def __init__(self, path: str | Path):
        import tensorflow as tf

        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            from keras_music.export import existing_versions

            versions = existing_versions(path)
            if not versions:
                raise FileNotFoundError(f"--model {str(path)!r}: no saved_model.pb there and no version folders "
                                        "under it (expected saved_models/NAME or saved_models/NAME/VERSION).")
            path = path / str(versions[-1])
        metadata_path = path / "assets" / "metadata.json"
        if not metadata_path.is_file():
            raise FileNotFoundError(f"{metadata_path} does not exist: not an export of keras_music.export.")
        self.path = path
        self.metadata = json.loads(metadata_path.read_text())
        if self.metadata.get("task") != "emotion" or "serve_audio" not in self.metadata.get("signatures", {}):
            raise ValueError(f"{path} ({self.metadata.get('task')} {self.metadata.get('model')}) has no serve_audio "
                             "signature; predict needs an emotion model on sequences (cnn_lstm or mlp_lstm).")
        self.labels = self.metadata["labels"]
        self.sample_rate = int(self.metadata["sample_rate"])
        self.thresholds = np.array([self.metadata["thresholds"][t] for t in self.labels])
        self._serve_audio = tf.saved_model.load(str(path)).signatures["serve_audio"]

    def window_logits(self, wavs: list[bytes]) -> np.ndarray:
        """Logits `(len(wavs), tags)` of WAV-encoded windows."""
        import tensorflow as tf

        return self._serve_audio(audio=tf.constant(wavs, dtype=tf.string))["logits"].numpy()


def window_bounds(num_samples: int, rate: int, window_s: float, hop_s: float) -> list[tuple[int, int]]:
    """(start, end) sample indices of windows of `window_s` every `hop_s` seconds.

    After the regular windows, the rest of the file becomes one last, shorter window when it
    lasts at least 1 s (or a whole window, if windows are shorter); a shorter rest is left
    out. A file shorter than a window is one window.
    """
    window, hop = int(round(window_s * rate)), int(round(hop_s * rate))
    if window < 1 or hop < 1:
        raise ValueError(f"--window {window_s} s / --hop {hop_s} s are below one sample at {rate} Hz.")
    if num_samples <= window:
        return [(0, num_samples)]
    bounds = [(start, min(start + window, num_samples)) for start in range(0, num_samples - window + 1, hop)]
    if bounds[-1][1] < num_samples and num_samples - (bounds[-1][0] + hop) >= min(rate, window):
        bounds.append((bounds[-1][0] + hop, num_samples))
    return bounds


def tag_file(tagger: ExportedTagger, path: Path, window_s: float, hop_s: float, batch_size: int) -> dict:
    """Scores of one file: per-file probabilities and tags, and each window's probabilities."""
    from keras_music.audio import decode_audio, resample, wav_bytes

    samples, rate = decode_audio(path)
    if rate != tagger.sample_rate:
        samples = resample(samples, rate, tagger.sample_rate).numpy()
    bounds = window_bounds(len(samples), tagger.sample_rate, window_s, hop_s)
    logits = []
    for i in range(0, len(bounds), batch_size):
        wavs = [wav_bytes(samples[start:end], tagger.sample_rate) for start, end in bounds[i:i + batch_size]]
        logits.append(tagger.window_logits(wavs))
    logits = np.concatenate(logits)
    probabilities = 1 / (1 + np.exp(-logits.mean(axis=0)))
    return {
        "file": str(path),
        "seconds": round(len(samples) / tagger.sample_rate, 3),
        "probabilities": dict(zip(tagger.labels, map(float, probabilities))),
        "tags": [t for t, p, th in zip(tagger.labels, probabilities, tagger.thresholds) if p >= th],
        "windows": [{"start": round(s / tagger.sample_rate, 3), "end": round(e / tagger.sample_rate, 3),
                     "probabilities": dict(zip(tagger.labels, map(float, 1 / (1 + np.exp(-row)))))}
                    for (s, e), row in zip(bounds, logits)],
    }


def expand(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files of the given files and folders (recursive), and (path, reason) of bad arguments."""
    from keras_music.extract import find_audio

    files, bad = [], []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            try:
                files.extend(find_audio(path))
            except ValueError as error:
                bad.append((name, str(error)))
        elif path.is_file():
            files.append(path)
        else:
            bad.append((name, "no such file or folder"))
    return files, bad


def format_results(results: list[dict], labels: list[str], fmt: str, per_window: bool) -> str:
    if fmt == "json":
        if not per_window:
            results = [{k: v for k, v in r.items() if k != "windows"} for r in results]
        return json.dumps(results, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if per_window:
        writer.writerow(["file", "start", "end", *labels])
        for r in results:
            for w in r["windows"]:
                writer.writerow([r["file"], w["start"], w["end"], *(f"{w['probabilities'][t]:.4f}" for t in labels)])
    else:
        writer.writerow(["file", "seconds", *labels, "tags"])
        for r in results:
            writer.writerow([r["file"], r["seconds"], *(f"{r['probabilities'][t]:.4f}" for t in labels),
                             ";".join(r["tags"])])
    return buffer.getvalue()


def progress(done: int, total: int, name: str) -> None:
    width = 24
    filled = int(width * done / max(total, 1))
    end = "\n" if done == total or not sys.stderr.isatty() else "\r"
    print(f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[-50:]}", end=end, file=sys.stderr,
          flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_music.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="Audio files and/or folders (recursive).")
    parser.add_argument("--model", required=True, help="Export folder: saved_models/NAME or saved_models/NAME/VERSION.")
    parser.add_argument("--window", type=float, default=30.0, help="Window length in seconds. Default: 30.")
    parser.add_argument("--hop", type=float, default=None, help="Seconds between window starts. Default: --window.")
    parser.add_argument("--format", choices=["csv", "json"], default="csv", help="Default: csv.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores (a curve).")
    parser.add_argument("--batch-size", type=int, default=8, help="Windows per model call. Default: 8.")
    parser.add_argument("--out", default=None, help="Write here instead of stdout (written atomically).")
    args = parser.parse_args(argv)
    if args.window < 0.1 or (args.hop is not None and args.hop < 0.1) or args.batch_size < 1:
        parser.error("--window and --hop must be at least 0.1 s, and --batch-size at least 1.")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from keras_music.audio import AudioDecodeError
    from keras_music.config import atomic_path

    try:
        tagger = ExportedTagger(args.model)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files, failed = expand(args.paths)
    results = []
    for i, path in enumerate(files, 1):
        try:
            results.append(tag_file(tagger, path, args.window, args.hop or args.window, args.batch_size))
        except (AudioDecodeError, ValueError) as error:
            failed.append((str(path), str(error)))
        except Exception as error:  # a TF op error from the model graph (e.g. a rate it rejects)
            failed.append((str(path), f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"))
        progress(i, len(files), path.name)
    text = format_results(results, tagger.labels, args.format, args.per_window)
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(text)
    else:
        sys.stdout.write(text)
    for name, reason in failed:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"Tagged {len(results)} file(s) with {tagger.path}; {len(failed)} skipped.", file=sys.stderr)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
