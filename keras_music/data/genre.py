"""The Kaggle "Music Genre Classification" table: schema check, cleaning, split by song.

The raw file has three traps that this module owns, so no model or benchmark meets them:

* `duration_in min/ms` mixes minutes (values below 30) and milliseconds, and the unit
  itself leaks the label (classes 0, 3, 4 and 7 are always in minutes). We convert to
  whole milliseconds and drop the raw column, so nothing downstream can see the unit.
* About 1,300 tracks appear several times with different classes, so a split by row
  leaks: `split_by_song` splits by normalised (artist, track).
* `Popularity`, `key` and `instrumentalness` have gaps. They stay NaN here; the model
  imputes them with values adapted on the training split (`fit_genre_preprocessing`).

`load_genre_csv` returns a frame with snake_case columns (`GENRE_COLUMNS` maps them),
which are also the input names of the saved genre model.
"""

from __future__ import annotations

import csv
import importlib.resources
import logging
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from keras_music.data.splits import Split, split_by_group

if typing.TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)

# CSV header -> column name used everywhere inside the package (and as model input names).
GENRE_COLUMNS = {
    "Artist Name": "artist_name",
    "Track Name": "track_name",
    "Popularity": "popularity",
    "danceability": "danceability",
    "energy": "energy",
    "key": "key",
    "loudness": "loudness",
    "mode": "mode",
    "speechiness": "speechiness",
    "acousticness": "acousticness",
    "instrumentalness": "instrumentalness",
    "liveness": "liveness",
    "valence": "valence",
    "tempo": "tempo",
    "duration_in min/ms": "duration_ms",
    "time_signature": "time_signature",
    "Class": "label",
}
LABEL_COLUMN = "Class"
RAW_DURATION_COLUMN = "duration_in min/ms"
TEXT_COLUMNS = ("Artist Name", "Track Name")
NULLABLE_COLUMNS = ("Popularity", "key", "instrumentalness")
# Durations below this are minutes, the rest milliseconds (smallest ms value in the data is ~1e4).
MINUTES_THRESHOLD = 30.0
MS_PER_MINUTE = 60_000.0

# Model-side feature groups (snake_case names).
SEED_NUMERIC = (
    "danceability", "energy", "loudness", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "duration_ms",
)
CATEGORICAL = ("key", "mode", "time_signature")
FEATURE_SETS = {
    # The paper's features: no artist, track name or popularity.
    "seed": {"numeric": SEED_NUMERIC, "categorical": CATEGORICAL, "text": ()},
    "full": {"numeric": ("popularity",) + SEED_NUMERIC, "categorical": CATEGORICAL,
             "text": ("artist_name",)},
}
NULLABLE = ("popularity", "key", "instrumentalness")
# Valid values of the categorical columns (Spotify's ranges), checked on load.
ALLOWED_CATEGORIES = {
    "key": {float(k) for k in range(12)},
    "mode": {0.0, 1.0},
    "time_signature": {float(t) for t in range(8)},
}
# `key` is 1..11 or empty in the file; empty becomes this value, a category of its own.
MISSING_KEY = 0


class GenreDataError(ValueError):
    """A genre CSV that does not follow the training schema; the message says where."""


