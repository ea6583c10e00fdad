"""Checks every registered model family gets for free: a new entry in
`keras_music.models.registry` is built, trained one step, saved and reloaded here, its
hyperparameters round-trip, and sequence families are checked for padding invariance."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_music.config import RECIPES, TrainingConfig, config_from_dict, config_to_dict
from keras_music.hparams import configs_from_hparams, default_hparams, load_space
from keras_music.models.family import embedding_model
from keras_music.models.registry import REGISTRY, family_for_config, get_family

TAGS = ["happy", "sad", "calm"]
SEQUENCE_INPUTS = {"mel": 16, "mfcc": 6}


def variants(family):
    return ("default", "seed") if family.has_variants else ("default",)


CASES = [(name, variant) for name, family in REGISTRY.items() for variant in variants(family)]


def small_config(family, variant):
    """The family's defaults with every width field shrunk (fast), and the variant."""
    config = family.config(variant=variant) if family.has_variants else family.config()
    small = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name.endswith("_units") and isinstance(value, int):
            small[field.name] = 8
        elif field.name in ("hidden_units", "conv_channels"):
            small[field.name] = (8,) * len(value)
        elif field.name == "window_frames":
            small[field.name] = 24
        elif field.name == "ensemble_size":
            small[field.name] = 1
    return dataclasses.replace(config, **small)


def sequence_inputs_of(family) -> dict[str, int]:
    """The named inputs a sequence family takes: its recipe's features (pretrained front ends), else any."""
    return RECIPES[family.recipe].feature_dims if family.recipe else SEQUENCE_INPUTS


def sequence_batch(lengths, frames, features=SEQUENCE_INPUTS):
    rng = np.random.default_rng(1)
    batch = {}
    for name, width in features.items():
        values = rng.normal(0, 10, (len(lengths), frames, width)).astype("float32")
        for i, n in enumerate(lengths):  # right padding with zeros, as the pipeline makes it
            values[i, n:] = 0
        batch[name] = values
    batch["length"] = np.asarray(lengths, "int32")
    return batch


def built(name, variant, demo_frame):
    """`(model, inputs, targets, weights)`: a small model of the family and a batch it takes."""
    family = REGISTRY[name]
    config = small_config(family, variant)
    keras.utils.set_random_seed(0)
    if family.inputs == "table":
        from keras_music.data.genre import fit_genre_preprocessing, genre_dataset

        preprocessing = fit_genre_preprocessing(demo_frame, config.feature_set, config.numeric_bins)
        model = family.build(config, preprocessing, 11)
        inputs, targets = next(iter(genre_dataset(demo_frame.head(16), config.feature_set, 16, num_classes=11)))
        return model, inputs, targets, None
    if family.inputs == "clip_vector":
        inputs = {"features": np.random.default_rng(0).normal(size=(8, 10)).astype("float32")}
        stats = {"features_mean": np.zeros(10), "features_std": np.ones(10)}
        model = family.build(config, TAGS, {"features": 10}, stats)
    else:
        features = sequence_inputs_of(family)
        inputs = sequence_batch([30, 41, 24, 35], 41, features)
        stats = {f"{n}_{k}": [0.0 if k == "mean" else 10.0] * w for n, w in features.items()
                 for k in ("mean", "std")}
        model = family.build(config, TAGS, features, stats)
    rows = len(next(iter(inputs.values())))
    targets = np.random.default_rng(2).integers(0, 2, (rows, len(TAGS))).astype("float32")
    weights = np.random.default_rng(3).integers(0, 2, (rows, len(TAGS))).astype("float32")
    return model, inputs, targets, weights


