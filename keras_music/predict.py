"""Tag audio files with an exported emotion model (the SavedModel alone; no training data).

    python -m keras_music.predict song.mp3 --model saved_models/emotion_cnn_lstm
    python -m keras_music.predict ../shared/audio --model saved_models/emotion_cnn_lstm/1 --format json
    python -m keras_music.predict long.flac --model saved_models/emotion_4q --per-window

Files and folders (searched recursively for .wav, .flac, .ogg, .mp3) are decoded with the
audio module (tensorflow-io), mixed to mono and resampled to the model's rate, and each
file goes whole, as WAV bytes, to the model's `serve_audio` signature (the graph TF
Serving runs), which scores it as `keras_music.evaluate` does: windows of the model's
training crop every `window_hop` frames, mean of the windows' logits
(`keras_music.scoring`). Files longer than `--chunk-seconds` go in overlapping chunks
planned by `keras_music.scoring.chunk_plan`, whose windows are exactly the whole file's,
so the scores do not depend on the chunk size. A file's scores are the sigmoid of the mean
window logits; tags above the per-tag thresholds of the export's metadata are listed.
The model is loaded once. Unreadable files are reported with the reason and skipped; the
exit code is 1 when any file failed.
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
        if "window_count" not in self._serve_audio.structured_outputs:
            raise ValueError(f"{path}: its serve_audio has no window_logits/window_count outputs (exported by an "
                             "older keras_music); export the run again.")
        from keras_music.config import FeatureRecipe, config_from_dict

        self.recipe = config_from_dict(FeatureRecipe, self.metadata["recipe"], source=f"{metadata_path} recipe")
        self.window, self.hop = int(self.metadata["window_frames"]), int(self.metadata["window_hop_frames"])

    def window_logits(self, wav: bytes) -> np.ndarray:
        """Logits `(windows, tags)` of one WAV-encoded clip, its windows in `scoring.window_starts` order."""
        import tensorflow as tf

        out = self._serve_audio(audio=tf.constant([wav], dtype=tf.string))
        return out["window_logits"].numpy()[0, :int(out["window_count"].numpy()[0])]


def tag_file(tagger: ExportedTagger, path: Path, chunk_seconds: float) -> dict:
    """Scores of one file: per-file probabilities and tags, and each window's probabilities.

    The file goes whole to `serve_audio`, or in the chunks of `scoring.chunk_plan` when it
    is longer than `chunk_seconds`; either way the windows are the file's windows.
    """
    from keras_music.audio import decode_audio, resample, wav_bytes
    from keras_music.scoring import WindowMeans, chunk_plan, kept_windows

    samples, rate = decode_audio(path)
    if rate != tagger.sample_rate:
        samples = resample(samples, rate, tagger.sample_rate).numpy()
    recipe, window, hop = tagger.recipe, tagger.window, tagger.hop
    logits, starts = [], []
    for chunk in chunk_plan(len(samples), recipe, window, hop, int(chunk_seconds * tagger.sample_rate)):
        positions, file_starts = kept_windows(chunk, recipe, window, hop)
        chunk_logits = tagger.window_logits(wav_bytes(samples[chunk.start:chunk.end], tagger.sample_rate))
        if len(chunk_logits) <= positions.max(initial=-1):
            raise ValueError(f"{path}: serve_audio returned {len(chunk_logits)} windows for samples "
                             f"{chunk.start}-{chunk.end}, keras_music.scoring expects more; the export and this "
                             "keras_music disagree on the window rule (export the run again).")
        logits.append(chunk_logits[positions])
        starts.append(file_starts)
    logits, starts = np.concatenate(logits), np.concatenate(starts)
    means = WindowMeans(1, len(tagger.labels))
    means.add(np.zeros(len(logits), int), logits)
    probabilities = 1 / (1 + np.exp(-means.means()[0]))
    frames = recipe.num_frames(len(samples))
    width = window if window and hop else frames
    seconds = recipe.hop_length / tagger.sample_rate  # per frame; window times are frame times, as librosa's
    return {
        "file": str(path),
        "seconds": round(len(samples) / tagger.sample_rate, 3),
        "probabilities": dict(zip(tagger.labels, map(float, probabilities))),
        "tags": [t for t, p, th in zip(tagger.labels, probabilities, tagger.thresholds) if p >= th],
        "windows": [{"start": round(s * seconds, 3),
                     "end": round(min((s + width) * seconds, len(samples) / tagger.sample_rate), 3),
                     "probabilities": dict(zip(tagger.labels, map(float, 1 / (1 + np.exp(-row)))))}
                    for s, row in zip(starts.tolist(), logits)],
    }


def expand(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files of the given files and folders (recursive), and (path, reason) of bad arguments."""
    from keras_music.data.extraction import find_audio

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
    parser.add_argument("--window", type=float, default=None,
                        help="Deprecated and ignored: files are scored with the model's own training window and "
                             "hop (metadata window_frames / window_hop_frames), as keras_music.evaluate scores them.")
    parser.add_argument("--hop", type=float, default=None, help="Deprecated and ignored (see --window).")
    parser.add_argument("--format", choices=["csv", "json"], default="csv", help="Default: csv.")
    parser.add_argument("--per-window", action="store_true", help="Also output every window's scores (a curve).")
    parser.add_argument("--chunk-seconds", type=float, default=600.0,
                        help="Longest audio per serve_audio call (memory); longer files go in overlapping chunks "
                             "whose windows are exactly the whole file's, so scores do not change. Default: 600.")
    parser.add_argument("--batch-size", type=int, default=None, help="Deprecated and ignored: each call scores "
                        "one whole file (or chunk).")
    parser.add_argument("--out", default=None, help="Write here instead of stdout (written atomically).")
    args = parser.parse_args(argv)
    if args.chunk_seconds < 60:
        parser.error(f"--chunk-seconds must be at least 60 (got {args.chunk_seconds}).")
    for flag in ("window", "hop", "batch_size"):
        if getattr(args, flag) is not None:
            print(f"warning: --{flag.replace('_', '-')} is deprecated and ignored; files are scored with the "
                  "model's training window and hop (see --help).", file=sys.stderr)
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
            results.append(tag_file(tagger, path, args.chunk_seconds))
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
