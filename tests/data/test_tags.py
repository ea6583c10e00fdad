"""Label construction: CAL500 emotion pairs, labels CSVs, 4Q folders, joins by id."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from keras_music.data.cal500 import emotion_pairs, load_cal500_emotions
from keras_music.data.mer4q import artist_group, load_mer4q, tags_from_csv
from keras_music.data.tags import TagTable, join_ids, slug


def test_cal500_construction_on_the_real_files(cal500_labels):
    table = load_cal500_emotions(cal500_labels)
    assert len(table.clip_ids) == 502 and len(table.tags) == 18
    assert int(table.mask.sum()) == 5007  # cells where X or NOT-X was agreed
    assert int((table.labels * table.mask).sum()) == 1978
    assert (table.labels <= table.mask).all(), "a positive cell is always known"
    assert table.counts()["happy"] == {"known": 270, "positive": 135}
    assert "angry_agressive" in table.tags and "laid_back_mellow" in table.tags


def test_emotion_pairs_need_both_sides():
    vocab = ["Emotion-Happy", "NOT-Emotion-Happy", "Emotion-Sad", "Genre-Rock"]
    assert emotion_pairs(vocab) == [("Emotion-Happy", 0, 1)]
    with pytest.raises(ValueError, match="no Emotion-X"):
        emotion_pairs(["Genre-Rock"])


def test_cal500_bad_matrix_names_the_line(tmp_path):
    (tmp_path / "songNames.txt").write_text("a-b\nc-d\n")
    (tmp_path / "vocab.txt").write_text("Emotion-Happy\nNOT-Emotion-Happy\n")
    (tmp_path / "hardAnnotations.txt").write_text("1,0\n1,x\n")
    with pytest.raises(ValueError, match="hardAnnotations.txt, line 2"):
        load_cal500_emotions(tmp_path)
    with pytest.raises(FileNotFoundError, match="songNames.txt"):
        load_cal500_emotions(tmp_path / "nowhere")


def test_labels_csv_binary_columns_keep_unknown_cells(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("clip_id,happy,mood\na,1,calm\nb,,tense\nc,0,calm\n")
    table = tags_from_csv(path)
    assert table.tags == ["happy", "mood_calm", "mood_tense"]
    np.testing.assert_array_equal(table.mask[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(table.labels[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(table.labels[:, 1:], [[1, 0], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"missing label column\(s\) \['arousal'\]"):
        tags_from_csv(path, columns=["arousal"])


def test_mer4q_folder(mer4q_dir):
    tags, clips, groups = load_mer4q(mer4q_dir)
    assert tags.tags == ["quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4"]
    assert len(tags.clip_ids) == 765 and tags.mask.all()
    np.testing.assert_array_equal(tags.labels.sum(axis=1), 1)  # exactly one quadrant each
    assert [c["positive"] for c in tags.counts().values()] == [192, 191, 191, 191]
    assert len(set(groups.values())) == 551  # artist groups, as the dataset README counts
    assert clips.clip_ids() == sorted(tags.clip_ids)
    features = clips.load("MT0013621344")  # the one 10 s clip
    mel, mfcc = features["mel"], features["mfcc"]
    assert mel.shape == (218, 64) and mfcc.shape == (218, 20) and mel.dtype == np.float32


def test_artist_group_normalisation():
    assert artist_group("Xavier Cugat & His Orchestra") == artist_group("xavier cugat") == "xavier cugat"
    assert artist_group("The Beatles") == "beatles"


def test_npz_with_nan_is_named(tmp_path):
    from keras_music.data.mer4q import NpzClips

    (tmp_path / "features").mkdir()
    np.savez(tmp_path / "features" / "x.npz", mel=np.full((3, 4), np.nan), mfcc=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"x\.npz: mel contains NaN"):
        NpzClips(tmp_path).load("x")


def test_join_reports_both_sides_by_name(caplog):
    table = TagTable(["a", "b", "c"], ["t"], np.ones((3, 1), "float32"), np.ones((3, 1), "float32"))
    with caplog.at_level(logging.WARNING):
        report = join_ids(table, ["b", "c", "z"])
    assert report.matched == ["b", "c"] and report.labels_only == ["a"] and report.features_only == ["z"]
    assert "labels but no features" in caplog.text and "a" in caplog.text and "z" in caplog.text


def test_slug():
    assert slug("Emotion-Laid-back_/_Mellow") == "laid_back_mellow"
    assert slug("NOT-Emotion-Happy") == "happy"


def test_cal500_aggregated_features(cal500_labels):
    from keras_music.data.cal500 import load_cal500_vectors

    vectors = load_cal500_vectors(cal500_labels.parent / "mulan_features.csv")
    table = load_cal500_emotions(cal500_labels)
    assert len(vectors) == 502 and set(vectors) == set(table.clip_ids)
    assert all(v.shape == (68,) and np.isfinite(v).all() for v in vectors.values())


def test_group_folds_test_every_group_once_and_never_split_one():
    from keras_music.data.splits import group_folds

    groups = [f"artist{i % 23}" for i in range(100)]
    folds = group_folds(groups, 5, seed=3, validation_fraction=0.15)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(100))  # every row tested exactly once
    for fold in folds:
        sides = [{groups[i] for i in part} for part in (fold.train, fold.validation, fold.test)]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert len(fold.train) + len(fold.validation) + len(fold.test) == 100
        assert len(sides[1]) == 3  # floor(23 * 0.15) validation artists
    assert [f.test.tolist() for f in group_folds(groups, 5, 3, 0.15)] == [f.test.tolist() for f in folds]
    with pytest.raises(ValueError, match="groups cannot make"):
        group_folds(["a", "b"], 3, 0, 0.1)


def test_group_folds_keep_every_4q_artist_on_one_side(mer4q_dir):
    """The 4Q artist-grouped folds: an artist is tested in one fold only, and early stopping's
    validation clips never share an artist with the fold's test clips."""
    from keras_music.data.splits import group_folds

    tags, _, groups = load_mer4q(mer4q_dir)
    artists = [groups[c] for c in tags.clip_ids]
    folds = group_folds(artists, 5, seed=0, validation_fraction=0.15)
    tested_in = {}
    for i, fold in enumerate(folds):
        train, validation, test = ({artists[j] for j in part} for part in (fold.train, fold.validation, fold.test))
        assert not (train & test or validation & test or train & validation)
        for artist in test:
            assert tested_in.setdefault(artist, i) == i
    assert len(tested_in) == 551 and sum(len(f.test) for f in folds) == 765