@pytest.mark.parametrize("name, variant", CASES)
def test_trains_one_step_and_save_load_is_identical(name, variant, demo_frame, tmp_path):
    model, inputs, targets, weights = built(name, variant, demo_frame)
    trained = model
    if REGISTRY[name].inputs == "table":  # what fit trains: an ensemble's members view (same layers)
        from keras_music.models.genre_mlp import training_model

        trained = training_model(model, small_config(REGISTRY[name], variant))
    traces, train_step = [], trained.train_step
    trained.train_step = lambda data: (traces.append(1), train_step(data))[1]  # runs once per trace
    logs = trained.train_on_batch(inputs, targets, sample_weight=weights, return_dict=True)
    assert np.isfinite(logs["loss"])
    # The optimizer's slots exist before the first step (`build_optimizer`), so its graph is traced once.
    assert len(traces) == 1
    if REGISTRY[name].task == "emotion":
        assert "auc_happy" in logs and "macro_auc" in logs  # per-tag masked metrics
    expected = model.predict(inputs, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")  # no custom_objects needed
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize("name, variant", [c for c in CASES if REGISTRY[c[0]].inputs == "sequences"])
def test_padding_never_changes_the_output(name, variant, demo_frame):
    model, inputs, _, _ = built(name, variant, demo_frame)
    logits = model.predict(inputs, verbose=0)
    padded = {k: (np.pad(v, ((0, 0), (0, 23), (0, 0))) if v.ndim == 3 else v) for k, v in inputs.items()}
    np.testing.assert_allclose(model.predict(padded, verbose=0), logits, atol=1e-5)


@pytest.mark.parametrize("name, variant", [c for c in CASES if REGISTRY[c[0]].task == "emotion"])
def test_every_tagger_has_an_embedding_that_its_logits_layer_maps_to_the_logits(name, variant, demo_frame, tmp_path):
    """The export's `embeddings` contract, on a saved and reloaded model (what export loads): the
    embedding is the input of the Dense named `logits`, so `embedding @ kernel + bias` is the output."""
    model, inputs, _, _ = built(name, variant, demo_frame)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    kernel, bias = restored.get_layer("logits").get_weights()
    embeddings = np.asarray(embedding_model(restored)(inputs, training=False))
    assert embeddings.shape == (len(next(iter(inputs.values()))), kernel.shape[0])
    np.testing.assert_allclose(embeddings @ kernel + bias, np.asarray(restored(inputs, training=False)), atol=1e-5)
    both = embedding_model(restored, with_logits=True)(inputs, training=False)
    np.testing.assert_allclose(np.asarray(both["embeddings"]), embeddings, atol=1e-6)


def test_a_model_without_a_logits_layer_has_no_embedding():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="scores")], name="other")
    with pytest.raises(ValueError, match="model 'other' has no layer named 'logits'"):
        embedding_model(model)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_config_and_hyperparameters_round_trip(name):
    family = REGISTRY[name]
    config, training = family.config(), TrainingConfig()
    assert config_from_dict(family.config, json.loads(json.dumps(config_to_dict(config)))) == config
    assert family_for_config(config) is family
    values = default_hparams(family, config, training)
    assert set(values) == set(family.space) == set(load_space(family))
    assert configs_from_hparams(family, values, config, training) == (config, training)


def test_names_resolve_and_mismatches_are_named():
    assert get_family("mlp", "genre").name == "genre_mlp" and get_family("mlp", "emotion").name == "tag_mlp"
    assert get_family(None, "emotion").name == "cnn_lstm"
    with pytest.raises(ValueError, match="model='cnn_lstm': does not fit task=genre"):
        get_family("cnn_lstm", "genre")
    with pytest.raises(ValueError, match="model='transformer': unknown model"):
        get_family("transformer")


@pytest.mark.parametrize("name", [n for n, f in REGISTRY.items() if f.recipe])
def test_pretrained_front_ends_refuse_other_features_by_name(name):
    family = REGISTRY[name]
    with pytest.raises(ValueError, match=f"{name} takes"):
        family.build(family.config(), TAGS, SEQUENCE_INPUTS, None)
    family.check_recipe(RECIPES[family.recipe], "store")
    with pytest.raises(ValueError, match=f"store: {name} needs features of the '{family.recipe}' recipe.*n_mels=64"):
        family.check_recipe(RECIPES["4q"], "store")
    with pytest.raises(ValueError, match="found no recipe"):
        family.check_recipe(None, "cal500")
