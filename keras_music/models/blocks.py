"""Builder helpers shared by the model families: MLP blocks, the named sequence inputs,
their normalisation and masking, and the recurrent tagging head."""

from __future__ import annotations

import keras

from keras_music.models.augmentation import SpecAugment
from keras_music.models.sequence_layers import LengthMask, MaskedGlobalMaxPooling, PadTime, ZeroPadded


def dense_block(x, units, dropout, name, l2: float = 0.0):
    """Dense(ReLU) layers, each followed by dropout; the hidden part of every MLP head."""
    regulariser = keras.regularizers.L2(l2) if l2 else None
    for i, width in enumerate(units):
        x = keras.layers.Dense(width, activation="relu", kernel_regularizer=regulariser, name=f"{name}_dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout_{i}")(x)
    return x


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
