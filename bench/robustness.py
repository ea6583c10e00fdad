"""How a musicnn_head tagger (MSD + MTT musicnn, as the packaged `emotion_4q`) holds up on short
excerpts and degraded audio, on the artist-grouped folds of `bench.emotion` (issue 44).

    python -m bench.robustness --data STORE --labels ../shared/datasets/mer4q/labels.csv \
        --audio ../shared/datasets/mer4q/audio --work DIR --folds 5 --seeds 0 1 \
        --out bench/results/robustness-before.json                      # musicnn_head's defaults
    python -m bench.robustness ... --set level_normalization=1 spectral_augment=1 \
        --baseline bench/results/robustness-before.json --readme docs/benchmarks.md   # the packaged config

`--set` changes `MusicnnHeadConfig` fields (the packaged config: `default_model.PACKAGED_FIELDS`);
`--baseline` puts a finished run of another config beside this one, paired run by run.

STORE is the 4Q audio extracted with the musicnn recipe
(`python -m keras_music.extract ../shared/datasets/mer4q/audio --out STORE --recipe musicnn`); DIR
(outside the repository) keeps the window embeddings of every condition between runs (delete it
to recompute). `--conditions` picks some of `CONDITIONS` (a screen), `--folds 2` the first folds.
`python -m bench.robustness --table RESULTS.json --readme docs/benchmarks.md` publishes a finished run's
results (bench/results/robustness.json and .md, the block).

Each fold's head is fitted as `bench.tagger_speed` fits it (`train_emotion` on the training clips'
hop-93 window embeddings, seeds `--seeds`), then scored on the fold's held-out clips as the packaged
export scores a file: windows of 187 frames every 372 (`scoring.window_starts`), the clip's logits the
mean of its windows'. Rows:

* whole clip (store): the store's features, the hop-372 windows among the cached hop-93 ones;
* clean: the held-out clips' MP3s decoded again (`decode_audio`, `resample_like`, `compute_features`),
  nothing changed: the reference the conditions below change one thing of;
* one row per condition (`CONDITIONS`): a pure function of the decoded mono waveform at its own rate,
  applied before resampling to the recipe's rate; its randomness comes from the seed and the clip id.

Scores (accuracy, macro F1, arousal and valence ROC-AUC from the quadrants) are mean +- std over
folds x seeds, and each condition's accuracy change from `clean` on the same run (paired). Writes
bench/results/robustness.json and .md; `--readme` fills the `robustness` block.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
WINDOW, PACKAGED_HOP = 187, 372  # the packaged export's scoring windows (tagging.presets)
SCORES = ("accuracy", "macro_f1", "macro_roc_auc", "arousal_roc_auc", "valence_roc_auc", "ece")
TABLE_SCORES = ("accuracy", "macro_f1", "arousal_roc_auc", "valence_roc_auc")

EXCERPT_SECONDS = (3.0, 10.0)
# libsndfile's LAME at constant bit rate: the compression level that gives 32 kb/s, by MPEG version
# (measured: MPEG-1, 32-48 kHz, 0.99 -> 32 kb/s; MPEG-2, 16-24 kHz, 0.84 -> 32 kb/s but 0.99 -> 8 kb/s)
MP3_COMPRESSION = {"MPEG-1": 0.99, "MPEG-2": 0.84}
MP3_KBPS = 32
MPEG_FRAME = 1152  # samples of an MPEG-1 Layer III frame
LOW_PASS_HZ = 4000.0
PHONE_BAND_HZ = (300.0, 3400.0)
QUIETER_DB, LOUDER_DB = -20.0, 10.0
MU = 255.0


# --- conditions: mono float32 waveform at its rate -> the same, changed --------------------------------


def clip_seed(seed: int, clip_id: str) -> int:
    """A clip's own seed for a run's `seed`: the same crop for the same clip and seed on every machine."""
    return int.from_bytes(hashlib.sha1(f"{seed}:{clip_id}".encode()).digest()[:8], "little")


def excerpt(samples: np.ndarray, rate: int, seed: int, seconds: tuple[float, float] = EXCERPT_SECONDS) -> np.ndarray:
    """A random crop of `seconds` (uniform between the two) at a uniform start; a shorter clip whole."""
    rng = np.random.default_rng(seed)
    length = int(round(rng.uniform(*seconds) * rate))
    if length >= len(samples):
        return samples
    start = int(rng.integers(0, len(samples) - length + 1))
    return samples[start:start + length]


def gain(samples: np.ndarray, rate: int, seed: int, decibels: float) -> np.ndarray:
    """`samples` x 10^(dB/20), clipped to [-1, 1] as a file would store it."""
    return np.clip(samples * np.float32(10 ** (decibels / 20)), -1, 1).astype(np.float32)


def band_pass(samples: np.ndarray, rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """An ideal FFT filter: every frequency outside [low_hz, high_hz] removed."""
    spectrum = np.fft.rfft(samples)
    frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
    spectrum[(frequencies < low_hz) | (frequencies > high_hz)] = 0
    return np.fft.irfft(spectrum, n=len(samples)).astype(np.float32)


def mp3_compression(rate: int) -> float:
    """libsndfile's compression level for an `MP3_KBPS` MP3 at `rate` (the 4Q clips: 16-44.1 kHz)."""
    if not 16000 <= rate <= 48000:
        raise ValueError(f"mp3_low: no {MP3_KBPS} kb/s compression level measured at {rate} Hz (16-48 kHz).")
    return MP3_COMPRESSION["MPEG-1" if rate >= 32000 else "MPEG-2"]