def test_stratified_folds_test_every_row_once_per_repeat_in_class_proportion():
    from keras_music.data.splits import stratified_folds

    classes = np.repeat(["q1", "q2", "q3", "q4"], [48, 47, 47, 49])
    folds = stratified_folds(classes, 10, seed=0, validation_fraction=0.15)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(classes)))
    for fold in folds:
        parts = [set(part.tolist()) for part in (fold.train, fold.validation, fold.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(parts[0]) + len(parts[1]) + len(parts[2]) == len(classes)
        for value, size in zip(["q1", "q2", "q3", "q4"], [48, 47, 47, 49]):
            assert np.sum(classes[fold.test] == value) in (size // 10, size // 10 + 1)  # stratified test
            assert np.sum(classes[fold.validation] == value) == int(size * 0.15)  # and validation
        assert abs(len(fold.test) - len(classes) / 10) < 1
    again = stratified_folds(classes, 10, seed=0, validation_fraction=0.15)
    assert all((a.test == b.test).all() and (a.validation == b.validation).all() for a, b in zip(folds, again))
    other = stratified_folds(classes, 10, seed=1, validation_fraction=0.15)  # the next repeat's folds
    assert any(set(a.test.tolist()) != set(b.test.tolist()) for a, b in zip(folds, other))
    with pytest.raises(ValueError, match="class 'q2' has 3 rows, fewer than the 5 folds"):
        stratified_folds(["q1"] * 6 + ["q2"] * 3, 5, 0, 0.1)
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        stratified_folds(classes, 2, 0, 0.5)
