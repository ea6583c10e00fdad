"""Table encoders: NaN filling with flags, category codes, OOV dropout, piecewise-linear bins."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.data.genre import fit_genre_preprocessing
from keras_music.models import table_layers
from keras_music.models.table_layers import CategoryCodes, NanImputer, PiecewiseLinearEncoding, RandomOOV
from tests.models.conftest import registered_in


def test_registered_names_are_the_ones_saved_models_hold():
    assert registered_in(table_layers) == {
        "keras_music>NanImputer", "keras_music>CategoryCodes", "keras_music>RandomOOV",
        "keras_music>PiecewiseLinearEncoding"}


@pytest.mark.parametrize("layer", [
    NanImputer([1.0, 2.0], [True, False]),
    CategoryCodes(0),
    RandomOOV(0.3, oov_index=2, seed=1),
    PiecewiseLinearEncoding([0.0, 0.5, 2.0]),
])
def test_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_nan_imputer_fills_each_column_with_its_value_and_flags_the_gaps():
    x = np.array([[np.nan, 5.0, np.nan], [1.0, np.nan, 0.0]], "float32")
    out = np.asarray(NanImputer([9.0, 7.0, -3.0], [True, False, True])(x))
    np.testing.assert_array_equal(out, [[9, 5, -3, 1, 1], [1, 7, 0, 0, 0]])
    np.testing.assert_array_equal(NanImputer([9.0, 7.0, -3.0])(x), [[9, 5, -3], [1, 7, 0]])
    symbolic = NanImputer([9.0, 7.0, -3.0], [True, False, True])(keras.Input((3,)))
    assert symbolic.shape == (None, 5)
    with pytest.raises(ValueError, match="one flag per column"):
        NanImputer([1.0, 2.0], [True])


def test_nan_imputer_fills_with_the_values_adapted_on_the_training_rows(demo_frame):
    """The genre builder adapts the fill values (medians of the training split); NaN takes them."""
    stats = fit_genre_preprocessing(demo_frame, "seed", 4)
    column = stats["numeric"].index("instrumentalness")
    imputer = NanImputer(stats["fill_values"])
    x = np.full((1, len(stats["numeric"])), np.nan, "float32")
    filled = np.asarray(imputer(x))[0]
    assert filled[column] == pytest.approx(np.nanmedian(demo_frame["instrumentalness"]))
    np.testing.assert_allclose(filled, stats["fill_values"], rtol=1e-6)


def test_category_codes_round_and_give_missing_its_own_code():
    out = CategoryCodes(12)(np.array([[np.nan], [3.0], [2.6], [0.0]], "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "int64"
    np.testing.assert_array_equal(out, [[12], [3], [3], [0]])
    assert CategoryCodes(12)(keras.Input((1,))).dtype == "int64"


def test_random_oov_drops_ids_to_the_oov_index_in_training_only():
    ids = np.arange(1, 2001).reshape(-1, 1)
    dropped = np.asarray(RandomOOV(0.3, oov_index=0, seed=0)(ids, training=True))
    replaced = dropped != ids
    assert 0.25 < replaced.mean() < 0.35
    assert np.all(dropped[replaced] == 0) and np.all(dropped[~replaced] == ids[~replaced])
    again = np.asarray(RandomOOV(0.3, oov_index=0, seed=0)(ids, training=True))
    np.testing.assert_array_equal(again, dropped)  # a seeded layer draws the same
    to_minus_one = np.asarray(RandomOOV(0.5, oov_index=-1, seed=0)(ids, training=True))
    assert set(np.unique(to_minus_one[to_minus_one != ids])) == {-1}
    np.testing.assert_array_equal(RandomOOV(0.3, seed=0)(ids, training=False), ids)
    np.testing.assert_array_equal(RandomOOV(0.3, seed=0)(ids), ids)
    np.testing.assert_array_equal(RandomOOV(0.0, seed=0)(ids, training=True), ids)
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError, match="rate"):
            RandomOOV(rate)


def test_piecewise_linear_encoding_is_a_thermometer_over_the_bins():
    encode = PiecewiseLinearEncoding([0.0, 1.0, 3.0, 4.0])
    x = np.array([[-1.0], [0.0], [0.5], [1.0], [2.0], [3.0], [4.0], [9.0]], "float32")
    out = np.asarray(encode(x))
    assert out.shape == (8, 3)
    np.testing.assert_allclose(out, [
        [0, 0, 0],      # below the first edge
        [0, 0, 0],      # at the first edge
        [0.5, 0, 0],
        [1, 0, 0],      # at an inner edge: that bin full, the next empty
        [1, 0.5, 0],
        [1, 1, 0],
        [1, 1, 1],      # at the last edge
        [1, 1, 1],      # above it
    ], atol=1e-6)
    assert encode(keras.Input((1,))).shape == (None, 3)
    for edges in ([1.0], [0.0, 0.0, 1.0], [2.0, 1.0]):
        with pytest.raises(ValueError, match="strictly increasing"):
            PiecewiseLinearEncoding(edges)


def test_a_saved_model_with_the_table_layers_reloads_with_the_same_outputs(save_and_load):
    numbers = keras.Input((2,), name="numbers")
    tempo = keras.Input((1,), name="tempo")
    category = keras.Input((1,), name="category")
    filled = NanImputer([0.5, -1.0], [True, False], name="impute")(numbers)
    bins = PiecewiseLinearEncoding([-1.0, 0.0, 2.0], name="bins")(tempo)
    codes = RandomOOV(0.2, seed=1, name="oov")(CategoryCodes(0, name="codes")(category))
    embedded = keras.layers.Flatten()(keras.layers.Embedding(8, 2, name="embed")(codes))
    model = keras.Model({"numbers": numbers, "tempo": tempo, "category": category},
                        keras.layers.Concatenate()([filled, bins, embedded]), name="table")
    data = {"numbers": np.array([[np.nan, 1.0], [1.5, np.nan], [-0.5, 0.0]], "float32"),
            "tempo": np.array([[-2.0], [0.0], [1.0]], "float32"),
            "category": np.array([[np.nan], [3.0], [5.0]], "float32")}
    expected = model.predict(data, verbose=0)
    for pre_split in (False, True):
        reloaded = save_and_load(model, pre_split=pre_split)
        assert {"NanImputer", "PiecewiseLinearEncoding", "CategoryCodes", "RandomOOV"} <= {
            type(layer).__name__ for layer in reloaded.layers}
        np.testing.assert_array_equal(reloaded.predict(data, verbose=0), expected)