def mp3_round_trip(samples: np.ndarray, rate: int, compression_level: float | None = None
                   ) -> tuple[np.ndarray, float]:
    """`(decoded, kb/s)`: encoded to a constant-bit-rate MP3 by libsndfile (LAME; by default at
    `MP3_KBPS`) and decoded again, aligned and cut to the input's length. libsndfile does not always drop LAME's encoder delay
    (1105 samples at 32 kb/s), so the decoded signal is aligned by cross-correlation over lags of
    up to three frames."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="MP3", subtype="MPEG_LAYER_III",
                    compression_level=mp3_compression(rate) if compression_level is None else compression_level,
                    bitrate_mode="CONSTANT")
    kbps = len(buffer.getvalue()) * 8 / (len(samples) / rate) / 1000
    buffer.seek(0)
    decoded, decoded_rate = soundfile.read(buffer, dtype="float32", always_2d=True)
    decoded = decoded.mean(axis=1)
    if decoded_rate != rate:
        raise ValueError(f"the MP3 round trip changed the rate: {rate} -> {decoded_rate} Hz.")
    lag = delay_of(samples, decoded, 3 * MPEG_FRAME)
    aligned = decoded[lag:lag + len(samples)]
    return np.pad(aligned, (0, len(samples) - len(aligned))).astype(np.float32), kbps


def delay_of(reference: np.ndarray, delayed: np.ndarray, max_lag: int, span: int = 2 ** 18) -> int:
    """The lag in [0, max_lag] at which `delayed` best matches `reference`: cross-correlation of
    `span` samples from the middle of `reference` (the lag is the same all along; a whole 30 s clip
    would cost a second of FFTs)."""
    from scipy.fft import irfft, next_fast_len, rfft

    start = max(0, min(len(reference), len(delayed) - max_lag) // 2 - span // 2)
    segment = reference[start:start + span]
    later = delayed[start:start + len(segment) + max_lag]
    size = next_fast_len(len(segment) + len(later), real=True)
    correlation = irfft(np.conj(rfft(segment, size)) * rfft(later, size), size)
    return int(np.argmax(correlation[:max_lag + 1]))


def mp3_low(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    return mp3_round_trip(samples, rate)[0]


def band_limited(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    return band_pass(samples, rate, 0.0, LOW_PASS_HZ)


def quieter(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    return gain(samples, rate, seed, QUIETER_DB)


def louder(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    return gain(samples, rate, seed, LOUDER_DB)


def mu_law(samples: np.ndarray, bits: int = 8) -> np.ndarray:
    """mu-law companding to `bits` bits and back (telephony's G.711 quantisation)."""
    x = np.clip(samples, -1, 1)
    companded = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    levels = 2 ** (bits - 1) - 1
    quantised = np.round(companded * levels) / levels
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU).astype(np.float32)


