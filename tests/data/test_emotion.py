"""`load_emotion_data`: aliases, then the one reader of READERS that recognises the folder."""

from __future__ import annotations

import numpy as np
import pytest

from keras_music.data.emotion import READERS, load_emotion_data


def npz_folder(root, with_recipe=False):
    (root / "features").mkdir(parents=True)
    for i in range(4):
        np.savez(root / "features" / f"c{i}.npz", mel=np.zeros((6, 8), "float32"), mfcc=np.ones((6, 3), "float32"))
    (root / "labels.csv").write_text("clip_id,quadrant\n" + "".join(f"c{i},Q{1 + i % 2}\n" for i in range(4)))
    if with_recipe:  # an npz folder may say how it was computed; it is still an npz folder, not a store
        (root / "recipe.json").write_text('{"n_mels": 8, "n_mfcc": 3}')
    return root


@pytest.mark.parametrize("with_recipe", [False, True])
def test_npz_folder_gives_named_feature_sizes(tmp_path, with_recipe):
    emotion = load_emotion_data(str(npz_folder(tmp_path / "clips", with_recipe)))
    assert emotion.feature_dims == {"mel": 8, "mfcc": 3}
    vectors = emotion.clip_vectors(["c0", "c1"])  # mean then std over time, mel then mfcc
    np.testing.assert_array_equal(vectors[0], [0] * 8 + [1] * 3 + [0] * 11)


def test_a_folder_no_reader_recognises_lists_the_accepted_layouts(tmp_path):
    with pytest.raises(ValueError, match="none of the accepted layouts") as error:
        load_emotion_data(str(tmp_path))
    for reader in READERS:
        assert reader.layout in str(error.value)
    with pytest.raises(FileNotFoundError, match="does not exist.*'demo', 'mer4q', 'cal500'"):
        load_emotion_data(str(tmp_path / "nowhere"))


def test_cal500_has_no_sequence_features(cal500_labels):
    emotion = load_emotion_data("cal500")
    assert emotion.feature_dims == {} and emotion.source is None


def test_store_with_4q_style_labels_keeps_artist_groups_and_quadrant_tags(small_emotion_store, small_4q_labels,
                                                                           tmp_path):
    """A store extracted from a labelled folder's audio, with that folder's labels.csv: tags and
    artist groups as the folder itself gives them (metadata.csv beside the labels)."""
    emotion = load_emotion_data(str(small_emotion_store), labels=str(small_4q_labels))
    ids = emotion.tags.clip_ids
    assert emotion.tags.tags == ["quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4"]
    assert {emotion.groups[c] for c in ids[:10]} == {"artist:band"} and emotion.groups[ids[10]] == "artist:solo 10"
    alone = tmp_path / "labels.csv"  # no metadata.csv beside it: each clip its own group, as before
    alone.write_text(small_4q_labels.read_text())
    assert load_emotion_data(str(small_emotion_store), labels=str(alone)).groups[ids[0]] == ids[0]


def test_labels_are_refused_where_the_data_brings_its_own(tmp_path):
    """`labels=` reads a CSV only for a feature store; elsewhere it would be silently ignored and
    the run trained on other tags than the user asked for, so it is an error naming both (the
    parameters in the library, the flags in the CLI)."""
    from keras_music.errors import ParameterError

    with pytest.raises(ParameterError, match=r"labels='my\.csv': data='demo' brings its own labels") as error:
        load_emotion_data("demo", labels="my.csv")
    assert error.value.for_flags({"data": "--data", "labels": "--labels"}).startswith(
        "--labels 'my.csv': --data 'demo' brings its own labels")
    folder = str(npz_folder(tmp_path / "clips"))
    with pytest.raises(ValueError, match=r"is a folder with labels\.csv \+ features/\*\.npz, which brings its own"):
        load_emotion_data(folder, labels="my.csv")
    assert [reader.name for reader in READERS if reader.takes_labels] == ["store"]
