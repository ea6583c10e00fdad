"""Run every benchmark, then write one summary: `bench/results/summary.json` + `.md`.

    python -m bench.run_all --readme docs/benchmarks.md                 # everything (about 1.5 h on 2 CPU cores)
    python -m bench.run_all --only serving tuning --readme docs/benchmarks.md
    python -m bench.run_all --summary-only --readme docs/benchmarks.md  # rebuild the summary from existing results

Each benchmark runs as its own process (`python -m bench.<name> ...`) and writes its own
JSON, Markdown table and block in docs/benchmarks.md; the summary then puts the headline
figure of each beside the baseline measured in the same run (as a ratio, since these
machines are noisy), and fills that page's `summary` block. A benchmark that fails is
reported and the others still run (exit status 1 then). The README's one headline table
(`emotion-4q-5fold`) is not run here (hours of CPU): `python -m bench.emotion --merge ...
--readme README.md` fills it (docs/benchmarks.md shows the commands).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

from bench.publish import publish

RESULTS = REPO_ROOT / "bench" / "results"
# name -> (script arguments, results file)
BENCHMARKS = {
    "features": (["-m", "bench.features"], "features.json"),
    "pipeline": (["-m", "bench.pipeline"], "pipeline.json"),
    "genre": (["-m", "bench.genre"], "genre.json"),
    "genre-5fold": (["-m", "bench.genre", "--folds", "5", "--seeds", "0", "1",
                     "--models", "majority", "logistic", "hgb", "leaky"], "genre-5fold.json"),
    "genre-train-time": (["-m", "bench.genre", "--time-shipped", "--seeds", "0"], "genre-train-time.json"),
    "emotion-mer4q": (["-m", "bench.emotion", "--data", "mer4q"], "emotion-mer4q.json"),
    "emotion-cal500": (["-m", "bench.emotion", "--data", "cal500", "--folds", "10",
                        "--out", "bench/results/emotion-cal500.json"], "emotion-cal500.json"),
    "serving": (["-m", "bench.serving"], "serving.json"),
    "predict": (["-m", "bench.predict"], "predict.json"),
    "tuning": (["-m", "bench.tuning"], "tuning.json"),
    "scale": (["-m", "bench.scale", "--architecture", "ARCHITECTURE.md"], "scale.json"),  # needs the beam extra
}


def _row(name, measure, ours, baseline, baseline_name, unit=""):
    ratio = ours / baseline if ours is not None and baseline else None
    return {"benchmark": name, "measure": measure, "ours": ours, "baseline": baseline,
            "baseline_name": baseline_name, "ratio": ratio, "unit": unit}


def headline(name: str, result: dict) -> list[dict]:
    """The figures of one benchmark's JSON that the summary shows."""
    rows = []
    if name in ("genre", "genre-5fold"):
        split = "5-fold mean" if name == "genre-5fold" else "test"
        for features in ("seed", "full"):
            by_model = {r["model"]: r for r in result["rows"] if r["features"] == features and not r["leaky"]}
            mlp = next((r for m, r in by_model.items() if m.startswith("keras_music MLP")), None)
            if mlp is None:  # the 5-fold MLP rows are run apart (bench/results/parts/genre-5fold-mlp-default.json)
                part = RESULTS / "parts" / "genre-5fold-mlp-default.json"
                mlp = next(r for r in json.loads(part.read_text())["rows"] if r["features"] == features)
            hgb = by_model["HistGradientBoosting"]
            for key in ("accuracy", "macro_f1"):
                rows.append(_row(name, f"{features} features: {split} {key}", mlp[key], hgb[key],
                                 "HistGradientBoosting"))
    elif name == "genre-train-time":
        shipped, previous = result["rows"][0], result["rows"][1]
        rows.append(_row(name, "training the shipped 'full' model", shipped["seconds"], previous["seconds"],
                         "previous defaults", "s"))
    elif name == "scale":
        seconds = result["measured"]["extract_seconds"]
        rows.append(_row(name, "extracting the 4Q MP3s on Beam's DirectRunner, 2 processes",
                         seconds["Beam DirectRunner, 2 processes"], seconds["local, 2 threads"],
                         "local extractor, 2 threads", "s"))
    elif name.startswith("emotion"):
        by_model = {r["model"]: r for r in result["rows"]}
        baseline = next(r for m, r in by_model.items() if m.startswith("logistic regression"))
        for model, row in by_model.items():
            if model.startswith(("prior", "logistic")):
                continue
            rows.append(_row(name, f"{model}: macro ROC-AUC", row["macro_roc_auc"], baseline["macro_roc_auc"],
                             "logistic regression"))
            if row.get("accuracy") is not None:
                rows.append(_row(name, f"{model}: quadrant accuracy", row["accuracy"], baseline["accuracy"],
                                 "logistic regression"))
    elif name == "features":
        speed = result["speed"]
        for workers in ("1 thread", "2 threads"):
            rows.append(_row(name, f"extraction speed, {workers} (audio s per s)",
                             speed[f"keras_music extract, {workers}"]["audio_seconds_per_second"],
                             speed["librosa, 1 process"]["audio_seconds_per_second"], "librosa, 1 process"))
    elif name == "pipeline":
        steps = result["steps_per_second"]
        rows.append(_row(name, "training steps/s, streamed store", steps["store (streamed)"],
                         steps["memory (same tensors)"], "same tensors in memory"))
    elif name == "serving":
        values = {r["measure"]: r["value"] for r in result["rows"]}
        audio = next(v for k, v in values.items() if k.startswith("serve_audio, one 30 s clip"))
        features = next(v for k, v in values.items() if k.startswith("serving_default on the same"))
        rows.append(_row(name, "serve_audio latency, one 30 s clip", audio, features,
                         "serving_default on precomputed features", "ms"))
        growth = next(v for k, v in values.items() if k.startswith("growth 1 -> 10"))
        decoded = next(v for k, v in values.items() if k.startswith("decoded samples of 9 extra"))
        rows.append(_row(name, "predict peak RSS growth, 1 -> 10 min file", growth, decoded,
                         "size of the extra decoded audio", "MB"))
    elif name == "predict":
        values = {r["key"]: r["value"] for r in result["rows"]}
        rows.append(_row(name, "tagging 30 s clips, packaged default model (files per s)", values["packaged"],
                         values.get("musicnn"), "original musicnn 0.1.0, its TF1 graph", "files/s"))
        rows.append(_row(name, "tagging 30 s clips, packaged default model (files per s)", values["packaged"],
                         values["floor"], "floor: decode + musicnn features", "files/s"))
        if "packaged-before" in values:
            rows.append(_row(name, "tagging 30 s clips, packaged default model (files per s)", values["packaged"],
                             values["packaged-before"], "the same model scored as before issue 43", "files/s"))
        rows.append(_row(name, "predict peak RSS, 60-minute file", values["rss-60"], values["rss-1"], "1-minute file",
                         "MB"))
    elif name == "tuning":
        parts = result["results"]
        if "genre" in parts:
            g = parts["genre"]
            rows.append(_row(name, "genre seed: validation accuracy, searched", g["searched"]["val_accuracy"],
                             g["default"]["val_accuracy"], "default configuration"))
            rows.append(_row(name, "genre seed: test accuracy, searched", g["searched"]["test_accuracy"],
                             g["default"]["test_accuracy"], "default configuration"))
        if "emotion" in parts:
            e = parts["emotion"]
            rows.append(_row(name, "4Q MLP-LSTM: validation macro ROC-AUC, searched", e["searched"]["val_macro_auc"],
                             e["default"]["val_macro_auc"], "default configuration"))
        if "workers" in parts:
            w = parts["workers"]
            rows.append(_row(name, "distributed search wall time, 2 workers", w["seconds_2_workers"],
                             w["seconds_1_worker"], "1 worker", "s"))
    return rows


