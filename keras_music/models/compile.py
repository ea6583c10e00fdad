"""Compiling: the taggers' optimizer, masked loss and per-tag metrics, and optimizer slots made at
compile time rather than inside the first training step."""

from __future__ import annotations

import keras

from keras_music.losses import MaskedBinaryCrossentropy
from keras_music.metrics import emotion_metrics


def compile_tagger(model: keras.Model, tags: list[str], learning_rate: float, optimizer=None) -> keras.Model:
    """Adam + masked BCE on logits + per-tag masked metrics (the mask comes as sample weight).
    `optimizer`: an existing one to share (a head trained apart from its full model)."""
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate), loss=MaskedBinaryCrossentropy(from_logits=True),
                  weighted_metrics=emotion_metrics(tags))
    return build_optimizer(model)


def build_optimizer(model: keras.Model) -> keras.Model:
    """Create the compiled model's optimizer slots now. Left to the first training step, they are
    created inside its `tf.function`, which TensorFlow then traces a second time (about a third
    of a small fit's start-up on CPU). Set `trainable` before compiling, as Keras expects."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return model
