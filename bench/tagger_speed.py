"""Speed options of the packaged default tagger (`emotion_4q`, musicnn_head on MSD + MTT musicnn), and what they cost.

    python -m bench.tagger_speed --data STORE --labels ../shared/datasets/mer4q/labels.csv --work DIR \
        --retrained --savedmodel --wav CLIP30.wav
    python -m bench.tagger_speed retime --data STORE --labels ../shared/datasets/mer4q/labels.csv --work DIR \
        --savedmodel --wav CLIP30.wav --rounds 3        # timings again (quiet machine), scores kept
    python -m bench.tagger_speed table --emotion-row EMOTION.json --hop 187   # + a bench.emotion musicnn_head row

STORE is the 4Q audio extracted with the musicnn recipe
(`python -m keras_music.extract ../shared/datasets/mer4q/audio --out STORE --recipe musicnn`); DIR
(outside the repository) keeps the window embeddings and timings between runs (delete it to recompute).

The two frozen musicnn networks are ~98% of a file's time, so every option changes how often or how
they run, and the head is scored on their window embeddings (`training.frozen`):

* baseline: fp32, windows every 93 frames (the package today);
* hop 186 (279, 372): `scoring.window_starts(frames, 187, 186)`, exactly every other (third,
  fourth) hop-93 window plus the last (the one ending at the clip's end), so the same embeddings
  and the SAME trained heads, only the scoring changes;
* bf16: TensorFlow's oneDNN auto mixed precision (`auto_mixed_precision_onednn_bfloat16`, a
  grappler pass: it rewrites graphs, so it applies to `tf.function`s and SavedModels, not to
  eager calls), set in a subprocess before any graph runs; embeddings through
  `scoring.inference(front)`, heads as above;
* `--retrained`: heads trained and scored with `window_hop=187` (fp32; its window embeddings
  cost another pass of the networks: ~15 min eager on 2 cores).

Heads are fitted as `bench.emotion` fits `musicnn_head` (`train_emotion`, 5 artist folds of
`bench.emotion.evaluation_splits`, seeds 0 and 1). Each row: the networks' ms per window (a batch
of 20 windows, median of timed calls in a fresh process; `retime`: the median of `--rounds`
alternating fresh processes), windows per 30 s clip, estimated files/s (the measured
baseline 1.41 files/s of `bench.predict`, with the networks' share, 98%, scaled by windows x
ms), scores as mean +- std over folds x seeds, and per clip the agreement of the
argmax quadrant with the baseline row's (same fold and seed) and the largest |probability change|.
`--savedmodel` also times one 30 s clip through the packaged export's `serve_audio` in fresh
processes with and without the bf16 option. Writes bench/results/tagger-speed.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
BASELINE_FILES_PER_S = 1.41  # bench.predict, packaged default, 100 30 s 4Q MP3s, 2 CPUs (issue 43)
NETWORK_SHARE = 0.98  # of a file's time, the two musicnn networks (issue 43 profile)
WEIGHTS = "MSD_musicnn+MTT_musicnn"
WINDOW = 187
SUBSET_HOPS = (186, 279, 372)  # multiples of the packaged hop 93: their windows are some of its windows
BF16_OPTION = {"auto_mixed_precision_onednn_bfloat16": True}
SCORES = ("accuracy", "macro_f1", "macro_roc_auc", "arousal_roc_auc", "valence_roc_auc")
FRAMES_30S = 30 * 16000 // 256 + 1  # musicnn recipe: 16 kHz, hop 256, centred frames


def set_precision(precision: str) -> None:
    """Before any graph runs: bf16 turns on the oneDNN auto mixed precision grappler pass."""
    import tensorflow as tf

    if precision == "bf16":
        tf.config.optimizer.set_experimental_options(BF16_OPTION)


def head_configs(hop: int = 93, seed: int = 0, changes: dict | None = None):
    """`(model_config, sequence_config, training)` of the packaged tagger's family, as train builds them;
    `changes`: `MusicnnHeadConfig` fields changed (`--set`)."""
    from keras_music.models.registry import REGISTRY
    from keras_music.training.emotion import emotion_configs

    family = REGISTRY["musicnn_head"]
    model_config, sequence_config, training = emotion_configs(family, seed=seed)
    fields = {f.name for f in dataclasses.fields(model_config)}
    unknown = sorted(set(changes or {}) - fields)
    if unknown:
        raise ValueError(f"--set {', '.join(unknown)}: musicnn_head has no such field (its fields: "
                         f"{', '.join(sorted(fields))}).")
    model_config = dataclasses.replace(model_config, **{"weights": WEIGHTS, **(changes or {})})
    return model_config, dataclasses.replace(sequence_config, window_hop=hop), training


def front_of(emotion, changes: dict | None = None):
    """The frozen front end (both networks up to `musicnn_penultimate`), as `train_emotion` builds it."""
    from keras_music.models.registry import REGISTRY
    from keras_music.training.emotion import build_tagger
    from keras_music.training.frozen import split_at

    model = build_tagger(head_configs(changes=changes)[0], emotion, emotion.tags.clip_ids)
    return split_at(model, REGISTRY["musicnn_head"].frozen_output)[0]


def embed(args) -> None:
    """Subprocess: window embeddings of every clip at `--hop` in `--precision`, through a graph."""
    set_precision(args.precision)
    import numpy as np

    from keras_music.config import atomic_path
    from keras_music.data.emotion import load_emotion_data
    from keras_music.data.sequences import feature_names
    from keras_music.scoring import clip_windows, inference

    emotion = load_emotion_data(args.data, args.labels)
    front = front_of(emotion)  # held: inference() keeps the model weakly
    call = inference(front)
    source = emotion.sequences()
    out, started = {}, time.perf_counter()
    for clip in source.dataset(emotion.tags.clip_ids):  # one clip's windows per batch, as window_embeddings
        windows = clip_windows({name: clip[name] for name in feature_names(clip)}, WINDOW, args.hop)
        out[clip["clip_id"].numpy().decode()] = call(windows).numpy()
    seconds = time.perf_counter() - started
    with atomic_path(Path(args.out), keep_suffix=True) as tmp:
        np.savez(tmp, **out)
    print(json.dumps({"clips": len(out), "windows": int(sum(len(v) for v in out.values())), "seconds": seconds}))


def time_windows(args) -> None:
    """Subprocess: ms per window of the two networks, a batch of 20 real windows, median of timed calls."""
    set_precision(args.precision)
    import numpy as np

    from keras_music.data.emotion import load_emotion_data
    from keras_music.data.sequences import feature_names
    from keras_music.scoring import clip_windows, inference

    emotion = load_emotion_data(args.data, args.labels)
    front = front_of(emotion)  # held: inference() keeps the model weakly
    call = inference(front)
    clip = next(iter(emotion.sequences().dataset(emotion.tags.clip_ids[:1])))
    windows = clip_windows({name: clip[name] for name in feature_names(clip)}, WINDOW, 93)
    windows = {k: v[:20] for k, v in windows.items()}
    call(windows)  # trace and warm up
    call(windows)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        call(windows)
        times.append(time.perf_counter() - started)
    batch = len(windows["length"])
    print(json.dumps({"precision": args.precision, "batch": batch,
                      "ms_per_window": float(np.median(times)) / batch * 1000,
                      "ms_per_window_all": [t / batch * 1000 for t in times]}))


def time_savedmodel(args) -> None:
    """Subprocess: one 30 s clip through the packaged export's `serve_audio`, `--precision` set first."""
    set_precision(args.precision)
    import numpy as np
    import soundfile
    import tensorflow as tf

    from keras_music.tagging.presets import installed

    export = installed()
    serve = tf.saved_model.load(str(export)).signatures["serve_audio"]
    info = soundfile.info(args.wav)
    feed = {"audio": tf.constant([Path(args.wav).read_bytes()])}  # serve_audio takes WAV bytes
    first = time.perf_counter()
    outputs = serve(**feed)
    first = time.perf_counter() - first
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        outputs = serve(**feed)
        times.append(time.perf_counter() - started)
    np.save(args.out, outputs["probabilities"].numpy())
    print(json.dumps({"precision": args.precision, "export": str(export), "first_call_s": first,
                      "seconds_per_clip": float(np.median(times)), "all_s": times,
                      "windows": int(outputs["window_count"].numpy()[0]), "seconds_of_audio": info.duration,
                      "probabilities": outputs["probabilities"].numpy()[0].tolist()}))


