"""How long a fit takes to start: `python -m keras_music.train` for one epoch, this checkout
against a baseline checkout, on the same feature store.

    python -m bench.startup --baseline-repo /work/before
    python -m bench.startup --baseline-repo /work/before --models mlp_lstm cnn_lstm --readme docs/benchmarks.md

For each model: the first epoch's seconds as the CLI prints them (tracing the training and
validation steps, then the epoch itself) and the whole command's wall time (TensorFlow's
import, reading the data, the fit, the test report), each the median of `--repeat` fresh
processes run alternately from the two checkouts. The store is the synthetic demo (what
`python -m keras_music.train` trains on by default, from its cache: `data.emotion.demo_store`),
unless `--data` names one. Prints a table and writes `bench/results/startup.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
FIRST_EPOCH = re.compile(r"^epoch 1/1 .*\(([0-9.]+) s\)$", re.MULTILINE)


def time_fit(repo: Path, data: list[str], model: str, out: Path, seed: int) -> tuple[float, float]:
    """(first epoch seconds, command wall seconds) of one epoch of `model` on `data` (train's
    `--data` and `--labels` arguments), trained from `repo` in a fresh process."""
    command = [sys.executable, "-m", "keras_music.train", *data, "--model", model, "--epochs", "1",
               "--seed", str(seed), "--out", str(out), "--no-export"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo, timeout=3600,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    wall = time.perf_counter() - start
    epoch = FIRST_EPOCH.search(result.stderr)
    if result.returncode != 0 or epoch is None:
        raise RuntimeError(f"{' '.join(command)} in {repo} failed (exit {result.returncode}):\n"
                           f"{result.stderr[-2000:]}")
    return float(epoch.group(1)), wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-repo", type=Path, required=True,
                        help="A checkout to compare with (e.g. `git worktree add /work/before <commit>`).")
    parser.add_argument("--data", type=Path, default=None,
                        help="An emotion feature store with labels (default: the synthetic demo, extracted here).")
    parser.add_argument("--models", nargs="+", default=["mlp_lstm", "cnn_lstm"],
                        help="Emotion models to time (default: %(default)s).")
    parser.add_argument("--repeat", type=int, default=3, help="Fresh processes per model and checkout (median).")
    parser.add_argument("--out", type=Path, default=RESULTS / "startup.json", help="Default: %(default)s")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    baseline = args.baseline_repo.resolve()
    if not (baseline / "keras_music" / "train.py").is_file():
        parser.error(f"--baseline-repo {baseline}: no keras_music/train.py there (a checkout of this project?).")
    from bench.publish import check_block, publish

    if args.readme:
        check_block(args.readme, "startup")  # before minutes of fits
    from keras_music.tf_logging import import_tensorflow

    import_tensorflow()
    import tensorflow as tf

    def describe(repo: Path) -> str:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repo)
        return head.stdout.strip() or str(repo)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data:
            data = ["--data", str(args.data.resolve())]
        else:  # the CLI's own demo store, made (once, cached) by the code the CLI uses
            from keras_music.data.emotion import demo_store

            store, labels = demo_store()
            data = ["--data", str(store), "--labels", str(labels)]
        for model in args.models:
            times = {"baseline": [], "this": []}
            for repeat in range(args.repeat):
                pair = (("baseline", baseline), ("this", REPO_ROOT))
                for name, repo in pair[::-1] if repeat % 2 else pair:  # who goes first alternates (warm caches)
                    times[name].append(time_fit(repo, data, model, tmp / f"{model}-{name}-{repeat}", repeat))
                    print(f"{model} {name} #{repeat + 1}: first epoch {times[name][-1][0]:.1f} s, "
                          f"command {times[name][-1][1]:.1f} s", file=sys.stderr)
            median = {name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
                      for name, runs in times.items()}
            rows.append({"model": model, "first_epoch_baseline": median["baseline"][0],
                         "first_epoch_this": median["this"][0], "command_baseline": median["baseline"][1],
                         "command_this": median["this"][1],
                         "first_epoch_ratio": median["this"][0] / median["baseline"][0],
                         "command_ratio": median["this"][1] / median["baseline"][1], "runs": times})
    meta = (f"Measured by `python -m bench.startup` on {platform.machine()} ({os.cpu_count()} CPUs, CPU only), "
            f"TensorFlow {tf.__version__}: one epoch of `python -m keras_music.train` on "
            f"{'the synthetic demo store' if args.data is None else args.data.name}, median of {args.repeat} fresh "
            f"processes per checkout, run alternately (each goes first in every other pair); this checkout "
            f"{describe(REPO_ROOT)} against {describe(baseline)}.")
    lines = [meta, "", "| model | first epoch s, baseline | first epoch s, this | ratio | command s, baseline | "
                       "command s, this | ratio |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['first_epoch_baseline']:.1f} | {r['first_epoch_this']:.1f} | "
              f"{r['first_epoch_ratio']:.2f} | {r['command_baseline']:.1f} | {r['command_this']:.1f} | "
              f"{r['command_ratio']:.2f} |" for r in rows]
    publish("startup", {"meta": meta, "rows": rows}, "\n".join(lines), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