def phone(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """A mono telephone line: 300-3400 Hz, 8-bit mu-law."""
    return mu_law(band_pass(samples, rate, *PHONE_BAND_HZ))


def clean(samples: np.ndarray, rate: int, seed: int) -> np.ndarray:
    return samples


CONDITIONS = {
    "clean": (clean, "the MP3 decoded again, unchanged"),
    "excerpt": (excerpt, f"a random {EXCERPT_SECONDS[0]:g}-{EXCERPT_SECONDS[1]:g} s crop (seeded per clip and seed)"),
    "mp3_low": (mp3_low, f"MP3 re-encoded at a constant {MP3_KBPS} kb/s by libsndfile's LAME"),
    "band_limited": (band_limited, f"low-pass at {LOW_PASS_HZ / 1000:g} kHz"),
    "quieter": (quieter, f"{QUIETER_DB:+g} dB"),
    "louder": (louder, f"{LOUDER_DB:+g} dB, clipped to [-1, 1]"),
    "phone": (phone, f"{PHONE_BAND_HZ[0]:g}-{PHONE_BAND_HZ[1]:g} Hz, 8-bit mu-law"),
}
SEEDED = {"excerpt"}  # conditions whose output depends on the seed (others: one set of embeddings)


# --- embeddings of a condition -------------------------------------------------------------------------


def condition_embeddings(condition: str, seed: int, clip_ids, front, recipe, audio: Path, work: Path) -> dict:
    """`{clip id: (windows, D)}` of the frozen front end on the packaged windows of each clip's
    decoded, changed audio; cached in `work/<front end's fingerprint>` (one .npz per condition and
    seed), computed only for the clips it lacks. Also `{clip id: kb/s}` for mp3_low in a side file."""
    from keras_music.audio.decoding import decode_audio, resample_like
    from keras_music.audio.frontend import compute_features
    from keras_music.config import atomic_path
    from keras_music.scoring import clip_windows, inference
    from keras_music.training.frozen import front_fingerprint

    folder = work / front_fingerprint(front)[:16]
    folder.mkdir(exist_ok=True)
    path = folder / (f"embeddings-{condition}" + (f"-seed{seed}" if condition in SEEDED else "") + ".npz")
    cached = {}
    if path.is_file():
        with np.load(path) as arrays:
            cached = {c: arrays[c] for c in arrays.files}
    missing = [c for c in clip_ids if c not in cached]
    if missing:
        function = CONDITIONS[condition][0]
        call = inference(front)
        started = time.perf_counter()
        kbps = {}
        for clip in missing:
            samples, rate = decode_audio(audio / f"{clip}.mp3")
            if condition == "mp3_low":
                changed, kbps[clip] = mp3_round_trip(samples, rate)
            else:
                changed = function(samples, rate, clip_seed(seed, clip))
            features = compute_features(resample_like(changed, rate, recipe), recipe)
            windows = clip_windows(features, WINDOW, PACKAGED_HOP)
            cached[clip] = np.asarray(call(windows))
        with atomic_path(path, keep_suffix=True) as tmp:
            np.savez(tmp, **cached)
        if kbps:
            side = path.with_suffix(".kbps.json")
            old = json.loads(side.read_text()) if side.is_file() else {}
            side.write_text(json.dumps({**old, **kbps}))
        print(f"{condition} seed {seed}: {len(missing)} clips in {time.perf_counter() - started:.0f} s", flush=True)
    return {c: cached[c] for c in clip_ids}


def mean_kbps(work: Path) -> float | None:
    side = next(work.glob("*/embeddings-mp3_low.kbps.json"), None)
    return float(np.mean(list(json.loads(side.read_text()).values()))) if side else None


# --- the bench ------------------------------------------------------------------------------------------


def model_name(result: dict) -> str:
    changes = result.get("changes") or {}
    return ("the packaged `emotion_4q` tagger's model" if not changes else
            "`musicnn_head` (" + ", ".join(f"{k}={json.dumps(v)}" for k, v in changes.items()) + ")")


def markdown(result: dict) -> str:
    lines = [(f"Robustness of {model_name(result)} ({result['meta']}); windows of 187 frames "
              f"every 372, as the packaged export scores a file."), "",
             ("| condition | what changes | accuracy | macro F1 | arousal ROC-AUC | valence ROC-AUC "
              "| accuracy - clean's (paired) |"),
             "|---|---|---|---|---|---|---|"]
    clean_runs = next((r for r in result["rows"] if r["name"] == "clean"), None)
    for row in result["rows"]:
        cells = [f"{row['scores'][k]['mean']:.3f} ± {row['scores'][k]['std']:.3f}" if row["scores"][k] else "n/a"
                 for k in TABLE_SCORES]
        paired = paired_change(row, clean_runs, "accuracy") if clean_runs else None
        cells.append("n/a" if paired is None or row["name"] == "clean" else f"{paired['mean']:+.3f} ± {paired['std']:.3f}")
        lines.append(f"| {row['name']} | {row['what']} | " + " | ".join(cells) + " |")
    if result.get("reliability"):
        lines += ["", reliability_table(result["reliability"])]
    lines += ["", f"Reproduce: `{result['command']}`", ""]
    return "\n".join(lines)


def reliability_table(table: dict) -> str:
    """Markdown: the reliability diagram of the whole-clip quadrant probabilities, pooled over runs."""
    from keras_music.reports import reliability_markdown

    lines = [f"Calibration of the whole-clip quadrant probabilities (every held-out clip x quadrant, all runs; "
             f"positive: the quadrant is the clip's): expected calibration error {table['ece']:.3f}, Brier score "
             f"{table['brier']:.3f}.", "", reliability_markdown(table)]
    return "\n".join(lines)


def comparison(before: dict, after: dict) -> str:
    """Markdown: each condition's scores of `before` (a run of the model as it was) and `after`, and
    the accuracy change on the runs (fold, seed) both made, paired."""
    old = {row["name"]: row for row in before["rows"]}
    lines = [f"Before: {model_name(before)} ({before['meta']}). After: {model_name(after)} ({after['meta']}).", "",
             "| condition | accuracy before | accuracy after | change (paired) | arousal ROC-AUC before / after "
             "| valence ROC-AUC before / after |", "|---|---|---|---|---|---|"]

    def cell(row, key):
        score = row["scores"].get(key) if row else None
        return f"{score['mean']:.3f} ± {score['std']:.3f}" if score else "n/a"

    def short(row, key):
        score = row["scores"].get(key) if row else None
        return f"{score['mean']:.3f}" if score else "n/a"

    for row in after["rows"]:
        was = old.get(row["name"])
        paired = paired_change(row, was, "accuracy") if was else None
        change = f"{paired['mean']:+.3f} ± {paired['std']:.3f} ({paired['n']} runs)" if paired else "n/a"
        lines.append(f"| {row['name']} | {cell(was, 'accuracy')} | {cell(row, 'accuracy')} | {change} | "
                     f"{short(was, 'arousal_roc_auc')} / {short(row, 'arousal_roc_auc')} | "
                     f"{short(was, 'valence_roc_auc')} / {short(row, 'valence_roc_auc')} |")
    return "\n".join(lines + [""])


def summary(values) -> dict | None:
    values = [v for v in values if v is not None]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)} if values else None


