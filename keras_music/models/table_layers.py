"""Layers that turn raw table columns into model inputs: gaps, category codes, bins.

Each layer is registered under the `keras_music` package (`keras_music>ClassName`), so a
saved `.keras` model reloads with plain `keras.saving.load_model(path)` once
`keras_music.models` is imported; the names must never change.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_music")
class NanImputer(keras.layers.Layer):
    """Replace NaN per column by a fixed value, optionally appending missing-value flags.

    The fill values are adapted on the training split by the builder (medians), and
    live in the config, so the saved model takes raw columns with gaps.

    Args:
        fill_values: list of float. One value per input column.
        indicator: list of bool. For each column, whether to append a 0/1 "was missing"
            column after the filled values. Defaults to no indicators.

    Input shape: `(batch, len(fill_values))`. Output shape: `(batch, len(fill_values) +
    sum(indicator))`.
    """

    def __init__(self, fill_values, indicator=None, **kwargs):
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]
        self.indicator = [bool(v) for v in (indicator or [False] * len(self.fill_values))]
        if len(self.indicator) != len(self.fill_values):
            raise ValueError(
                f"indicator has {len(self.indicator)} entries, fill_values {len(self.fill_values)}; "
                "give one flag per column."
            )

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        missing = ops.isnan(inputs)
        filled = ops.where(missing, ops.convert_to_tensor(self.fill_values, dtype=inputs.dtype), inputs)
        flagged = [i for i, flag in enumerate(self.indicator) if flag]
        if not flagged:
            return filled
        flags = ops.cast(ops.take(missing, flagged, axis=-1), inputs.dtype)
        return ops.concatenate([filled, flags], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.fill_values) + sum(self.indicator))

    def get_config(self):
        config = super().get_config()
        config.update({"fill_values": self.fill_values, "indicator": self.indicator})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class CategoryCodes(keras.layers.Layer):
    """Float category column (NaN = missing) -> int64 codes for `IntegerLookup`.

    Args:
        missing_code: int. Code given to NaN, so "missing" is a category of its own.
    """

    def __init__(self, missing_code, **kwargs):
        super().__init__(**kwargs)
        self.missing_code = int(missing_code)

    def call(self, inputs):
        inputs = ops.cast(inputs, "float32")
        filled = ops.where(ops.isnan(inputs), float(self.missing_code), inputs)
        return ops.cast(ops.round(filled), "int64")

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="int64")

    def get_config(self):
        config = super().get_config()
        config.update({"missing_code": self.missing_code})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class RandomOOV(keras.layers.Layer):
    """During training, replace lookup indices by the out-of-vocabulary index at `rate`.

    Why: an embedding only ever trained on known ids has an untrained OOV row, yet at
    inference unseen artists are common. Dropping ids to OOV teaches the model a sensible
    fallback and regularises the embedding, much as target encoding shrinks rare levels.

    Args:
        rate: float. Probability of replacing an index by `oov_index` while training.
        oov_index: int. Index that the lookup layer gives unknown values. Defaults to `0`.
        seed: int or None. Seed of the random draws. Defaults to `None`.
    """

    def __init__(self, rate, oov_index=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.oov_index = int(oov_index)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, indices, training=False):
        if not training or self.rate == 0.0:
            return indices
        keep = keras.random.uniform(ops.shape(indices), seed=self.seed_generator) >= self.rate
        return ops.where(keep, indices, ops.cast(self.oov_index, indices.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "oov_index": self.oov_index, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class PiecewiseLinearEncoding(keras.layers.Layer):
    """Encode one numeric column as a "thermometer" over quantile bins.

    Component t is 0 below bin t, 1 above it and linear inside it (Gorishniy et al.,
    "On Embeddings for Numerical Features in Tabular Deep Learning", 2022). It lets an MLP
    place cut points where gradient-boosted trees would, which plain standardised inputs
    make hard.

    Args:
        bin_edges: list of float. Sorted edges, including the training minimum and maximum;
            `len(bin_edges) - 1` output components.

    Input shape: `(batch, 1)`. Output shape: `(batch, len(bin_edges) - 1)`.
    """

    def __init__(self, bin_edges, **kwargs):
        super().__init__(**kwargs)
        self.bin_edges = [float(e) for e in bin_edges]
        if len(self.bin_edges) < 2 or any(b <= a for a, b in zip(self.bin_edges, self.bin_edges[1:])):
            raise ValueError(f"bin_edges must be strictly increasing with at least 2 values, got {self.bin_edges}.")

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        lower = ops.convert_to_tensor(self.bin_edges[:-1], dtype=inputs.dtype)
        width = ops.convert_to_tensor(
            [b - a for a, b in zip(self.bin_edges, self.bin_edges[1:])], dtype=inputs.dtype)
        return ops.clip((inputs - lower) / width, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.bin_edges) - 1)

    def get_config(self):
        config = super().get_config()
        config.update({"bin_edges": self.bin_edges})
        return config
