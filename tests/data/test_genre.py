"""Schema checks, the duration-unit fix and the split by song."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keras_music.data.demo import make_genre_table
from keras_music.data.genre import (
    GenreDataError,
    duration_to_ms,
    load_class_names,
    load_genre_csv,
    song_keys,
    split_by_song,
)


def write(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def raw_table():
    return make_genre_table(num_rows=40, seed=3)


def test_missing_column_is_named(tmp_path, raw_table):
    path = write(tmp_path, raw_table.drop(columns=["energy"]))
    with pytest.raises(GenreDataError, match=r"missing column\(s\) \['energy'\]"):
        load_genre_csv(path)


def test_extra_column_is_named(tmp_path, raw_table):
    path = write(tmp_path, raw_table.assign(lyrics="la la"))
    with pytest.raises(GenreDataError, match=r"unexpected column\(s\) \['lyrics'\]"):
        load_genre_csv(path)


def test_bad_value_names_column_line_and_value(tmp_path, raw_table):
    raw_table = raw_table.astype({"tempo": object})
    raw_table.loc[2, "tempo"] = "fast"
    path = write(tmp_path, raw_table)
    with pytest.raises(GenreDataError, match=r"column 'tempo', line 4: value 'fast' is not a finite number"):
        load_genre_csv(path)


def test_empty_value_in_required_column(tmp_path, raw_table):
    raw_table.loc[5, "loudness"] = np.nan
    with pytest.raises(GenreDataError, match=r"column 'loudness', line 7: .*may not be empty"):
        load_genre_csv(write(tmp_path, raw_table))


def test_unknown_class_id(tmp_path, raw_table):
    raw_table.loc[0, "Class"] = 11
    with pytest.raises(GenreDataError, match=r"column 'Class', line 2: unknown class id '11'; .*0\.\.10"):
        load_genre_csv(write(tmp_path, raw_table))


def test_category_out_of_range(tmp_path, raw_table):
    raw_table.loc[1, "mode"] = 2
    with pytest.raises(GenreDataError, match=r"column 'mode', line 3: value 2\.0 is not one of \[0\.0, 1\.0\]"):
        load_genre_csv(write(tmp_path, raw_table))


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_genre_csv(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(GenreDataError, match="empty"):
        load_genre_csv(empty)


def test_duration_to_ms_converts_minutes_and_rounds():
    out = duration_to_ms(np.array([3.105783333, 2.7204, 234596.0, 29.9]))
    np.testing.assert_array_equal(out, [186347.0, 163224.0, 234596.0, 1794000.0])


def test_demo_table_goes_through_cleaning(demo_frame):
    assert "duration_ms" in demo_frame and "duration_in min/ms" not in demo_frame
    assert demo_frame["duration_ms"].min() > 30_000
    assert demo_frame[["popularity", "key", "instrumentalness"]].isna().any().all()


def test_class_names_are_packaged():
    names = load_class_names()
    assert len(names) == 11 and names[0] == "Acoustic/Folk" and names[10] == "Rock"


def test_split_keeps_every_song_on_one_side(demo_frame):
    split = split_by_song(demo_frame, 0, 0.1, 0.1)
    keys = song_keys(demo_frame)
    parts = [set(keys.iloc[rows]) for rows in (split.train, split.validation, split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, (split.train, split.validation, split.test))) == len(demo_frame)
    again = split_by_song(demo_frame, 0, 0.1, 0.1)
    np.testing.assert_array_equal(split.test, again.test)
    assert not np.array_equal(split.test, split_by_song(demo_frame, 1, 0.1, 0.1).test)


def test_split_rejects_bad_fractions(demo_frame):
    with pytest.raises(ValueError, match="below 1"):
        split_by_song(demo_frame, 0, 0.5, 0.5)


# --- the real Kaggle file (../shared) ---------------------------------------------------

def test_real_file_loads_with_documented_quirks(genre_csv):
    frame = load_genre_csv(genre_csv)
    assert len(frame) == 15_282
    assert frame[["popularity", "key", "instrumentalness"]].isna().sum().tolist() == [358, 1684, 3753]
    assert (frame["key"] != 0).all()
    # One unit: every duration is whole milliseconds of a plausible song length, so the
    # original unit (which leaks the class) cannot be read back from the value.
    assert (frame["duration_ms"] == frame["duration_ms"].round()).all()
    assert frame["duration_ms"].min() > 10_000


def test_real_split_has_no_song_on_both_sides(genre_csv):
    frame = load_genre_csv(genre_csv)
    split = split_by_song(frame, 0, 0.1, 0.1)
    keys = song_keys(frame)
    train, test = set(keys.iloc[split.train]), set(keys.iloc[split.test])
    assert not train & test and not set(keys.iloc[split.validation]) & (train | test)
    # Tracks with several labels exist and stay whole.
    multi = frame.groupby(keys)["label"].nunique()
    assert (multi > 1).sum() > 1000
