"""Training-only data augmentation inside the model (SpecAugment).

Each layer is registered under the `keras_music` package (`keras_music>ClassName`), so a
saved `.keras` model reloads with plain `keras.saving.load_model(path)` once
`keras_music.models` is imported; the names must never change.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_music")
class SpecAugment(keras.layers.Layer):
    """SpecAugment's masking (Park et al., Interspeech 2019), in training only: per example,
    `masks` spans of time and `masks` spans of each feature's bands set to 0, each up to
    `fraction` of the example's real frames or of the feature's width.

    Takes `[feature (batch, T, width), ..., length (batch,)]` of one example's named features
    (normalised and zero-padded, so 0 is the mean) and masks the same frames in all of them,
    bands per feature. Masks fall within each example's real frames. Inference passes the
    features through unchanged, so exports and scores are untouched. Random draws come from the
    layer's seed generator: a seeded run gives the same masks.

    Args:
        fraction: float in (0, 1). Largest mask, as a share of frames or bands.
        masks: int. Time masks and frequency masks per example (each).
        seed: int or None. Seed of the draws (None: from Keras' global seed).
    """

    def __init__(self, fraction: float = 0.1, masks: int = 2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < fraction < 1:
            raise ValueError(f"SpecAugment fraction must be in (0, 1), got {fraction!r}.")
        self.fraction, self.masks, self.seed = float(fraction), int(masks), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _keep(self, size, steps, batch):
        """`(batch, steps)` float: 0 inside `masks` random spans of at most `fraction * size` of
        the first `size` (per example) of `steps` positions, 1 elsewhere."""
        size = ops.cast(size, "float32")
        positions = ops.expand_dims(ops.cast(ops.arange(steps), "float32"), 0)
        keep = ops.ones((batch, steps), "float32")
        for _ in range(self.masks):
            width = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator)
                              * (ops.floor(self.fraction * size) + 1))
            start = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator)
                              * ops.maximum(size - width + 1, 1))
            inside = ops.logical_and(positions >= ops.expand_dims(start, 1),
                                     positions < ops.expand_dims(start + width, 1))
            keep = keep * (1 - ops.cast(inside, "float32"))
        return keep

    def call(self, inputs, training=None):
        *features, length = inputs
        if not training:
            return features
        batch, steps = ops.shape(features[0])[0], ops.shape(features[0])[1]
        in_time = ops.expand_dims(self._keep(length, steps, batch), 2)
        out = []
        for x in features:
            width = x.shape[-1]
            in_bands = ops.expand_dims(self._keep(ops.full((batch,), width), width, batch), 1)
            out.append(x * ops.cast(in_time * in_bands, x.dtype))
        return out

    def compute_output_spec(self, inputs, training=None):
        return [keras.KerasTensor(x.shape, dtype=x.dtype) for x in inputs[:-1]]

    def get_config(self):
        config = super().get_config()
        config.update({"fraction": self.fraction, "masks": self.masks, "seed": self.seed})
        return config
