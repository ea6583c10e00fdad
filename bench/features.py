"""Feature extraction speed and agreement: keras_music vs librosa on the same files.

    python -m bench.features                       # ../shared/audio, 3 timed passes
    python -m bench.features --audio music/ --repeat 5

Speed is audio-seconds per wall-second, end to end (decode, mono, resample to 22,050 Hz,
log-mel + MFCC): ours through `extract_folder` (tensorflow-io decoding, FFT resampler,
tf.signal features, TFRecord store written) with 1 and 2 worker processes; librosa 0.11
(`librosa.load` with soxr, `melspectrogram`, DCT) in 1 process and in 2 processes. Each
figure is the median of `--repeat` passes after one warm-up pass. Agreement: per file,
|ours - librosa| of log-mel frames above -60 dB.

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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from bench.publish import publish
from keras_music.config import FeatureRecipe

DEFAULT_AUDIO = REPO_ROOT.parent / "shared" / "audio"
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


def agreement(files) -> list[dict]:
    from keras_music.audio import compute_features, load_audio

    rows = []
    for path in files:
        ours = compute_features(load_audio(path, RECIPE), RECIPE)["mel"]
        reference, _ = librosa_features(str(path))
        frames = min(len(ours), len(reference))
        diff = np.abs(ours[:frames] - reference[:frames])
        audible = reference[:frames] > -60
        low = audible[:, :56]
        rows.append({"file": path.name, "frames_ours": len(ours), "frames_librosa": len(reference),
                     "max_db_bands_0_55": float(diff[:, :56][low].max()),
                     "p99_db_all_bands": float(np.percentile(diff[audible], 99)),
                     "max_db_all_bands": float(diff[audible].max())})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="Audio folder. Default: %(default)s")
    parser.add_argument("--repeat", type=int, default=3, help="Timed passes per method (median). Default: 3.")
    parser.add_argument("--copies", type=int, default=8,
                        help="Time over this many copies of the folder, so process start-up is amortised as on a "
                             "real collection. Default: 8.")
    parser.add_argument("--readme", type=Path, default=None, help="README to update with the table.")
    parser.add_argument("--out", type=Path, default=RESULTS / "features.json", help="Default: %(default)s")
    args = parser.parse_args(argv)
    from keras_music.audio import decode_audio
    from keras_music.data.extraction import find_audio

    originals = find_audio(args.audio)
    speed = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        for copy in range(args.copies):
            (folder / f"copy{copy}").mkdir(parents=True)
            for path in originals:
                shutil.copy(path, folder / f"copy{copy}" / f"{path.stem}_{copy}{path.suffix}")
        files = find_audio(folder)
        audio_seconds = 0.0
        for path in files:
            samples, rate = decode_audio(path)
            audio_seconds += min(samples.size / rate, RECIPE.max_seconds)
        methods = {
            "keras_music extract, 1 process": lambda: time_ours(folder, 1),
            "keras_music extract, 2 processes": lambda: time_ours(folder, 2),
            "librosa, 1 process": lambda: time_librosa(files, 1),
            "librosa, 2 processes": lambda: time_librosa(files, 2),
        }
        for name, run in methods.items():
            run()  # warm-up: imports, JIT, graph tracing
            seconds = statistics.median(run() for _ in range(args.repeat))
            speed[name] = {"wall_seconds": seconds, "audio_seconds_per_second": audio_seconds / seconds}
            print(f"{name}: {audio_seconds / seconds:.0f} audio-s/s", file=sys.stderr)
    ours = speed["keras_music extract, 2 processes"]["audio_seconds_per_second"]
    ratios = {"ours_2proc_vs_librosa_1proc": ours / speed["librosa, 1 process"]["audio_seconds_per_second"],
              "ours_2proc_vs_librosa_2proc": ours / speed["librosa, 2 processes"]["audio_seconds_per_second"]}
    agree = agreement(originals)

    lines = [f"{len(files)} files ({args.copies} copies of the {len(originals)} in `{args.audio.name}`: WAV, FLAC, "
             f"OGG, MP3), {audio_seconds:.0f} s of audio, {os.cpu_count()} CPUs, {platform.machine()}; median of "
             f"{args.repeat} passes after a warm-up. Ours includes writing the TFRecord store.", "",
             "| method | wall s | audio-s per s |", "|---|---|---|"]
    lines += [f"| {name} | {v['wall_seconds']:.2f} | {v['audio_seconds_per_second']:.0f} |" for name, v in speed.items()]
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    lines += ["", "| file | frames ours / librosa | max dB (bands 0-55) | p99 dB (all) | max dB (all) |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['frames_ours']} / {r['frames_librosa']} | {r['max_db_bands_0_55']:.3f} | "
              f"{r['p99_db_all_bands']:.3f} | {r['max_db_all_bands']:.2f} |" for r in agree]
    publish("features", {"speed": speed, "ratios": ratios, "agreement": agree, "audio_seconds": audio_seconds},
            "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
