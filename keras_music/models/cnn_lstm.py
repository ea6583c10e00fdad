"""CNN-LSTM: each named feature (mel, MFCC) through its own Conv2D branch over (time,
frequency), channels flattened into the feature axis, branches concatenated per frame ->
LSTM -> max over time -> MLP.

Output lengths (T = input frames, L = real frames of one example):

* default: per block, a 3x3 `same` convolution keeps T, then 2x2 max-pooling gives
  floor(T / 2); after the blocks T' = floor(T / 2**blocks), and each example keeps
  L' = max(1, floor(L / 2**blocks)) real steps. A pooled step mixing real and padded
  frames is dropped and zeroed, so the output never depends on how much padding a batch
  adds (tested).
* seed (the paper): one `valid` convolution, 5 channels, kernel k = (W // 4, F // 4) for a
  window of W frames and F bands, stride s = k // 2: T' = floor((T - k_t) / s_t) + 1 and
  L' = max(1, floor((L - k_t) / s_t) + 1). With W = 216 (10 s crops): k_t = 54, s_t = 27,
  so a 216-frame crop leaves 7 steps for the LSTM.

All branches use the same time kernel and stride, so their steps line up.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_music.models.blocks import normalised_inputs, recurrent_head, sequence_inputs
from keras_music.models.compile import compile_tagger
from keras_music.models.family import DROPOUT, LEARNING_RATE, ModelFamily, check_variant, layer_widths
from keras_music.models.sequence_layers import ConvLength, LengthMask, ZeroPadded

SEED_CHANNELS = 5


@dataclasses.dataclass(frozen=True)
class CNNLSTMConfig:
    """The two-input CNN-LSTM tagger.

    Args:
        variant: str. `default` (what learns: normalisation inside the model, small
            kernels, pooling in time) or `seed` (the paper's CNN exactly: 5 channels,
            kernel 1/4 of each input dimension for `window_frames`, stride half the kernel).
        conv_channels: tuple of int. Channels of the default CNN's 3x3 blocks (each block
            halves time and frequency with 2x2 max-pooling).
        lstm_units: int. LSTM width.
        head_units: int. Hidden width of the head after max over time.
        dropout: float. Dropout before the logits (half of it after the convolutions).
        window_frames: int. Input length the seed CNN's kernel is sized for (216 frames =
            10 s crops at hop 1024).
        learning_rate: float. Adam learning rate.
        spec_augment: float. SpecAugment masking while training (two time and two band masks per
            example, each up to this share of its frames or bands; `augmentation.SpecAugment`); 0 = off.
    """

    variant: str = "default"
    conv_channels: tuple[int, ...] = (16, 32)
    lstm_units: int = 64
    head_units: int = 64
    dropout: float = 0.3
    window_frames: int = 216
    learning_rate: float = 1e-3
    spec_augment: float = 0.0

    def __post_init__(self):
        check_variant(self.variant)


def conv_branch(frames, length, bands: int, config: CNNLSTMConfig, name: str):
    """`(batch, T, bands)` -> `(batch, T', bands' * channels)` and the real lengths L'."""
    x = keras.layers.Reshape((-1, bands, 1), name=f"{name}_as_image")(frames)
    if config.variant == "seed":
        kernel = (max(1, config.window_frames // 4), max(1, bands // 4))
        stride = (max(1, kernel[0] // 2), max(1, kernel[1] // 2))
        x = keras.layers.Conv2D(SEED_CHANNELS, kernel, strides=stride, padding="valid", name=f"{name}_conv")(x)
        length = ConvLength(kernel[0], stride[0], "valid", name=f"{name}_conv_length")(length)
    else:
        for i, channels in enumerate(config.conv_channels):
            x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv_{i}")(x)
            x = keras.layers.MaxPooling2D(2, name=f"{name}_pool_{i}")(x)
            length = ConvLength(2, 2, "valid", name=f"{name}_pool_{i}_length")(length)
            # A pooled step mixing the last real frame with padding lies beyond the new
            # length; zero it so the next 3x3 convolution sees plain zero padding there.
            x = ZeroPadded(name=f"{name}_pool_{i}_zero_padding")([x, LengthMask(name=f"{name}_pool_{i}_mask")([x, length])])
    steps_bands, channels = x.shape[2], x.shape[3]
    x = keras.layers.Reshape((-1, steps_bands * channels), name=f"{name}_flatten_channels")(x)
    return x, length


def build_cnn_lstm(config: CNNLSTMConfig, tags: list[str], inputs: dict[str, int], stats: dict | None) -> keras.Model:
    """Compiled CNN-LSTM tagger, one convolution branch per named input (see the module docstring).

    Args:
        config: CNNLSTMConfig.
        tags: list of str. One logit per tag, metrics named after them.
        inputs: dict. Width of each named sequence feature, e.g. `{"mel": 64, "mfcc": 20}`.
        stats: dict or None. `feature_statistics` of the training clips (default variant).

    Returns:
        A `keras.Model` named `cnn_lstm` with one input per named feature plus `length`,
        and output `logits` `(batch, len(tags))`.
    """
    model_inputs = sequence_inputs(inputs)
    min_frames = max(1, config.window_frames // 4) if config.variant == "seed" else 2 ** len(config.conv_channels)
    features, _ = normalised_inputs(model_inputs, stats if config.variant == "default" else None, min_frames,
                                    config.spec_augment)
    branches, length = [], None
    for name, frames in features.items():
        branch, branch_length = conv_branch(frames, model_inputs["length"], inputs[name], config, name)
        branches.append(branch)
        length = branch_length if length is None else length  # every branch gives the same lengths
    frames = keras.layers.Concatenate(name="frame_features")(branches) if len(branches) > 1 else branches[0]
    mask = LengthMask(name="step_mask")([frames, length])
    if config.dropout:
        frames = keras.layers.Dropout(config.dropout / 2, name="frame_dropout")(frames)
    logits = recurrent_head(frames, mask, config.lstm_units, config.head_units, config.dropout, len(tags))
    return compile_tagger(keras.Model(model_inputs, logits, name="cnn_lstm"), tags, config.learning_rate)


# `conv_blocks` 3x3 blocks, channels doubling from `conv_channels`.
_derive, _underive = layer_widths("conv_channels", count="conv_blocks", first="conv_channels", ratio=2)

FAMILY = ModelFamily(
    name="cnn_lstm",
    task="emotion",
    inputs="sequences",
    config=CNNLSTMConfig,
    build=build_cnn_lstm,
    summary="tags from frame sequences: a Conv2D branch per feature, LSTM, max over time",
    space={
        "conv_blocks": {"type": "int", "min": 1, "max": 3},
        "conv_channels": {"type": "choice", "values": [8, 16, 32]},
        "lstm_units": {"type": "choice", "values": [32, 64, 128]},
        "head_units": {"type": "choice", "values": [32, 64, 128]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
    },
    derive=_derive,
    underive=_underive,
)