def subprocess_json(*words: str, env: dict | None = None) -> dict:
    """Run this module in a fresh process (its own TensorFlow options) and parse its last stdout line."""
    command = [sys.executable, "-m", "bench.tagger_speed", *words]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}, cwd=REPO_ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def hop_subset(frames: int, hop: int) -> list[int]:
    """Positions, among the hop-93 windows of a clip of `frames` frames, of its windows every `hop`."""
    import numpy as np

    from keras_music.scoring import window_starts

    base = list(np.asarray(window_starts(frames, WINDOW, 93)))
    wanted = list(np.asarray(window_starts(frames, WINDOW, hop)))
    missing = [s for s in wanted if s not in base]
    if missing:
        raise ValueError(f"hop {hop}: window starts {missing} are not hop-93 windows ({frames} frames).")
    return [base.index(s) for s in wanted]


def clip_frames(emotion) -> dict[str, int]:
    from keras_music.data.sequences import feature_names

    return {clip["clip_id"].numpy().decode(): int(clip[feature_names(clip)[0]].shape[0])
            for clip in emotion.sequences().dataset(emotion.tags.clip_ids)}


def clip_logits(head, embeddings: dict, clip_ids, subsets: dict | None = None):
    """`(clips, tags)` logits: the mean of the head's window logits (`scoring.WindowMeans`)."""
    import numpy as np
    import tensorflow as tf

    from keras_music.scoring import WindowMeans

    means = None
    for row, clip in enumerate(clip_ids):
        windows = embeddings[clip] if subsets is None else embeddings[clip][subsets[clip]]
        logits = np.asarray(head(tf.constant(windows), training=False))
        means = means or WindowMeans(len(clip_ids), logits.shape[1])
        means.add(np.full(len(windows), row), logits)
    return means.means()


