"""Feature extraction speed and agreement: keras_music vs librosa on the same files.

    python -m bench.features                       # the 765 4Q MP3s, 3 timed passes
    python -m bench.features --audio ../shared/audio --copies 8 --repeat 5

Speed is audio-seconds per wall-second, end to end (decode, mono, resample to 22,050 Hz,
log-mel + MFCC): ours through `extract_folder` (libsndfile decoding, the recipe's soxr
resampler, tf.signal features, TFRecord store written) with 1 and 2 worker threads; librosa
(`librosa.load` with soxr, `melspectrogram`, DCT) in 1 process and in 2 processes. Each
figure is the median of `--repeat` passes after one warm-up pass.

Agreement (on `--agree` files): |ours - librosa| of log-mel frames above -60 dB, per band
group, for the extraction recipe (soxr) and for the FFT resampler that the exported
`serve_audio` graph applies to audio sent at another rate (the train/serve difference a
client pays by not resampling first); and the two resamplers' cost per clip.

Prints a Markdown table and writes `bench/results/features.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

import numpy as np

from bench.publish import publish
from keras_music.config import FeatureRecipe

DEFAULT_AUDIO = REPO_ROOT.parent / "shared" / "datasets" / "mer4q" / "audio"
RESULTS = REPO_ROOT / "bench" / "results"
RECIPE = FeatureRecipe()


def librosa_features(path: str):
    """The reference recipe of ../shared/datasets/mer4q/README.md."""
    import librosa
    from scipy.fft import dct

    samples, _ = librosa.load(path, sr=RECIPE.sample_rate, mono=True, duration=RECIPE.max_seconds)
    power = librosa.feature.melspectrogram(y=samples, sr=RECIPE.sample_rate, n_fft=RECIPE.n_fft,
                                           hop_length=RECIPE.hop_length, n_mels=RECIPE.n_mels, fmin=RECIPE.fmin,
                                           fmax=RECIPE.mel_fmax, center=True, pad_mode="constant", power=2.0)
    log_mel = 10 * np.log10(power + RECIPE.log_floor)
    return log_mel.T, dct(log_mel, type=2, norm="ortho", axis=0)[: RECIPE.n_mfcc].T


def time_librosa(files, workers: int) -> float:
    start = time.perf_counter()
    if workers == 1:
        for path in files:
            librosa_features(str(path))
    else:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(librosa_features, map(str, files)))
    return time.perf_counter() - start


def time_ours(folder: Path, workers: int) -> float:
    from keras_music.data.extraction import extract_folder

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = extract_folder(folder, Path(out) / "store", RECIPE, workers=workers)
        elapsed = time.perf_counter() - start
    if summary.failed:
        raise RuntimeError(f"extraction failed for {summary.failed}")
    return elapsed


def agreement(files) -> tuple[list[dict], dict]:
    """Per recipe resampler: |ours - librosa| by band group, and ms per clip of the resampling alone."""
    import dataclasses

    from keras_music.audio.decoding import decode_audio, resample_like
    from keras_music.audio.frontend import compute_features

    rows, cost = [], {"soxr_hq": [], "fft": []}
    for resampler in ("soxr_hq", "fft"):
        recipe = dataclasses.replace(RECIPE, resampler=resampler)
        diffs = {"bands 0-55": [], "bands 56-63": []}
        for path in files:
            samples, rate = decode_audio(path)
            samples = samples[: int(np.ceil(RECIPE.max_seconds * rate)) + 1]
            start = time.perf_counter()
            resampled = resample_like(samples, rate, recipe)[: int(RECIPE.max_seconds * RECIPE.sample_rate)]
            cost[resampler].append(time.perf_counter() - start)
            ours = compute_features(resampled, recipe)["mel"]
            reference, _ = librosa_features(str(path))
            frames = min(len(ours), len(reference))
            diff, audible = np.abs(ours[:frames] - reference[:frames]), reference[:frames] > -60
            diffs["bands 0-55"].append(diff[:, :56][audible[:, :56]])
            diffs["bands 56-63"].append(diff[:, 56:][audible[:, 56:]])
        for group, parts in diffs.items():
            values = np.concatenate(parts)
            rows.append({"resampler": resampler, "bands": group, "median_db": float(np.median(values)),
                         "p99_db": float(np.percentile(values, 99)), "max_db": float(values.max())})
    return rows, {name: 1000 * statistics.median(times) for name, times in cost.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="Audio folder. Default: %(default)s")
    parser.add_argument("--repeat", type=int, default=3, help="Timed passes per method (median). Default: 3.")
    parser.add_argument("--copies", type=int, default=1,
                        help="Time over this many copies of the folder (for small folders, so start-up is amortised "
                             "as on a real collection). Default: 1.")
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N files (quick runs).")
    parser.add_argument("--agree", type=int, default=40, help="Files scored for agreement. Default: 40.")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    parser.add_argument("--out", type=Path, default=RESULTS / "features.json", help="Default: %(default)s")
    args = parser.parse_args(argv)
    from keras_music.audio.decoding import decode_audio
    from keras_music.data.extraction import find_audio

    originals = find_audio(args.audio)[: args.limit]
    speed = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        for copy in range(args.copies):  # links, not copies, when one pass over the folder is enough
            (folder / f"copy{copy}").mkdir(parents=True)
            for path in originals:
                target = folder / f"copy{copy}" / f"{path.stem}_{copy}{path.suffix}"
                shutil.copy(path, target) if args.copies > 1 else target.symlink_to(path.resolve())
        files = find_audio(folder)
        audio_seconds = 0.0
        for path in files:
            samples, rate = decode_audio(path)
            audio_seconds += min(samples.size / rate, RECIPE.max_seconds)
        methods = {
            "keras_music extract, 1 thread": lambda: time_ours(folder, 1),
            "keras_music extract, 2 threads": lambda: time_ours(folder, 2),
            "librosa, 1 process": lambda: time_librosa(files, 1),
            "librosa, 2 processes": lambda: time_librosa(files, 2),
        }
        for name, run in methods.items():
            run()  # warm-up: imports, JIT, graph tracing
            seconds = statistics.median(run() for _ in range(args.repeat))
            speed[name] = {"wall_seconds": seconds, "audio_seconds_per_second": audio_seconds / seconds}
            print(f"{name}: {audio_seconds / seconds:.0f} audio-s/s", file=sys.stderr)
    rate = {name: value["audio_seconds_per_second"] for name, value in speed.items()}
    librosa_1 = rate["librosa, 1 process"]
    ratios = {"ours_1thread_vs_librosa_1proc": rate["keras_music extract, 1 thread"] / librosa_1,
              "ours_2threads_vs_librosa_1proc": rate["keras_music extract, 2 threads"] / librosa_1,
              "ours_2threads_vs_librosa_2proc": rate["keras_music extract, 2 threads"] / rate["librosa, 2 processes"]}
    agree, resample_ms = agreement(originals[: args.agree])

    copies = f"{args.copies} copies of " if args.copies > 1 else ""
    lines = [f"{len(files)} files ({copies}{len(originals)} in `{args.audio.name}`), {audio_seconds:.0f} s of audio "
             f"(at most {RECIPE.max_seconds:g} s per file), {os.cpu_count()} CPUs, {platform.machine()}; median of "
             f"{args.repeat} passes after a warm-up. Ours includes writing the TFRecord store.", "",
             "| method | wall s | audio-s per s |", "|---|---|---|"]
    lines += [f"| {name} | {v['wall_seconds']:.2f} | {v['audio_seconds_per_second']:.0f} |" for name, v in speed.items()]
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    lines += ["", f"Agreement with librosa on {min(args.agree, len(originals))} files (log-mel frames above -60 dB); "
              f"resampling alone, median ms per clip: soxr_hq {resample_ms['soxr_hq']:.1f}, fft "
              f"{resample_ms['fft']:.1f}.", "",
              "| resampler | bands | median dB | p99 dB | max dB |", "|---|---|---|---|---|"]
    lines += [f"| {r['resampler']} | {r['bands']} | {r['median_db']:.4f} | {r['p99_db']:.3f} | {r['max_db']:.2f} |"
              for r in agree]
    publish("features", {"speed": speed, "ratios": ratios, "agreement": agree, "resample_ms_per_clip": resample_ms,
                         "audio_seconds": audio_seconds}, "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
