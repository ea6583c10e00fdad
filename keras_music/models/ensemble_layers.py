"""Parameter-efficient ensembles (TabM): k members sharing one network, trained in one pass.

Each layer is registered under the `keras_music` package (`keras_music>ClassName`), so a
saved `.keras` model reloads with plain `keras.saving.load_model(path)` once
`keras_music.models` is imported; the names must never change.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_music")
class RandomSigns(keras.initializers.Initializer):
    """Each value -1 or +1 with equal chance (TabM's initialisation of its first adapter)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        draw = keras.random.uniform(shape, seed=self.seed, dtype=dtype or "float32")
        return ops.where(draw < 0.5, -1.0, 1.0)

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_music")
class EnsembleInput(keras.layers.Layer):
    """`(batch, d)` -> `(batch, members, d)`: one copy of the features per ensemble member, each
    scaled feature by feature by that member's own vector (initialised to random signs).

    TabM-mini's one adapter (Gorishniy et al., "TabM: Advancing Tabular Deep Learning with
    Parameter-Efficient Ensembling", ICLR 2025): what follows is shared by all members (Keras'
    Dense acts on the last axis), except `EnsembleDense` heads, so k members cost one network
    run on k views of each row, trained together in one pass.
    """

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(self.members, input_shape[-1]), initializer=RandomSigns(), name="scale")

    def call(self, x):
        return ops.expand_dims(x, 1) * self.scale

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"members": self.members})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class EnsembleDense(keras.layers.Layer):
    """`(batch, members, d)` -> `(batch, members, units)`: a Dense of each member's own (its head)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        members, width = input_shape[1], input_shape[2]
        limit = (6.0 / (width + self.units)) ** 0.5  # Glorot uniform, per member
        self.kernel = self.add_weight(shape=(members, width, self.units), name="kernel",
                                      initializer=keras.initializers.RandomUniform(-limit, limit))
        self.bias = self.add_weight(shape=(members, self.units), initializer="zeros", name="bias")

    def call(self, x):
        return ops.einsum("bkd,kdu->bku", x, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class MemberMean(keras.layers.Layer):
    """`(batch, members, ...)` -> `(batch, ...)`: the ensemble's prediction, the mean of its members'."""

    def call(self, x):
        return ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])