def fitted_head(emotion, fold, seed: int, hop: int, args, changes: dict | None = None):
    """The head of `musicnn_head` fitted on `fold` as bench.emotion fits it (`train_emotion`), reloaded."""
    import keras

    from keras_music.models.registry import REGISTRY
    from keras_music.training.emotion import train_emotion
    from keras_music.training.frozen import split_at

    model_config, sequence_config, training = head_configs(hop, seed, changes)
    with tempfile.TemporaryDirectory() as out:
        report = train_emotion(args.data, out, model_config, sequence_config, training, labels=args.labels,
                               verbose=0, splits=(fold.train, fold.validation, fold.test))
        model = keras.models.load_model(Path(out) / "model.keras")
    return split_at(model, REGISTRY["musicnn_head"].frozen_output)[1], report


def summary(values: list[float]) -> dict:
    import numpy as np

    values = [v for v in values if v is not None]
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)} if values else None


def files_per_s(windows: float, ms: float, base_windows: float, base_ms: float) -> float:
    """Baseline files/s with the networks' share scaled by windows x ms per window."""
    ratio = (windows * ms) / (base_windows * base_ms)
    return BASELINE_FILES_PER_S / ((1 - NETWORK_SHARE) + NETWORK_SHARE * ratio)


def paired_change(row: dict, baseline: dict, score: str) -> dict:
    """`score` of `row` minus the baseline's, run by run (same fold and seed): mean and std."""
    base = {(r["fold"], r["seed"]): r["scores"][score] for r in baseline["per_run"]}
    return summary([r["scores"][score] - base[r["fold"], r["seed"]] for r in row["per_run"]])


