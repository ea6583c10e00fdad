"""The Python API of keras_music, exported at the package root (`import keras_music as km`).

    store = km.FeatureStore.extract("music/", "stores/mine", recipe="musicnn")
    run = km.fit_tagger(store, labels="my-tags.csv", model="musicnn_head", out="runs/mine", seed=0)
    export = run.export("saved_models/mine")
    tagger = km.Tagger.from_export(export)

Each function is the library call behind a command (`keras-music extract`, `train`,
`export`, `predict`), with the same defaults, files and numbers; arguments take `str` or
`Path`, and bad ones raise `keras_music.ParameterError` naming the parameter.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from keras_music.tf_logging import import_tensorflow

import_tensorflow()  # the feature store is tf.data: start TensorFlow without its C++ start-up lines

from keras_music.data import store as store_module  # noqa: E402
from keras_music.errors import MissingPathError, ParameterError  # noqa: E402
from keras_music.tagging import Tagger  # noqa: E402


class FeatureStore(store_module.FeatureStore):
    """A folder of extracted audio features (TFRecord shards + recipe + manifest) to train on.

    Open one with `FeatureStore(path)`, or make (or resume) one from a folder of audio with
    `FeatureStore.extract`.

    Example:

    >>> import keras_music as km
    >>> store = km.FeatureStore.extract(MUSIC, TMP / "store", recipe="4q", progress=False)
    >>> len(store), sorted(store.features)
    (7, ['mel', 'mfcc'])
    """

    @classmethod
    def extract(cls, audio: str | Path, out: str | Path, recipe: str = "4q", *, workers: int | None = None,
                decoder: str = "soundfile", progress: bool = True) -> FeatureStore:
        """Decode every audio file below `audio` and write its features into the store `out`.

        Resumable: files already in `out` are skipped, so calling again after an interruption
        (or with new files) extracts only what is missing. Files that cannot be decoded are
        skipped and listed, with the reason, in the returned store's `last_summary.failed`. `recipe`: a preset of
        `keras_music.config.RECIPES` ("4q": 22 kHz log-mel + MFCC; "musicnn": musicnn's 16 kHz
        input, for the musicnn families).
        """
        from keras_music.config import RECIPES
        from keras_music.data.extraction import extract_folder
        from keras_music.progress import ProgressCallback

        if recipe not in RECIPES:
            raise ParameterError("recipe", recipe, f"expected one of {', '.join(sorted(RECIPES))}.")
        if not Path(audio).is_dir():
            raise MissingPathError("audio", audio, "is not a folder of audio files.")
        report = ProgressCallback() if progress else None
        summary = extract_folder(audio, out, RECIPES[recipe], workers=workers, decoder=decoder, progress=report)
        if report:
            report.close()
        store = cls(out)
        store.last_summary = summary
        return store

    def __len__(self) -> int:
        return len(self.manifest())

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"


@dataclasses.dataclass
class TrainedRun:
    """A run folder written by `fit_tagger` (or `keras-music train`): the model, its config and test report."""

    path: Path
    report: dict

    @classmethod
    def load(cls, path: str | Path) -> TrainedRun:
        """An existing run folder."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise MissingPathError("path", path, "is not a run folder (config.json is missing).")
        report_path = path / "report.json"
        return cls(path, json.loads(report_path.read_text()) if report_path.is_file() else {})

    def export(self, path: str | Path, version: int | None = None, data: str | Path | None = None) -> Path:
        """Export for TF Serving into the model folder `path` (`path/<version>/`, the next free version by
        default), as `keras-music export` does; returns the version folder (`Tagger.from_export` takes it).

        `data`: where the run's validation clips are now, for tuning the per-tag thresholds, when
        the folder it was trained on has moved (default: the run's own `data`)."""
        from keras_music.export import export_run

        path = Path(path)
        return export_run(self.path, path.name, path.parent, version=version,
                          data=None if data is None else str(data))


def fit_tagger(data: str | Path | FeatureStore, labels: str | Path | None = None, model: str = "cnn_lstm", *,
               out: str | Path, seed: int = 0, split_seed: int = 0, epochs: int | None = None,
               batch_size: int | None = None, variant: str = "default", hparams: str | Path | None = None,
               verbose: int = 2) -> TrainedRun:
    """Train an emotion (multi-label) tagger as `keras-music train --task emotion` does, into `out`.

    Args:
        data: a `FeatureStore` (or its folder), a folder of `labels.csv` + `features/*.npz`, or
            "demo" (synthetic audio, no download).
        labels: a CSV of `clip_id` (the audio file's name without extension) and one column per
            tag holding 1, 0 or nothing (unknown: ignored by the loss and the metrics); default
            `STORE/labels.csv`. An `artist` column (or a `metadata.csv` beside it) keeps each
            artist's clips on one side of the split.
        model: a family of `keras_music.models.registry` (cnn_lstm, mlp_lstm, musicnn_head, ...).
        out: the run folder; calling again with the same `out` resumes a killed run.
        seed: weights, dropout, shuffling and crops (the same seed gives the same numbers on CPU).
        split_seed: the train/validation/test split by artist.
        hparams: a `best_hparams.json` of `python -m tuning.search`.

    Returns the `TrainedRun`; `run.report` holds the test scores (macro ROC-AUC, per-tag metrics).

    Example:

    >>> import keras_music as km
    >>> run = km.fit_tagger("demo", model="mlp_lstm", out=TMP / "run", epochs=1, verbose=0)
    >>> (run.path / "model.keras").is_file(), 0 <= run.report["macro_roc_auc"] <= 1
    (True, True)
    """
    from keras_music.models.registry import REGISTRY, family_from_flags
    from keras_music.training.emotion import emotion_configs, train_emotion

    try:
        family = family_from_flags(model, "emotion", default_task="emotion")
    except (KeyError, ValueError):
        emotion = sorted(name for name, f in REGISTRY.items() if f.task == "emotion")
        raise ParameterError("model", model, f"expected an emotion tagger family: {', '.join(emotion)}.") from None
    hparam_values = None
    if hparams is not None:
        from keras_music.hparams import load_best_hparams

        hparam_values = load_best_hparams(hparams, family)
    model_config, sequence_config, training = emotion_configs(family, variant, epochs, batch_size, seed, split_seed,
                                                              hparams=hparam_values)
    data = data.root if isinstance(data, store_module.FeatureStore) else data
    report = train_emotion(data, Path(out), model_config, sequence_config, training, labels=labels, verbose=verbose)
    return TrainedRun(Path(out), report)


__all__ = ["FeatureStore", "Tagger", "TrainedRun", "fit_tagger"]