def paired_change(row: dict, baseline: dict, score: str) -> dict | None:
    base = {(r["fold"], r["seed"]): r["scores"][score] for r in baseline["per_run"]}
    return summary([r["scores"][score] - base[r["fold"], r["seed"]] for r in row["per_run"]
                    if (r["fold"], r["seed"]) in base])


def bench(args) -> None:
    work = Path(args.work).resolve()
    if work.is_relative_to(REPO_ROOT):
        raise ValueError(f"--work {args.work}: inside the repository; embeddings belong outside it.")
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KERAS_MUSIC_CACHE", str(work / "cache"))
    if args.readme:
        from bench.publish import check_block

        check_block(Path(args.readme), args.block)  # a wrong document fails now, not after the run

    from bench.emotion import evaluation_splits
    from bench.publish import parse_overrides
    from bench.tagger_speed import (
        clip_frames,
        clip_logits,
        fitted_head,
        front_of,
        head_configs,
        hop_subset,
    )
    from keras_music.data.emotion import load_emotion_data
    from keras_music.reports import reliability, tagging_report
    from keras_music.training.frozen import window_embeddings

    emotion = load_emotion_data(args.data, args.labels)
    if emotion.recipe is None or emotion.recipe.mel_compression != "musicnn":
        raise ValueError(f"{args.data}: not a feature store of the musicnn recipe (its recipe: {emotion.recipe}).")
    audio = Path(args.audio)
    ids = emotion.tags.clip_ids
    absent = [c for c in ids if not (audio / f"{c}.mp3").is_file()]
    if absent:
        raise ValueError(f"{audio}: no MP3 for {len(absent)} clips, e.g. {absent[0]}.mp3")
    changes = parse_overrides(args.set)
    front = front_of(emotion, changes)
    started = time.perf_counter()
    store_windows = window_embeddings(front, emotion, ids, head_configs(93, 0, changes)[1])
    print(f"store hop-93 embeddings (cached): {time.perf_counter() - started:.0f} s", flush=True)
    frames = clip_frames(emotion)
    packaged = {c: hop_subset(frames[c], PACKAGED_HOP) for c in ids}

    splits = evaluation_splits(emotion, head_configs()[2], "artist", 5, 1)[: args.folds]
    rows = [("whole clip (store)", "the store's features, as trained")] + [
        (name, CONDITIONS[name][1]) for name in args.conditions]
    runs = {name: [] for name, _ in rows}
    pooled = []  # (labels, mask, probabilities) of the whole clips, every run: the reliability table
    for fold in splits:
        for seed in args.seeds:
            head, _ = fitted_head(emotion, fold, seed, 93, args, changes)
            labels = emotion.tags.rows(fold.test)
            for name, _ in rows:
                if name == "whole clip (store)":
                    logits = clip_logits(head, store_windows, fold.test, packaged)
                else:
                    vectors = condition_embeddings(name, seed, fold.test, front, emotion.recipe, audio, work)
                    logits = clip_logits(head, vectors, fold.test)
                scores = tagging_report(emotion.tags.tags, labels.labels, labels.mask, logits)
                if name == "whole clip (store)":
                    pooled.append((labels.labels, labels.mask, 1 / (1 + np.exp(-np.asarray(logits, "float64")))))
                runs[name].append({"fold": fold.fold, "seed": seed, "scores": {k: scores.get(k) for k in SCORES}})
            print(f"fold {fold.fold} seed {seed}: " + ", ".join(
                f"{name} {runs[name][-1]['scores']['accuracy']:.3f}" for name, _ in rows), flush=True)

    kbps = mean_kbps(work)
    result_rows = []
    for name, what in rows:
        if name == "mp3_low" and kbps:
            what += f" (measured: {kbps:.1f} kb/s)"
        result_rows.append({"name": name, "what": what,
                            "scores": {k: summary([r["scores"][k] for r in runs[name]]) for k in SCORES},
                            "per_run": runs[name]})
    result = {"rows": result_rows, "folds": [f.fold for f in splits], "seeds": args.seeds, "mp3_kbps": kbps,
              "changes": changes,
              "reliability": reliability(*(np.concatenate(parts) for parts in zip(*pooled))),
              "meta": f"{len(splits)} of 5 artist folds x seeds {' '.join(map(str, args.seeds))}, "
                      f"{sum(len(f.test) for f in splits)} held-out clips, {os.cpu_count()} CPUs, "
                      f"{platform.processor() or platform.machine()}",
              "command": "python -m bench.robustness " + " ".join(sys.argv[1:])}
    publish(result, Path(args.out), args.readme, args.block, read_baseline(args.baseline))


