"""Builder helpers: MLP block, named sequence inputs, their normalisation and masking, recurrent head."""

from __future__ import annotations

import keras
import numpy as np

from keras_music.models.augmentation import SpecAugment
from keras_music.models.blocks import dense_block, normalised_inputs, recurrent_head, sequence_inputs

FEATURES = {"mel": 4, "mfcc": 2}
STATS = {"mel_mean": [1.0, 2.0, 3.0, 4.0], "mel_std": [2.0, 2.0, 4.0, 4.0], "mfcc_mean": [0.0, -1.0],
         "mfcc_std": [1.0, 0.5]}


def test_dense_block_stacks_relu_layers_with_dropout_and_l2():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, dense_block(inputs, (8, 4), 0.25, name="hidden", l2=1e-3))
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["hidden_dense_0", "hidden_dropout_0", "hidden_dense_1", "hidden_dropout_1"]
    first = model.get_layer("hidden_dense_0")
    assert first.units == 8 and first.activation is keras.activations.relu
    assert abs(float(first.kernel_regularizer.l2) - 1e-3) < 1e-9
    assert model.get_layer("hidden_dropout_1").rate == 0.25
    assert model.output.shape == (None, 4)
    bare = keras.Model(inputs, dense_block(inputs, (5,), 0.0, name="plain"))
    assert [layer.name for layer in bare.layers[1:]] == ["plain_dense_0"]
    assert bare.get_layer("plain_dense_0").kernel_regularizer is None
    assert dense_block(inputs, (), 0.5, name="none") is inputs


def test_sequence_inputs_are_one_per_feature_and_the_length():
    inputs = sequence_inputs(FEATURES)
    assert list(inputs) == ["mel", "mfcc", "length"]
    assert inputs["mel"].shape == (None, None, 4) and inputs["mfcc"].shape == (None, None, 2)
    assert inputs["length"].shape == (None,) and inputs["length"].dtype == "int32"


def normalised_model(stats, min_frames=1, spec_augment=0.0):
    inputs = sequence_inputs(FEATURES)
    features, mask = normalised_inputs(inputs, stats, min_frames=min_frames, spec_augment=spec_augment)
    return keras.Model(inputs, {**features, "mask": mask})


def batch(lengths, frames):
    rng = np.random.default_rng(0)
    data = {name: rng.normal(3, 2, (len(lengths), frames, width)).astype("float32") for name, width in FEATURES.items()}
    for i, n in enumerate(lengths):
        for name in FEATURES:
            data[name][i, n:] = 0
    return {**data, "length": np.asarray(lengths, "int32")}


def test_normalised_inputs_standardise_real_frames_and_zero_the_padding():
    data = batch([5, 2], 5)
    out = normalised_model(STATS)(data)
    mel = np.asarray(out["mel"])
    expected = (data["mel"] - np.array(STATS["mel_mean"])) / np.array(STATS["mel_std"])
    np.testing.assert_allclose(mel[0], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mel[1, :2], expected[1, :2], rtol=1e-5, atol=1e-5)
    assert np.all(mel[1, 2:] == 0)  # the standardised padding would be -mean/std, not 0
    np.testing.assert_array_equal(out["mask"], [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    raw = normalised_model(None)(data)  # the seed variant: no statistics, no standardisation
    np.testing.assert_array_equal(np.asarray(raw["mfcc"]), data["mfcc"])


def test_normalised_inputs_pad_short_clips_to_min_frames():
    model = normalised_model(STATS, min_frames=6)
    assert {"mel_min_frames", "mfcc_min_frames", "frame_mask", "mel_standardise", "mel_zero_padding"} <= {
        layer.name for layer in model.layers}
    out = model(batch([3, 1], 3))
    assert out["mel"].shape == (2, 6, 4) and out["mask"].shape == (2, 6)
    assert np.all(np.asarray(out["mel"])[:, 3:] == 0)


def test_normalised_inputs_mask_spans_while_training_with_spec_augment():
    model = normalised_model(STATS, spec_augment=0.3)
    assert isinstance(model.get_layer("spec_augment"), SpecAugment)
    assert model.get_layer("spec_augment").fraction == 0.3
    assert "spec_augment" not in {layer.name for layer in normalised_model(STATS).layers}
    data = batch([20, 20], 20)
    keras.utils.set_random_seed(0)
    inference = np.asarray(model(data, training=False)["mel"])
    np.testing.assert_array_equal(inference, np.asarray(normalised_model(STATS)(data)["mel"]))
    assert np.sum(np.asarray(model(data, training=True)["mel"]) == 0) > np.sum(inference == 0)


def test_recurrent_head_gives_one_logit_per_tag_and_ignores_padding():
    keras.utils.set_random_seed(0)
    inputs = sequence_inputs(FEATURES)
    features, mask = normalised_inputs(inputs, STATS)
    frames = keras.layers.Concatenate()(list(features.values()))
    model = keras.Model(inputs, recurrent_head(frames, mask, lstm_units=6, head_units=5, dropout=0.1, num_tags=3))
    assert {"lstm", "max_over_time", "head_dense", "head_dropout", "logits"} <= {layer.name for layer in model.layers}
    assert model.get_layer("lstm").units == 6 and model.get_layer("head_dense").units == 5
    assert model.output.shape == (None, 3)
    short = batch([4, 2], 4)
    long = batch([4, 2], 9)  # same real frames, more padding
    for name in FEATURES:
        long[name][:, :4] = short[name]
    np.testing.assert_allclose(model(long), model(short), atol=1e-5)
    no_dropout = keras.Model(inputs, recurrent_head(frames, mask, 6, 5, 0.0, 3))
    assert "head_dropout" not in {layer.name for layer in no_dropout.layers}
