"""TabM ensemble layers: random-sign initialiser, member views, per-member heads, their mean."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_music.models import ensemble_layers
from keras_music.models.ensemble_layers import EnsembleDense, EnsembleInput, MemberMean, RandomSigns
from tests.models.conftest import registered_in


def test_registered_names_are_the_ones_saved_models_hold():
    assert registered_in(ensemble_layers) == {
        "keras_music>RandomSigns", "keras_music>EnsembleInput", "keras_music>EnsembleDense",
        "keras_music>MemberMean"}


@pytest.mark.parametrize("layer", [EnsembleInput(4), EnsembleDense(3), MemberMean()])
def test_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_random_signs_are_plus_or_minus_one_evenly_and_seeded():
    signs = np.asarray(RandomSigns(seed=3)((200, 50)))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert 0.45 < float(np.mean(signs > 0)) < 0.55
    np.testing.assert_array_equal(np.asarray(RandomSigns(seed=3)((200, 50))), signs)
    assert RandomSigns.from_config(RandomSigns(seed=3).get_config()).seed == 3


def test_ensemble_input_gives_each_member_its_own_scaled_copy():
    x = np.arange(1, 7, dtype="float32").reshape(2, 3)
    layer = EnsembleInput(4)
    out = np.asarray(layer(x))
    scale = np.asarray(layer.scale)
    assert out.shape == (2, 4, 3) and scale.shape == (4, 3)
    assert set(np.unique(scale)) <= {-1.0, 1.0}  # initialised to random signs
    for member in range(4):
        np.testing.assert_array_equal(out[:, member], x * scale[member])
    assert EnsembleInput(4)(keras.Input((3,))).shape == (None, 4, 3)


def test_ensemble_dense_members_are_independent_heads():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 4)).astype("float32")
    layer = EnsembleDense(2)
    out = np.asarray(layer(x))
    kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
    assert out.shape == (5, 3, 2) and kernel.shape == (3, 4, 2) and bias.shape == (3, 2)
    assert not np.allclose(kernel[0], kernel[1])  # each member its own weights
    assert np.all(np.abs(kernel) <= (6.0 / (4 + 2)) ** 0.5)  # Glorot uniform per member
    for member in range(3):
        np.testing.assert_allclose(out[:, member], x[:, member] @ kernel[member] + bias[member], rtol=1e-5, atol=1e-6)
    # Changing member 0's input changes member 0's output only...
    changed = x.copy()
    changed[:, 0] += 10.0
    moved = np.asarray(layer(changed))
    assert not np.allclose(moved[:, 0], out[:, 0])
    np.testing.assert_array_equal(moved[:, 1:], out[:, 1:])
    # ...and member 0's loss trains member 0's weights only.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x)[:, 0])
    gradient = np.asarray(tape.gradient(loss, layer.kernel))
    assert np.any(gradient[0] != 0) and np.all(gradient[1:] == 0)
    assert EnsembleDense(2)(keras.Input((3, 4))).shape == (None, 3, 2)


def test_member_mean_averages_over_the_member_axis():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_allclose(MemberMean()(x), x.mean(axis=1))
    np.testing.assert_allclose(MemberMean()(x[:, :, 0]), x[:, :, 0].mean(axis=1))
    assert MemberMean()(keras.Input((3, 4))).shape == (None, 4)


def test_a_saved_model_with_the_ensemble_layers_reloads_with_the_same_outputs(save_and_load):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="features")
    members = EnsembleInput(3, name="member_views")(inputs)
    hidden = keras.layers.Dense(5, kernel_initializer=RandomSigns(seed=1), name="shared")(members)
    outputs = MemberMean(name="mean")(EnsembleDense(2, name="heads")(hidden))
    model = keras.Model(inputs, outputs, name="ensemble")
    x = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    expected = model.predict(x, verbose=0)
    for pre_split in (False, True):
        reloaded = save_and_load(model, pre_split=pre_split)
        assert {"EnsembleInput", "EnsembleDense", "MemberMean"} <= {type(layer).__name__ for layer in reloaded.layers}
        assert isinstance(reloaded.get_layer("shared").kernel_initializer, RandomSigns)
        np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