def feature_columns(feature_set: str) -> list[str]:
    """Model input columns of a feature set (`seed` or `full`)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"Unknown feature set {feature_set!r}; expected one of {sorted(FEATURE_SETS)}.")
    groups = FEATURE_SETS[feature_set]
    return [*groups["text"], *groups["numeric"], *groups["categorical"]]


def load_class_names(path: str | Path | None = None) -> list[str]:
    """Class names by id from an `id,name` CSV; the packaged copy when `path` is None."""
    if path is None:
        text = importlib.resources.files("keras_music.resources").joinpath("genre_classes.csv").read_text()
        source = "keras_music/resources/genre_classes.csv"
    else:
        text = Path(path).read_text()
        source = str(path)
    rows = list(csv.DictReader(text.splitlines()))
    ids = [int(row["id"]) for row in rows]
    if ids != list(range(len(ids))):
        raise GenreDataError(f"{source}: class ids must be 0..{len(ids) - 1} in order, got {ids}.")
    return [row["name"] for row in rows]


def duration_to_ms(raw: np.ndarray) -> np.ndarray:
    """Convert the mixed-unit duration column to whole milliseconds.

    Values below `MINUTES_THRESHOLD` are minutes. Rounding to whole ms matters: minutes
    times 60,000 leaves fractional milliseconds, which would itself reveal the unit.
    """
    raw = np.asarray(raw, dtype="float64")
    return np.round(np.where(raw < MINUTES_THRESHOLD, raw * MS_PER_MINUTE, raw))


def _numeric(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() | np.isinf(values)
    if column not in NULLABLE_COLUMNS:
        bad |= frame[column].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GenreDataError(
            f"{source}: column {column!r}, line {row + 2}: value {_shown(frame[column].iloc[row])} is not "
            f"{'a finite number' if column in NULLABLE_COLUMNS else 'a finite number (this column may not be empty)'}."
        )
    return values.astype("float64")


def _shown(value) -> str:
    """A cell as the user wrote it (`2.0`, not NumPy 2's `np.float64(2.0)`)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_values(frame: pd.DataFrame, column: str, allowed: set, source: str) -> None:
    values = frame[column]
    bad = values.notna() & ~values.isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GenreDataError(
            f"{source}: column {column!r}, line {row + 2}: value {_shown(values.iloc[row])} is not one of "
            f"{sorted(allowed)}."
        )


def validate_genre_frame(raw: pd.DataFrame, num_classes: int, source: str = "<frame>",
                         require_label: bool = True) -> pd.DataFrame:
    """Check a raw frame against the training schema and return the cleaned frame.

    Args:
        raw: DataFrame read with `dtype=str`, header as in the Kaggle file.
        num_classes: int. Valid class ids are `0..num_classes - 1`.
        source: str. Named in error messages (usually the file path).
        require_label: bool. Whether the `Class` column must be present. Defaults to `True`.

    Returns:
        A new frame with the snake_case columns of `GENRE_COLUMNS`; `duration_ms` in whole
        milliseconds; NaN where the file is empty in a nullable column (the model imputes).
    """
    expected = [c for c in GENRE_COLUMNS if require_label or c != LABEL_COLUMN]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise GenreDataError(f"{source}: missing column(s) {missing}; expected header {expected}.")
    extra = [c for c in raw.columns if c not in expected]
    if extra:
        raise GenreDataError(f"{source}: unexpected column(s) {extra}; expected header {expected}.")
    if raw.empty:
        raise GenreDataError(f"{source}: no data rows.")

    clean = pd.DataFrame(index=raw.index)
    for column, name in GENRE_COLUMNS.items():
        if column not in expected:
            continue
        if column in TEXT_COLUMNS:
            text = raw[column].fillna("").astype(str)
            empty = text.str.strip() == ""
            if empty.any():
                row = int(np.flatnonzero(empty.to_numpy())[0])
                raise GenreDataError(f"{source}: column {column!r}, line {row + 2}: empty value.")
            clean[name] = text
        else:
            clean[name] = _numeric(raw, column, source)

    for column, allowed in ALLOWED_CATEGORIES.items():
        _check_values(clean, column, allowed, source)
    if require_label:
        labels = clean["label"]
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= num_classes)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise GenreDataError(
                f"{source}: column {LABEL_COLUMN!r}, line {row + 2}: unknown class id "
                f"{_shown(raw[LABEL_COLUMN].iloc[row])}; expected an integer in 0..{num_classes - 1}."
            )
        clean["label"] = labels.astype("int64")
    clean["duration_ms"] = duration_to_ms(clean["duration_ms"])
    clean = clean.reset_index(drop=True)
    return clean