def markdown(rows: list[dict], meta: str) -> str:
    def number(value):
        return "n/a" if value is None else (f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}")

    lines = [meta, "", "| benchmark | measure | ours | baseline (same run) | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        lines.append(f"| {r['benchmark']} | {r['measure']} | {number(r['ours'])}{unit} | {number(r['baseline'])}{unit} "
                     f"({r['baseline_name']}) | {number(r['ratio'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None, help="Run only these.")
    parser.add_argument("--summary-only", action="store_true", help="Run nothing; rebuild the summary.")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose blocks are refreshed (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    failed = []
    if not args.summary_only:
        for name in args.only or list(BENCHMARKS):
            command, _ = BENCHMARKS[name]
            start = time.perf_counter()
            print(f"== {name}: python {' '.join(command)}", file=sys.stderr, flush=True)
            readme = ["--readme", str(args.readme)] if args.readme else []
            result = subprocess.run([sys.executable, *command, *readme], cwd=REPO_ROOT)
            print(f"== {name}: exit {result.returncode} after {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if result.returncode != 0:
                failed.append(name)
    rows, missing = [], []
    for name, (_, filename) in BENCHMARKS.items():
        path = RESULTS / filename
        if not path.is_file():
            missing.append(name)
            continue
        try:
            rows += headline(name, json.loads(path.read_text()))
        except (KeyError, StopIteration, TypeError, ValueError) as error:
            missing.append(f"{name} (unreadable: {error!r})")
    ran = "all" if not args.only and not args.summary_only else ("none" if args.summary_only else ", ".join(args.only))
    meta = (f"Summary of bench/results/*.json, built {datetime.date.today().isoformat()} by `python -m bench.run_all`"
            f" (benchmarks run this time: {ran}; the others' results are from their last run, dated in their own "
            f"tables){'; FAILED this time: ' + ', '.join(failed) if failed else ''}"
            f"{'; missing: ' + ', '.join(missing) if missing else ''}. Each benchmark's own table below gives the "
            "details and the command that produced it.")
    publish("summary", {"meta": meta, "rows": rows, "failed": failed}, markdown(rows, meta), RESULTS / "summary.json",
            args.readme)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