def markdown(result: dict) -> str:
    lines = [f"Speed options of the packaged `emotion_4q` tagger ({result['meta']}).", "",
             ("| row | networks ms / window | windows / 30 s clip | est. files/s | accuracy | macro F1 "
              "| macro ROC-AUC | arousal ROC-AUC | valence ROC-AUC | accuracy - baseline's (paired) "
              "| argmax agrees with baseline | max abs prob change |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cells = [f"{row['scores'][k]['mean']:.3f} ± {row['scores'][k]['std']:.3f}" for k in SCORES]
        paired = paired_change(row, result["rows"][0], "accuracy")
        cells.append(f"{paired['mean']:+.3f} ± {paired['std']:.3f}")
        agreement, change = ("n/a" if row[k] is None else f"{row[k]:.3f}" for k in ("agreement", "max_abs_prob_change"))
        lines.append(f"| {row['name']} | {row['ms_per_window']:.1f} | {row['windows_30s']} "
                     f"| {row['files_per_s']:.2f} | " + " | ".join(cells) + f" | {agreement} | {change} |")
    if result.get("savedmodel"):
        lines += ["", "The packaged export's `serve_audio` on one 30 s clip, fresh process each:", ""]
        for run in result["savedmodel"]["runs"]:
            lines.append(f"* {run['precision']}: {run['seconds_per_clip']:.3f} s per clip (median; first call "
                         f"{run['first_call_s']:.1f} s)")
        lines.append(f"* max abs probability difference bf16 vs fp32: {result['savedmodel']['max_abs_diff']:.4f}")
    lines += ["", f"Reproduce: `{result['command']}`"]
    lines += [f"then `{result[k]}`" for k in ("retime_command", "table_command") if result.get(k)]
    lines += [f"({row['name']}: `{row['source_command']}`)" for row in result["rows"] if row.get("source_command")]
    lines.append("")
    return "\n".join(lines)


def bench(args) -> None:
    import numpy as np

    from bench.emotion import evaluation_splits
    from keras_music.config import atomic_path
    from keras_music.data.emotion import load_emotion_data
    from keras_music.reports import tagging_report
    from keras_music.training.frozen import window_embeddings

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KERAS_MUSIC_CACHE", str(work / "cache"))
    common = ["--data", args.data, "--labels", args.labels]

    timing_file = work / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    for precision in ("fp32", "bf16"):  # first, on a quiet machine: fresh processes, nothing else running
        if precision not in timing:
            timing[precision] = subprocess_json("time", "--precision", precision, *common)
            timing_file.write_text(json.dumps(timing, indent=1))
            print("timing", precision, f"{timing[precision]['ms_per_window']:.1f} ms/window", flush=True)

    emotion = load_emotion_data(args.data, args.labels)
    ids = emotion.tags.clip_ids
    started = time.perf_counter()
    embeddings = {("fp32", 93): window_embeddings(front_of(emotion), emotion, ids, head_configs(93)[1])}
    print(f"fp32 hop-93 embeddings (library, cached): {time.perf_counter() - started:.0f} s", flush=True)
    bf16_file = work / "embeddings-bf16-hop93.npz"
    if not bf16_file.is_file():
        print("bf16 hop-93 embeddings:", subprocess_json("embed", "--precision", "bf16", "--hop", "93",
                                                           "--out", str(bf16_file), *common), flush=True)
    with np.load(bf16_file) as arrays:
        embeddings["bf16", 93] = {c: arrays[c] for c in ids}
    frames = clip_frames(emotion)
    subsets = {hop: {c: hop_subset(frames[c], hop) for c in ids} for hop in SUBSET_HOPS}

    splits = evaluation_splits(emotion, head_configs()[2], "artist", args.folds, 1)
    options = [("baseline: fp32, hop 93", "fp32", 93, False),
               *((f"fp32, hop {hop} (same heads)", "fp32", hop, False) for hop in SUBSET_HOPS),
               ("bf16, hop 93 (same heads)", "bf16", 93, False),
               *((f"bf16, hop {hop} (same heads)", "bf16", hop, False) for hop in SUBSET_HOPS)]
    if args.retrained:
        options.append(("fp32, hop 187, head retrained at hop 187", "fp32", 187, True))
    runs = {name: [] for name, *_ in options}
    for fold in splits:
        for seed in args.seeds:
            head, report = fitted_head(emotion, fold, seed, 93, args)
            rows = emotion.tags.rows(fold.test)
            for name, precision, hop, retrained in options:
                if retrained:
                    head187, _ = fitted_head(emotion, fold, seed, 187, args)
                    vectors = window_embeddings(front_of(emotion), emotion, fold.test, head_configs(187)[1])
                    logits = clip_logits(head187, vectors, fold.test)
                else:
                    logits = clip_logits(head, embeddings[precision, 93], fold.test, subsets.get(hop))
                scores = tagging_report(emotion.tags.tags, rows.labels, rows.mask, logits)
                runs[name].append({"fold": fold.fold, "seed": seed, "scores": {k: scores.get(k) for k in SCORES},
                                   "probabilities": (1 / (1 + np.exp(-logits))).tolist(), "clips": fold.test})
            base = runs[options[0][0]][-1]
            print(f"fold {fold.fold} seed {seed}: " + ", ".join(
                f"{name.split(' (')[0]} acc {runs[name][-1]['scores']['accuracy']:.3f}" for name, *_ in options),
                f"(library report of the baseline fit: acc {report['accuracy']:.3f})", flush=True)
            assert base["clips"] == fold.test

    from keras_music.scoring import window_starts

    windows_30s = {hop: len(window_starts(FRAMES_30S, WINDOW, hop)) for hop in (93, 187, *SUBSET_HOPS)}
    result_rows = []
    base_runs = runs[options[0][0]]
    for name, precision, hop, retrained in options:
        agree, deltas = [], []
        for run, base in zip(runs[name], base_runs):
            p, q = np.asarray(run["probabilities"]), np.asarray(base["probabilities"])
            agree += list(p.argmax(axis=1) == q.argmax(axis=1))
            deltas.append(float(np.abs(p - q).max()))
        ms = timing[precision]["ms_per_window"]
        result_rows.append({
            "name": name, "precision": precision, "hop": hop, "head_retrained": retrained, "ms_per_window": ms,
            "windows_30s": windows_30s[hop], "mean_windows_per_clip": float(np.mean(
                [len(subsets[hop][c]) if hop in subsets else len(embeddings["fp32", 93][c]) for c in ids]))
                if hop != 187 else None,
            "files_per_s": files_per_s(windows_30s[hop], ms, windows_30s[93], timing["fp32"]["ms_per_window"]),
            "scores": {k: summary([r["scores"][k] for r in runs[name]]) for k in SCORES},
            "agreement": float(np.mean(agree)), "max_abs_prob_change": max(deltas),
            "per_run": [{k: v for k, v in r.items() if k not in ("probabilities", "clips")} for r in runs[name]]})
    result = {"rows": result_rows, "timing": timing, "folds": args.folds, "seeds": args.seeds,
              "meta": f"{args.folds} artist folds x seeds {' '.join(map(str, args.seeds))}, {len(ids)} clips, "
                      f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
              "command": "python -m bench.tagger_speed " + " ".join(sys.argv[1:])}
    if args.savedmodel:
        result["savedmodel"] = savedmodel_check(args, work)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(markdown(result))
    print(markdown(result))
    if args.readme:
        from bench.publish import update_block

        update_block(Path(args.readme), "tagger-speed", markdown(result))


def measure_timing(args, rounds: int) -> dict:
    """ms per window of fp32 and bf16, `rounds` fresh processes each, alternating (the machine's
    other load moves both alike); each precision's figure is the median over its rounds."""
    import numpy as np

    common = ["--data", args.data, "--labels", args.labels, "--repeats", str(args.repeats)]
    timing = {"fp32": {"rounds": []}, "bf16": {"rounds": []}}
    for _ in range(rounds):
        for precision in ("fp32", "bf16"):
            timing[precision]["rounds"].append(subprocess_json("time", "--precision", precision, *common))
    for precision, entry in timing.items():
        entry["ms_per_window"] = float(np.median([r["ms_per_window"] for r in entry["rounds"]]))
        entry["batch"] = entry["rounds"][0]["batch"]
    return timing


def retime(args) -> None:
    """Measure the timings again (`--rounds`) and rewrite the results' ms, files/s and table; the
    scores stay (they do not depend on the timing)."""
    from keras_music.config import atomic_path

    out = Path(args.out)
    result = json.loads(out.read_text())
    result["timing"] = timing = measure_timing(args, args.rounds)
    (Path(args.work) / "timing.json").write_text(json.dumps(timing, indent=1))  # what later benches use
    base_windows = next(r["windows_30s"] for r in result["rows"] if r["hop"] == 93)
    for row in result["rows"]:
        row["ms_per_window"] = timing[row["precision"]]["ms_per_window"]
        row["files_per_s"] = files_per_s(row["windows_30s"], row["ms_per_window"], base_windows,
                                         timing["fp32"]["ms_per_window"])
    result["retime_command"] = "python -m bench.tagger_speed " + " ".join(sys.argv[1:])
    if args.savedmodel:
        result["savedmodel"] = savedmodel_check(args, Path(args.work))
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(markdown(result))
    print(markdown(result))


def table(args) -> None:
    """Rewrite the table from the results JSON; `--emotion-row`: add the row of a `bench.emotion`
    run of musicnn_head on the same folds and seeds with other settings (e.g. `--set window_hop=187`:
    a head retrained at that hop; its clips' probabilities are not kept there, so no agreement)."""
    from keras_music.config import atomic_path
    from keras_music.scoring import window_starts

    out = Path(args.out)
    result = json.loads(out.read_text())
    if args.emotion_row:
        source = json.loads(Path(args.emotion_row).read_text())
        row = next(r for r in source["rows"] if r.get("key") == "musicnn_head")
        hop = int(args.hop)
        base = result["rows"][0]
        timing = result["timing"]
        runs = [{"fold": r["fold"], "seed": r["seed"], "scores": {k: r.get(k) for k in SCORES}} for r in row["per_run"]]
        if sorted((r["fold"], r["seed"]) for r in runs) != sorted((r["fold"], r["seed"]) for r in base["per_run"]):
            raise ValueError(f"{args.emotion_row}: its folds and seeds are not the baseline's.")
        name = f"{row['model']} (bench.emotion, fp32)"
        result["rows"] = [r for r in result["rows"] if r["name"] != name] + [{  # once, however often run
            "name": name, "precision": "fp32", "hop": hop,
            "head_retrained": True, "ms_per_window": timing["fp32"]["ms_per_window"],
            "windows_30s": len(window_starts(FRAMES_30S, WINDOW, hop)),
            "files_per_s": None, "scores": {k: summary([r["scores"][k] for r in runs]) for k in SCORES},
            "agreement": None, "max_abs_prob_change": None, "per_run": runs, "source": str(args.emotion_row),
            "source_command": next((p["command"] for p in source.get("parts", []) if p.get("command")), None)}]
        new = result["rows"][-1]
        new["files_per_s"] = files_per_s(new["windows_30s"], new["ms_per_window"], base["windows_30s"],
                                         timing["fp32"]["ms_per_window"])
    result["table_command"] = "python -m bench.tagger_speed " + " ".join(sys.argv[1:])
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    with atomic_path(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(markdown(result))
    print(markdown(result))


def savedmodel_check(args, work: Path) -> dict:
    """`serve_audio` of the packaged export on a 30 s WAV, fp32 and bf16, each in a fresh process."""
    import numpy as np

    wav = Path(args.wav)
    runs = [subprocess_json("savedmodel", "--precision", precision, "--wav", str(wav),
                            "--out", str(work / f"serve-{precision}.npy"), "--data", args.data, "--labels", args.labels)
            for precision in ("fp32", "bf16")]
    diff = float(np.abs(np.load(work / "serve-fp32.npy") - np.load(work / "serve-bf16.npy")).max())
    return {"wav": str(wav), "runs": runs, "max_abs_diff": diff}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = {"bench": bench, "retime": retime, "table": table, "embed": embed, "time": time_windows,
             "savedmodel": time_savedmodel}
    parser.add_argument("mode", nargs="?", default="bench", choices=list(modes),
                        help="bench (default); retime: new timings into existing results; table: the table "
                             "again (--emotion-row); the others are the fresh processes they start.")
    parser.add_argument("--data", help="A feature store of the musicnn recipe.")
    parser.add_argument("--labels")
    parser.add_argument("--emotion-row", help="table: a bench.emotion results JSON with a musicnn_head row "
                                              "(same folds and seeds), at window hop --hop.")
    parser.add_argument("--work", default=None, help="Folder for embeddings and timings (outside the repository).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--retrained", action="store_true", help="Also a head trained at window_hop 187.")
    parser.add_argument("--savedmodel", action="store_true", help="Also time the packaged export, fp32 vs bf16.")
    parser.add_argument("--wav", default=None, help="The 30 s WAV for --savedmodel.")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--hop", type=int, default=93)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="retime: fresh timing processes per precision.")
    parser.add_argument("--out", default=str(RESULTS / "tagger-speed.json"))
    parser.add_argument("--readme", default=None, metavar="FILE.md",
                        help="table: also fill the file's `tagger-speed` bench block (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    from keras_music.tf_logging import import_tensorflow

    import_tensorflow()
    if args.mode != "table" and not (args.data and args.labels):
        parser.error("--data and --labels are required.")
    if args.mode in ("bench", "retime") and not args.work:
        parser.error("--work DIR is required (it keeps embeddings and timings; outside the repository).")
    if args.mode in ("bench", "retime") and args.savedmodel and not args.wav:
        parser.error("--savedmodel needs --wav (a 30 s WAV).")
    modes[args.mode](args)


if __name__ == "__main__":
    main()
