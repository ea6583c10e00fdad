"""KerasTuner search: does the best configuration beat the defaults, and what do workers buy?

    python -m bench.tuning                      # all three parts, real data from ../shared
    python -m bench.tuning --parts workers      # only the 1-vs-2-worker timing

Parts:

* `genre`: `python -m tuning.search --task genre --features seed` on the Kaggle CSV
  (`--genre-trials` trials); the default configuration is scored by the same hypermodel with the
  same epochs and early stopping, on the same validation songs. Then both are trained by
  `python -m keras_music.train` (default vs `--hparams best_hparams.json`, its default
  ensembling: `GenreMLPConfig.heads` and `ensemble_size`)
  and scored on the test songs.
* `emotion`: a short search of the MLP-LSTM on the 4Q sequences (validation macro ROC-AUC),
  beside the default configuration scored the same way.
* `workers`: wall time of the same small distributed search (genre demo table, 6 trials)
  with a chief and 1 worker, then a chief and 2 workers, on 127.0.0.1; the ratio is the
  speed-up.

Prints Markdown tables and writes `bench/results/tuning.json` (+ `.md`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
from keras_music.tf_logging import import_tensorflow  # noqa: E402

import_tensorflow()  # before anything below loads TensorFlow: keeps its C++ start-up lines out

from bench.publish import publish

RESULTS = REPO_ROOT / "bench" / "results"
GENRE_CSV = REPO_ROOT.parent / "shared" / "datasets" / "genre" / "train.csv"


def run(command: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result


def default_score(task: str, model: str, data: str, epochs: int, patience: int,
                  features: str = "seed") -> tuple[float, dict]:
    """Validation objective of the default configuration, scored by the search's own hypermodel
    exactly as a trial (same split, epochs, early stopping), and its hyperparameter values."""
    import keras
    import keras_tuner as kt

    from keras_music.hparams import default_hparams
    from keras_music.models.registry import get_family
    from tuning.hypermodels import declare
    from tuning.search import make_hypermodel

    family = get_family(model, task)
    args = argparse.Namespace(task=task, family=family, data=data, labels=None, features=features, seed=0,
                              split_seed=0)
    hypermodel = make_hypermodel(args, family.space, epochs)
    values = default_hparams(family, hypermodel.model_config, hypermodel.training)
    hp = kt.HyperParameters()
    declare(hp, values)
    objective = hypermodel.objective.name
    history = hypermodel.fit(hp, hypermodel.build(hp), callbacks=[keras.callbacks.EarlyStopping(
        monitor=objective, mode="max", patience=patience)])
    return max(history.history[objective]), values


def search(directory: Path, project: str, extra: list[str], env: dict | None = None) -> dict:
    run([sys.executable, "-m", "tuning.search", "--directory", str(directory), "--project-name", project, *extra],
        env)
    return json.loads((directory / project / "best_hparams.json").read_text())


def genre_part(tmp: Path, trials: int) -> dict:
    epochs, patience = 30, 5
    common = ["--task", "genre", "--features", "seed", "--data", str(GENRE_CSV)]
    default_val, default_values = default_score("genre", "mlp", str(GENRE_CSV), epochs, patience)
    start = time.perf_counter()
    best = search(tmp, "genre-seed", common + ["--tuner", "random", "--max-trials", str(trials), "--epochs",
                                               str(epochs), "--patience", str(patience)])
    search_seconds = time.perf_counter() - start
    test = {}
    for label, extra in (("default", []), ("searched", ["--hparams", str(tmp / "genre-seed" / "best_hparams.json")])):
        run([sys.executable, "-m", "keras_music.train", *common, "--seed", "0", "--out", str(tmp / label),
             "--no-export", *extra])
        test[label] = json.loads((tmp / label / "report.json").read_text())
    return {"trials": trials, "epochs": epochs, "patience": patience, "search_seconds": search_seconds,
            "trained_model": trained_genre_model(),  # the defaults of this run, not of a later table rebuild
            "default": {"hyperparameters": default_values, "val_accuracy": default_val,
                        "test_accuracy": test["default"]["accuracy"], "test_macro_f1": test["default"]["macro_f1"]},
            "searched": {"hyperparameters": best["hyperparameters"], "val_accuracy": best["score"],
                         "test_accuracy": test["searched"]["accuracy"],
                         "test_macro_f1": test["searched"]["macro_f1"]}}


def emotion_part(tmp: Path, trials: int) -> dict:
    epochs, patience = 30, 8
    default_val, default_values = default_score("emotion", "mlp_lstm", "mer4q", epochs, patience)
    start = time.perf_counter()
    best = search(tmp, "mer4q-mlp-lstm", ["--task", "emotion", "--model", "mlp_lstm", "--data", "mer4q",
                                          "--max-trials", str(trials), "--epochs", str(epochs),
                                          "--patience", str(patience)])
    trial_scores = sorted((json.loads(p.read_text())["score"] for p in
                           (tmp / "mer4q-mlp-lstm").glob("trial_*/trial.json")), reverse=True)
    return {"trials": trials, "epochs": epochs, "patience": patience, "search_seconds": time.perf_counter() - start,
            "default": {"hyperparameters": default_values, "val_macro_auc": default_val},
            "searched": {"hyperparameters": best["hyperparameters"], "val_macro_auc": best["score"]},
            "trial_scores": trial_scores}


EPOCHS_PER_TRIAL = 20  # every trial runs them all (patience = epochs), so trials cost the same


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def distributed_seconds(tmp: Path, workers: int, trials: int) -> float:
    """Wall time of one distributed search: a chief and `workers` workers on 127.0.0.1."""
    command = [sys.executable, "-m", "tuning.search", "--task", "genre", "--features", "seed", "--max-trials",
               str(trials), "--epochs", str(EPOCHS_PER_TRIAL), "--patience", str(EPOCHS_PER_TRIAL),
               "--directory", str(tmp / f"workers-{workers}")]
    # The machine's cores are shared out among the workers (TensorFlow reads these at start-up), so
    # two workers do not fight over the same cores; one worker gets them all.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port()),
           "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}
    logs, processes = [], []
    start = time.perf_counter()
    try:
        for tuner_id in ["chief"] + [f"tuner{i}" for i in range(workers)]:
            logs.append(open(tmp / f"workers-{workers}-{tuner_id}.log", "w"))  # files: no pipe can fill up
            processes.append(subprocess.Popen(command, cwd=REPO_ROOT, env={**env, "KERASTUNER_TUNER_ID": tuner_id},
                                              stdout=subprocess.DEVNULL, stderr=logs[-1]))
        for process, log in zip(processes, logs):
            if process.wait(timeout=1800) != 0:
                raise RuntimeError(f"distributed search failed, see {log.name}:\n"
                                   f"{Path(log.name).read_text()[-3000:]}")
        return time.perf_counter() - start
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for log in logs:
            log.close()


def workers_part(tmp: Path, trials: int) -> dict:
    one = distributed_seconds(tmp, 1, trials)
    two = distributed_seconds(tmp, 2, trials)
    return {"trials": trials, "epochs": EPOCHS_PER_TRIAL, "seconds_1_worker": one, "seconds_2_workers": two,
            "speedup": one / two}


def trained_genre_model() -> str:
    """What `python -m keras_music.train --task genre` trains by default, in words."""
    from keras_music.models.genre_mlp import GenreMLPConfig

    config = GenreMLPConfig()
    network = f"one network with {config.heads} heads" if config.heads > 1 else "one network"
    return network if config.ensemble_size == 1 else f"an ensemble of {config.ensemble_size}, each {network}"


def markdown(results: dict, meta: str) -> str:
    lines = [meta]
    if "genre" in results:
        g = results["genre"]
        lines += ["", f"Genre, seed features ({g['trials']} random-search trials, ≤ {g['epochs']} epochs, patience "
                      f"{g['patience']}; search took {g['search_seconds']:.0f} s):", "",
                  "| configuration | hyperparameters | validation accuracy (the search's model) | test accuracy "
                  f"(`train`'s model: {g.get('trained_model', 'not recorded')}) | test macro-F1 |",
                  "|---|---|---|---|---|"]
        for label in ("default", "searched"):
            row = g[label]
            values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row["hyperparameters"].items())
            lines.append(f"| {label} | {values} | {row['val_accuracy']:.4f} | {row['test_accuracy']:.4f} | "
                         f"{row['test_macro_f1']:.4f} |")
    if "emotion" in results:
        e = results["emotion"]
        lines += ["", f"4Q sequences, MLP-LSTM ({e['trials']} trials, ≤ {e['epochs']} epochs, patience "
                      f"{e['patience']}; search took {e['search_seconds']:.0f} s; all trial scores: "
                      f"{', '.join(f'{s:.3f}' for s in e['trial_scores'])}):", "",
                  "| configuration | hyperparameters | validation macro ROC-AUC |", "|---|---|---|"]
        for label in ("default", "searched"):
            row = e[label]
            values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row["hyperparameters"].items())
            lines.append(f"| {label} | {values} | {row['val_macro_auc']:.4f} |")
    if "workers" in results:
        w = results["workers"]
        lines += ["", f"Distributed search on 127.0.0.1 (genre demo table, {w['trials']} trials of "
                      f"{w.get('epochs', 8)} epochs, a chief + workers, the CPU threads shared out among the workers): "
                      f"1 worker {w['seconds_1_worker']:.1f} s, 2 workers {w['seconds_2_workers']:.1f} s, "
                      f"speed-up {w['speedup']:.2f}x (wall time includes each process's TensorFlow start-up)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["genre", "emotion", "workers"],
                        default=["genre", "emotion", "workers"])
    parser.add_argument("--genre-trials", type=int, default=12)
    parser.add_argument("--emotion-trials", type=int, default=6)
    parser.add_argument("--worker-trials", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS / "tuning.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE.md",
                        help="Markdown file whose bench block gets the table (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    results = json.loads(args.out.read_text()).get("results", {}) if args.out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for part in args.parts:
            print(f"running {part} ...", file=sys.stderr, flush=True)
            if part == "genre":
                results["genre"] = genre_part(tmp, args.genre_trials)
            elif part == "emotion":
                results["emotion"] = emotion_part(tmp, args.emotion_trials)
            else:
                results["workers"] = workers_part(tmp, args.worker_trials)
    meta = (f"Measured by `python -m bench.tuning` on {platform.machine()} ({os.cpu_count()} CPUs); split seed 0, "
            "tuner seed 0; the test split is used only after the search.")
    publish("tuning", {"meta": meta, "results": results}, markdown(results, meta), args.out, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
