"""Small layers shared by the model builders.

Each is registered under the `keras_music` package so a saved `.keras` model reloads
with plain `keras.saving.load_model(path)`.
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


# --- parameter-efficient ensembles (TabM) --------------------------------------------------------

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


def dense_block(x, units, dropout, name, l2: float = 0.0):
    """Dense(ReLU) layers, each followed by dropout; the hidden part of every MLP head."""
    regulariser = keras.regularizers.L2(l2) if l2 else None
    for i, width in enumerate(units):
        x = keras.layers.Dense(width, activation="relu", kernel_regularizer=regulariser, name=f"{name}_dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout_{i}")(x)
    return x


# --- sequence models: inputs, time masks, recurrent head ---------------------------------------

@keras.saving.register_keras_serializable(package="keras_music")
class LengthMask(keras.layers.Layer):
    """`[frames (batch, T, ...), length (batch,)]` -> boolean mask `(batch, T)`, True on real frames.

    Right padding only (real frames first), which is also what keeps Keras' LSTM on the
    fused cuDNN path on GPU.
    """

    def call(self, inputs):
        frames, length = inputs
        steps = ops.arange(ops.shape(frames)[1])
        return ops.expand_dims(steps, 0) < ops.expand_dims(ops.cast(length, steps.dtype), 1)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape[:2], dtype="bool")


@keras.saving.register_keras_serializable(package="keras_music")
class ZeroPadded(keras.layers.Layer):
    """`[frames (batch, T, ...), mask (batch, T)]` -> frames with padded steps set to 0.

    Normalisation turns zero padding into non-zero values; convolutions must see zeros
    beyond the end of a clip, as they do beyond its start.
    """

    def call(self, inputs):
        frames, mask = inputs
        mask = ops.cast(mask, frames.dtype)
        return frames * ops.reshape(mask, (*ops.shape(mask), *([1] * (len(frames.shape) - 2))))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="keras_music")
class ConvLength(keras.layers.Layer):
    """Number of real output steps after a convolution or pooling along time.

    `same`: ceil(length / stride); `valid`: floor((length - kernel) / stride) + 1. Clamped
    to at least 1, so a clip shorter than the kernel still yields one (partial) step.

    Args:
        kernel: int. Kernel (or pool) size in time.
        stride: int. Stride in time.
        padding: str. `same` or `valid`.
    """

    def __init__(self, kernel, stride, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.kernel, self.stride, self.padding = int(kernel), int(stride), padding

    def call(self, length):
        length = ops.cast(length, "int32")
        if self.padding == "same":
            out = (length + self.stride - 1) // self.stride
        else:
            out = (length - self.kernel) // self.stride + 1
        return ops.maximum(out, 1)

    def compute_output_spec(self, length):
        return keras.KerasTensor(length.shape, dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({"kernel": self.kernel, "stride": self.stride, "padding": self.padding})
        return config


@keras.saving.register_keras_serializable(package="keras_music")
class MaskedGlobalMaxPooling(keras.layers.Layer):
    """`[frames (batch, T, C), mask (batch, T)]` -> max over real frames only, `(batch, C)`.

    Padded frames never win the max (the seed's models let padding act as data).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the Keras mask of the LSTM output is consumed here

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask=None):
        frames, mask = inputs
        lowest = ops.cast(-1e9, frames.dtype)
        return ops.max(ops.where(ops.expand_dims(mask, -1), frames, lowest), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][-1])


@keras.saving.register_keras_serializable(package="keras_music")
class MaskedGlobalAveragePooling(keras.layers.Layer):
    """`[frames (batch, T, C), mask (batch, T)]` -> mean over real frames only, `(batch, C)`."""

    def call(self, inputs):
        frames, mask = inputs
        weights = ops.expand_dims(ops.cast(mask, frames.dtype), -1)
        return ops.sum(frames * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][-1])


@keras.saving.register_keras_serializable(package="keras_music")
class PadTime(keras.layers.Layer):
    """Zero-pad the time axis of `(batch, T, ...)` up to `min_frames` when T is shorter.

    Why: a valid convolution needs at least its kernel's length, pooling at least its
    window, and an LSTM at least one step. Short clips, and the empty per-replica batches
    that `MirroredStrategy` hands out for a final partial batch (T = 0), would otherwise
    crash; the length mask keeps the added frames out of every result.

    Args:
        min_frames: int. Smallest time length passed on.
    """

    def __init__(self, min_frames=1, **kwargs):
        super().__init__(**kwargs)
        self.min_frames = int(min_frames)

    def call(self, frames):
        missing = ops.maximum(self.min_frames - ops.shape(frames)[1], 0)
        padding = [[0, 0], [0, missing]] + [[0, 0]] * (len(frames.shape) - 2)
        return ops.pad(frames, padding)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"min_frames": self.min_frames})
        return config


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


def sequence_inputs(features: dict[str, int]) -> dict:
    """The named inputs of every sequence model: one `(batch, T, width)` input per named
    feature (e.g. `mel`, `mfcc`) and `length` `(batch,)`, the real frames of each example."""
    inputs = {name: keras.Input(shape=(None, width), name=name) for name, width in features.items()}
    inputs["length"] = keras.Input(shape=(), dtype="int32", name="length")
    return inputs


def normalised_inputs(inputs: dict, stats: dict | None, min_frames: int = 1, spec_augment: float = 0.0):
    """Pad time to `min_frames`, standardise every named feature with training-split
    statistics (`<name>_mean`, `<name>_std`; inside the model) and zero the padding; with
    `spec_augment` > 0, mask spans of time and bands while training (`SpecAugment`, that
    fraction).

    Returns `(features, mask)`: a dict of the normalised `(batch, T, width)` tensors in input
    order, and the `(batch, T)` frame mask.
    """
    names = [name for name in inputs if name != "length"]
    padded = {name: PadTime(min_frames, name=f"{name}_min_frames")(inputs[name]) for name in names}
    mask = LengthMask(name="frame_mask")([padded[names[0]], inputs["length"]])
    out = {}
    for name, x in padded.items():
        if stats is not None:
            x = keras.layers.Normalization(mean=stats[f"{name}_mean"], variance=[s * s for s in stats[f"{name}_std"]],
                                           name=f"{name}_standardise")(x)
        out[name] = ZeroPadded(name=f"{name}_zero_padding")([x, mask])
    if spec_augment:
        masked = SpecAugment(spec_augment, name="spec_augment")([*out.values(), inputs["length"]])
        out = dict(zip(out, masked))
    return out, mask


def recurrent_head(frames, mask, lstm_units: int, head_units: int, dropout: float, num_tags: int):
    """LSTM over real frames -> max over time (ignoring padding) -> Dense -> one logit per tag.

    Default LSTM activations and a right-padded mask keep the cuDNN kernel usable on GPU.
    """
    x = keras.layers.LSTM(lstm_units, return_sequences=True, name="lstm")(frames, mask=mask)
    x = MaskedGlobalMaxPooling(name="max_over_time")([x, mask])
    x = keras.layers.Dense(head_units, activation="relu", name="head_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_tags, name="logits")(x)


def compile_tagger(model: keras.Model, tags: list[str], learning_rate: float, optimizer=None) -> keras.Model:
    """Adam + masked BCE on logits + per-tag masked metrics (the mask comes as sample weight).
    `optimizer`: an existing one to share (a head trained apart from its full model)."""
    from keras_music.losses import MaskedBinaryCrossentropy
    from keras_music.metrics import emotion_metrics

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
