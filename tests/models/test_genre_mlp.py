"""The genre MLP: in-model preprocessing, shapes, one training step, save -> load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.data.genre import feature_columns, fit_genre_preprocessing, genre_dataset
from keras_music.models.genre_mlp import GenreMLPConfig, build_genre_mlp


def small_model(frame, feature_set):
    config = GenreMLPConfig(feature_set=feature_set, hidden_units=(16,))
    return build_genre_mlp(config, fit_genre_preprocessing(frame, config.feature_set, config.numeric_bins), num_classes=11)


@pytest.mark.parametrize("feature_set", ["seed", "full"])
def test_inputs_are_raw_columns_and_output_is_a_distribution(demo_frame, feature_set):
    model = small_model(demo_frame, feature_set)
    assert sorted(model.input) == sorted(feature_columns(feature_set))
    # The raw mixed-unit column never reaches the model; the track name is never a feature.
    assert "track_name" not in model.input and "duration_in min/ms" not in model.input
    assert ("artist_name" in model.input) == (feature_set == "full")
    probabilities = model.predict(genre_dataset(demo_frame.head(7), feature_set, 4), verbose=0)
    assert probabilities.shape == (7, 11)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_preprocessing_is_adapted_on_training_rows_only(demo_frame):
    train = demo_frame.iloc[:300]
    stats = fit_genre_preprocessing(train, "full", 4)
    i = stats["numeric"].index("instrumentalness")
    assert stats["fill_values"][i] == pytest.approx(np.nanmedian(train["instrumentalness"]))
    assert stats["fill_values"][i] != pytest.approx(np.nanmedian(demo_frame["instrumentalness"].iloc[300:]))
    assert set(stats["artists"]) == set(train["artist_name"])
    assert 0 in stats["categories"]["key"], "an empty key is a category of its own"
    edges = stats["bin_edges"][stats["numeric"].index("tempo")]
    np.testing.assert_allclose(edges, np.quantile(train["tempo"], [0, 0.25, 0.5, 0.75, 1]), atol=1e-5)


def test_missing_values_and_unseen_artist_give_finite_outputs(demo_frame):
    model = small_model(demo_frame, "full")
    rows = demo_frame.head(3).copy()
    rows[["popularity", "key", "instrumentalness"]] = np.nan
    rows["artist_name"] = "An Artist Never Seen Before"
    probabilities = model.predict(genre_dataset(rows, "full", 3), verbose=0)
    assert np.isfinite(probabilities).all()


def test_one_training_step_lowers_the_loss(demo_frame):
    keras.utils.set_random_seed(0)
    model = small_model(demo_frame, "full")
    data = genre_dataset(demo_frame, "full", len(demo_frame), num_classes=11)
    x, y = next(iter(data))
    before = model.evaluate(x, y, verbose=0)[0]
    for _ in range(5):
        model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_save_and_load_give_identical_predictions(demo_frame, tmp_path):
    model = small_model(demo_frame, "full")
    data = genre_dataset(demo_frame.head(50), "full", 16)
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored.predict(data, verbose=0), expected)


def test_mismatched_preprocessing_is_refused(demo_frame):
    with pytest.raises(ValueError, match="refit"):
        build_genre_mlp(GenreMLPConfig(feature_set="full"),
                        fit_genre_preprocessing(demo_frame, "seed", 16), 11)


def test_heads_train_together_and_the_saved_model_outputs_their_mean(demo_frame, tmp_path):
    """TabM-style heads: every member has its own input scale (random signs) and output layer,
    shares the hidden layers, learns under its own loss; the one saved model takes raw columns
    and outputs the mean of the members' probabilities."""
    from keras_music.models.genre_mlp import MEMBERS_LAYER, training_model

    keras.utils.set_random_seed(0)
    config = GenreMLPConfig(feature_set="full", hidden_units=(16,), heads=4)
    model = build_genre_mlp(config, fit_genre_preprocessing(demo_frame, "full", 4), num_classes=11)
    scale = np.asarray(model.get_layer("member_views").scale)
    assert scale.shape[0] == 4 and set(np.unique(scale)) == {-1.0, 1.0}
    assert model.get_layer("hidden_dense_0").kernel.shape == (scale.shape[1], 16)  # shared by the members
    assert model.get_layer("deep_logits").kernel.shape == (4, 16, 11)  # one output layer each
    data = genre_dataset(demo_frame, "full", len(demo_frame), num_classes=11)
    x, y = next(iter(data))
    trainer = training_model(model, config)
    members = trainer.predict(x, verbose=0)
    assert members.shape == (len(demo_frame), 4, 11) and not np.allclose(members[:, 0], members[:, 1])
    np.testing.assert_allclose(model.predict(x, verbose=0), members.mean(axis=1), rtol=1e-5, atol=1e-6)
    before = trainer.evaluate(x, y, verbose=0, return_dict=True)
    trainer.fit(x, y, epochs=5, verbose=0)
    after = trainer.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    assert after["accuracy"] == pytest.approx(
        float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == np.argmax(np.asarray(y), 1))))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert training_model(reloaded, config).get_layer(MEMBERS_LAYER).output.shape[1:] == (4, 11)
    with pytest.raises(ValueError, match="heads and ensemble_size must be at least 1"):
        GenreMLPConfig(heads=0)
