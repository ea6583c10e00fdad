"""Deterministic synthetic data, so the whole flow runs with no external files.

`make_genre_table` imitates the Kaggle genre CSV: same header, class-dependent feature
distributions, artists tied to genres, gaps in the nullable columns, some durations
in minutes, and a few tracks repeated under a second genre. It goes through the same
validation and cleaning as the real file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from keras_music.data.genre import GENRE_COLUMNS, MINUTES_THRESHOLD

_WORLD_SEED = 20221013  # the paper's date; fixes the synthetic task itself
# [0, 1] columns drawn per class from a Gaussian around a class centre.
_UNIT_COLUMNS = ("danceability", "energy", "speechiness", "acousticness", "instrumentalness",
                 "liveness", "valence")


def make_genre_table(num_rows: int = 3000, num_classes: int = 11, seed: int = 0) -> pd.DataFrame:
    """A synthetic genre table with the Kaggle header, raw (mixed duration units, gaps).

    The "world" (class centres, artists and their genres) is fixed; `seed` only draws the
    rows, so tables with different seeds are fresh samples of the same task (a model
    trained on one scores the other).

    Args:
        num_rows: int. Rows to generate. Defaults to `3000`.
        num_classes: int. Number of genre ids. Defaults to `11`.
        seed: int. Same seed, same table. Defaults to `0`.
    """
    world = np.random.default_rng(_WORLD_SEED + num_classes)
    centres = world.uniform(0.15, 0.85, size=(num_classes, len(_UNIT_COLUMNS)))
    tempo_centre = world.uniform(80, 160, size=num_classes)
    loudness_centre = world.uniform(-14, -4, size=num_classes)
    num_artists = num_classes * 25
    artist_class = world.integers(0, num_classes, size=num_artists)

    rng = np.random.default_rng(seed)

    artist = rng.integers(0, num_artists, size=num_rows)
    # Most rows follow their artist's genre; the rest are another genre at random.
    label = np.where(rng.random(num_rows) < 0.75, artist_class[artist], rng.integers(0, num_classes, num_rows))
    noise = rng.normal(0.0, 0.25, size=(num_rows, len(_UNIT_COLUMNS)))
    units = np.clip(centres[label] + noise, 0.0, 1.0)

    columns: dict[str, object] = {
        "Artist Name": [f"Artist {a:04d}" for a in artist],
        "Track Name": [f"Track {seed}-{i:05d}" for i in range(num_rows)],
        "Popularity": np.clip(rng.normal(45 + 2 * label, 12), 0, 100).round(),
        "key": rng.integers(1, 12, size=num_rows).astype(float),
        "loudness": (loudness_centre[label] + rng.normal(0, 2.0, num_rows)).round(3),
        "mode": (rng.random(num_rows) < 0.3 + 0.4 * (label % 2)).astype(int),
        "tempo": (tempo_centre[label] + rng.normal(0, 12, num_rows)).round(3),
        "time_signature": rng.choice([3, 4, 4, 4, 5], size=num_rows),
        "Class": label,
    }
    for i, name in enumerate(_UNIT_COLUMNS):
        columns[name] = units[:, i].round(4)
    duration_ms = rng.normal(200_000 + 8_000 * label, 30_000).clip(60_000, 600_000).round()
    # Like the real file: some classes written in minutes (the unit must not reach the model).
    in_minutes = (label % 4 == 0) & (duration_ms / 60_000 < MINUTES_THRESHOLD)
    columns["duration_in min/ms"] = np.where(in_minutes, (duration_ms / 60_000).round(6), duration_ms)

    table = pd.DataFrame(columns)
    for name, rate in (("Popularity", 0.03), ("key", 0.1), ("instrumentalness", 0.2)):
        table.loc[rng.random(num_rows) < rate, name] = np.nan
    # A few tracks appear twice with a second genre, as in the real data.
    repeats = table.sample(frac=0.05, random_state=seed).copy()
    repeats["Class"] = (repeats["Class"] + 1 + rng.integers(0, num_classes - 1, len(repeats))) % num_classes
    table = pd.concat([table, repeats]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return table[list(GENRE_COLUMNS)]


def write_genre_demo_csv(path: str | Path, num_rows: int = 3000, seed: int = 0) -> Path:
    """Write the synthetic table as a CSV with the Kaggle header (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    make_genre_table(num_rows=num_rows, seed=seed).to_csv(tmp, index=False)
    tmp.replace(path)
    return path