def read_baseline(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        result = json.loads(Path(path).read_text())
        result["rows"][0]["per_run"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise ValueError(f"--baseline {path}: not a bench.robustness result ({error}).") from None
    return result


def publish(result: dict, out: Path, readme: str | None, block: str = "robustness", baseline: dict | None = None
            ) -> None:
    """The results as `out` (JSON) and its Markdown table beside it (after the comparison with
    `baseline`, a run of the model before, when given); `readme`: also its `block`."""
    from keras_music.config import atomic_path

    text = (comparison(baseline, result) + "\n" if baseline else "") + markdown(result)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(text)
    print(text)
    if readme:
        from bench.publish import update_block

        update_block(Path(readme), block, text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="A feature store of the musicnn recipe.")
    parser.add_argument("--labels")
    parser.add_argument("--audio", help="The clips' MP3s, CLIP_ID.mp3 (never copied).")
    parser.add_argument("--work", help="Folder for embeddings (outside the repository).")
    parser.add_argument("--table", metavar="RESULTS.json",
                        help="Only write the table of a finished run's results to --out (.json and .md), "
                             "and --readme's block: a run made elsewhere, published.")
    parser.add_argument("--folds", type=int, default=5, choices=range(1, 6), help="The first N of the 5 folds.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--set", nargs="+", default=None, metavar="FIELD=VALUE",
                        help="MusicnnHeadConfig fields changed from the packaged model's, e.g. "
                             "level_normalization=1 spectral_augment=2.")
    parser.add_argument("--out", default=str(RESULTS / "robustness.json"))
    parser.add_argument("--readme", default=None, metavar="FILE.md",
                        help="Also fill the file's --block (docs/benchmarks.md).")
    parser.add_argument("--block", default="robustness", help="The bench block of --readme to fill.")
    parser.add_argument("--baseline", metavar="BEFORE.json",
                        help="A finished run of the model before (e.g. without --set): its scores beside "
                             "these, and the paired accuracy change, head the table.")
    args = parser.parse_args(argv)
    if args.table:
        publish(json.loads(Path(args.table).read_text()), Path(args.out), args.readme, args.block,
                read_baseline(args.baseline))
        return
    if not (args.data and args.labels and args.audio and args.work):
        parser.error("--data, --labels, --audio and --work are required (or --table RESULTS.json).")
    from keras_music.tf_logging import import_tensorflow

    import_tensorflow()
    bench(args)


if __name__ == "__main__":
    main()