def load_genre_csv(path: str | Path, num_classes: int = 11, require_label: bool = True) -> pd.DataFrame:
    """Read, validate and clean a genre CSV (see `validate_genre_frame`).

    Raises:
        FileNotFoundError: `path` does not exist.
        GenreDataError: the header, a value or a class id breaks the schema; the message
            names the column, the line of the file and the offending value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Genre CSV {str(path)!r} does not exist (expected a file like train.csv).")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise GenreDataError(f"{path}: not a readable CSV file ({error}).") from error
    except pd.errors.EmptyDataError as error:
        raise GenreDataError(f"{path}: the file is empty (expected a header and data rows).") from error
    frame = validate_genre_frame(raw, num_classes, source=str(path), require_label=require_label)
    logger.info("Loaded %d rows from %s", len(frame), path)
    return frame


def song_keys(frame: pd.DataFrame) -> pd.Series:
    """Normalised (artist, track) key: the unit that must not straddle a split."""
    return (frame["artist_name"].str.strip().str.lower() + "\x1f"
            + frame["track_name"].str.strip().str.lower())


def split_by_song(frame: pd.DataFrame, seed: int, validation_fraction: float, test_fraction: float) -> Split:
    """Seeded split of rows such that all rows of one song (normalised artist + track) stay together.

    The fractions are of songs, not rows (see `keras_music.data.splits.split_by_group`).
    """
    return split_by_group(song_keys(frame), seed, validation_fraction, test_fraction)


def fit_genre_preprocessing(train: pd.DataFrame, feature_set: str, numeric_bins: int) -> dict:
    """Constants of the in-model preprocessing, computed on training rows only.

    The genre model adapts its preprocessing layers to these (`models/genre_mlp.py`), so a
    saved model scores raw CSV rows.

    Returns a JSON-ready dict: per-numeric-column median fill values and missing flags,
    mean and variance of the imputed (+flags) vector, quantile bin edges, the vocabulary
    of each categorical column, and (for `full`) the artist vocabulary.
    """
    bins = numeric_bins
    groups = FEATURE_SETS[feature_set]
    numeric = list(groups["numeric"])
    fill = [float(np.nanmedian(train[c].to_numpy(dtype="float64"))) for c in numeric]
    indicator = [c in NULLABLE for c in numeric]
    values = train[numeric].to_numpy(dtype="float64")
    filled = np.where(np.isnan(values), np.asarray(fill), values)
    flags = np.isnan(values[:, indicator]).astype("float64")
    matrix = np.concatenate([filled, flags], axis=1)
    stats = {
        "feature_set": feature_set,
        "numeric": numeric,
        "fill_values": fill,
        "indicator": indicator,
        "mean": matrix.mean(axis=0).tolist(),
        # Constant columns (e.g. a flag never set in training) get variance 1, not 0.
        "variance": np.where(matrix.var(axis=0) > 0, matrix.var(axis=0), 1.0).tolist(),
        "categories": {
            c: sorted({int(v) for v in train[c].fillna(MISSING_KEY)})
            for c in groups["categorical"]
        },
    }
    if bins:
        # Quantile bin edges per column: piecewise encodings let an MLP cut where trees cut.
        quantiles = np.linspace(0, 1, bins + 1)
        stats["bin_edges"] = [
            sorted(set(np.quantile(filled[:, i], quantiles).round(6).tolist())) for i in range(len(numeric))
        ]
    if "artist_name" in groups["text"]:
        stats["artists"] = sorted(train["artist_name"].unique().tolist())
    return stats


def genre_dataset(frame: pd.DataFrame, feature_set: str, batch_size: int, num_classes: int | None = None,
                  shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """tf.data of `(dict of (batch, 1) columns, one-hot labels)`; labels omitted if `num_classes` is None."""
    import tensorflow as tf

    columns = {
        name: frame[name].to_numpy(dtype=str if name == "artist_name" else "float32").reshape(-1, 1)
        for name in feature_columns(feature_set)
    }
    if num_classes is None:
        dataset = tf.data.Dataset.from_tensor_slices(columns)
    else:
        labels = np.eye(num_classes, dtype="float32")[frame["label"].to_numpy()]
        dataset = tf.data.Dataset.from_tensor_slices((columns, labels))
    if shuffle:
        dataset = dataset.shuffle(len(frame), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
