"""Compiling: the taggers' optimizer, masked loss and per-tag metrics; optimizer slots made at compile."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.losses import MaskedBinaryCrossentropy
from keras_music.models.compile import build_optimizer, compile_tagger

TAGS = ["happy", "sad"]


def tagger():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(len(TAGS))(keras.layers.Dense(4)(inputs)))


def test_compile_tagger_uses_adam_masked_bce_on_logits_and_builds_the_slots():
    model = tagger()
    assert compile_tagger(model, TAGS, learning_rate=2e-3) is model
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-3)
    assert isinstance(model.loss, MaskedBinaryCrossentropy) and model.loss.from_logits
    assert model.optimizer.built  # before any training step
    assert len(model.optimizer.variables) > 1


def test_compile_tagger_reports_per_tag_metrics_and_masks_unknown_labels():
    model = compile_tagger(tagger(), TAGS, learning_rate=1e-3)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 2, (8, 2)).astype("float32")
    known = np.ones_like(y)
    result = model.evaluate(x, y, sample_weight=known, verbose=0, return_dict=True)
    assert {"loss", "macro_auc", "auc_happy", "auc_sad", "accuracy_happy"} <= set(result)
    # A label marked unknown (weight 0) does not count: flipping it leaves the loss as it was.
    unknown = known.copy()
    unknown[0, 0] = 0.0
    flipped = y.copy()
    flipped[0, 0] = 1.0 - flipped[0, 0]
    first = model.evaluate(x, y, sample_weight=unknown, verbose=0, return_dict=True)["loss"]
    second = model.evaluate(x, flipped, sample_weight=unknown, verbose=0, return_dict=True)["loss"]
    assert first == pytest.approx(second)


def test_compile_tagger_shares_a_given_optimizer():
    shared = keras.optimizers.Adam(5e-4)
    model = compile_tagger(tagger(), TAGS, learning_rate=1.0, optimizer=shared)
    assert model.optimizer is shared and float(shared.learning_rate) == pytest.approx(5e-4)


def test_build_optimizer_makes_the_slots_once_before_the_first_step():
    model = tagger()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    assert not model.optimizer.built
    assert build_optimizer(model) is model and model.optimizer.built
    slots = list(model.optimizer.variables)
    build_optimizer(model)
    assert model.optimizer.variables == slots
    model.fit(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    assert len(model.optimizer.variables) == len(slots)  # the first step made none of its own


def test_build_optimizer_makes_slots_for_trainable_weights_only():
    model = tagger()
    model.layers[1].trainable = False  # set before compiling, as Keras expects
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    build_optimizer(model)
    slot_shapes = [tuple(v.shape) for v in model.optimizer.variables]
    assert slot_shapes.count((3, 4)) == 0  # the frozen Dense: no slots
    assert slot_shapes.count((4, 2)) == 2  # the trainable one: Adam's two moments
