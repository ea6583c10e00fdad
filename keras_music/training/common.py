"""What every training run shares: the run folder's model file and config readers, run identity,
epoch lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from keras_music.config import atomic_path, config_to_dict

logger = logging.getLogger("keras_music.training")

SUMMARY_KEYS = ("loss", "val_loss", "val_macro_auc", "val_macro_pr_auc", "val_macro_accuracy")


def save_model(model, out_dir: Path) -> Path:
    """`out_dir/model.keras`, written to a temporary name first so a crash leaves no half file."""
    with atomic_path(out_dir / "model.keras", keep_suffix=True) as tmp:
        model.save(tmp)
    return out_dir / "model.keras"


def run_identity(data, labels, *configs) -> dict:
    """What a backup must match to be resumed: the data and every config of the run."""
    return json.loads(json.dumps({"data": str(data), "labels": None if labels is None else str(labels),
                                  **{type(c).__name__: config_to_dict(c) for c in configs}}))


def history_columns(history: list[dict]) -> dict[str, list[float]]:
    """Per-epoch log rows -> one list per metric (what `History.history` holds)."""
    keys = [k for k in (history[0] if history else {}) if k != "epoch"]
    return {key: [row[key] for row in history if key in row] for key in keys}


def epoch_summary(epochs: int):
    """A Keras callback printing one short line per epoch: losses and macro metrics only.

    The per-tag metrics (e.g. `val_auc_happy`) stay in History, `history.csv` and
    TensorBoard; on the console they would make each line hundreds of characters long.
    """
    import keras

    class EpochSummary(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print_epoch(epoch, epochs, logs or {}, time.perf_counter() - self.start)

    return EpochSummary()


def print_epoch(epoch: int, epochs: int, logs: dict, seconds: float) -> None:
    """The one-line epoch summary on stderr (`epoch 3/60  loss ...  val_macro_auc ...  (1.2 s)`)."""
    values = "  ".join(f"{k} {logs[k]:.4f}" for k in SUMMARY_KEYS if k in logs)
    print(f"epoch {epoch + 1}/{epochs}  {values}  ({seconds:.1f} s)", file=sys.stderr, flush=True)


def check_run_folder(run_dir: str | Path) -> Path:
    """`run_dir` as a Path, or a clear error if it lacks `model.keras` or `config.json`.

    Light on purpose: the CLIs call it before TensorFlow starts, so a mistyped `--model` costs
    no start-up."""
    run_dir = Path(run_dir)
    for path in (run_dir / "model.keras", run_dir / "config.json"):
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} does not exist; --model must be a run folder written by "
                "`python -m keras_music.train` (with model.keras and config.json)."
            )
    return run_dir


def load_run(run_dir: str | Path):
    """The Keras model and `config.json` of a run folder, with clear errors if either is missing."""
    import keras

    import keras_music.models  # noqa: F401  (registers the custom layers, loss and metrics)

    run_dir = check_run_folder(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    return keras.saving.load_model(run_dir / "model.keras"), config


def run_features(config: dict) -> dict[str, int]:
    """Name -> width of the features an emotion run was trained on (`{}` for per-clip vectors).

    Runs written before features were named saved `n_mels` / `n_mfcc` instead."""
    if "features" in config:
        return dict(config["features"])
    if not config.get("n_mels"):
        return {}
    return {"mel": config["n_mels"], "mfcc": config["n_mfcc"]}


def recipe_of(config: dict):
    """The feature recipe of an emotion run (saved in its config; older runs: the 4Q defaults)."""
    from keras_music.config import FeatureRecipe

    if config.get("recipe"):
        return FeatureRecipe.from_dict(config["recipe"], source="config.json recipe")
    logger.warning("config.json has no feature recipe; assuming the default (4Q) recipe.")
    return FeatureRecipe()


def sequence_config_of(config: dict):
    """The run's SequenceConfig, read exactly as `keras_music.evaluate` reads it (one default)."""
    from keras_music.config import config_from_dict
    from keras_music.data.sequences import SequenceConfig

    return config_from_dict(SequenceConfig, config["sequence_config"])


def is_per_clip(config: dict) -> bool:
    """Whether the run's family takes one vector per clip (`clip_vector`) instead of sequences."""
    from keras_music.models.registry import family_of_run

    return family_of_run(config).inputs == "clip_vector"
