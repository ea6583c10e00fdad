"""CNN-LSTM: mel and MFCC each through Conv2D over (time, frequency), channels flattened
into the feature axis, branches concatenated per frame -> LSTM -> max over time -> MLP.

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

Both branches use the same time kernel and stride, so their steps line up.
"""

from __future__ import annotations

import keras

from keras_music.config import EmotionModelConfig
from keras_music.models.layers import (
    ConvLength,
    LengthMask,
    ZeroPadded,
    compile_tagger,
    normalised_inputs,
    recurrent_head,
    sequence_inputs,
)

SEED_CHANNELS = 5


def conv_branch(frames, length, bands: int, config: EmotionModelConfig, name: str):
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


def build_cnn_lstm(config: EmotionModelConfig, tags: list[str], stats: dict | None, n_mels: int = 64,
                   n_mfcc: int = 20) -> keras.Model:
    """Compiled two-input CNN-LSTM tagger (see the module docstring for the variants).

    Args:
        config: EmotionModelConfig. Variant, channels, LSTM and head sizes, learning rate.
        tags: list of str. One logit per tag, metrics named after them.
        stats: dict or None. `feature_statistics` of the training clips (default variant).
        n_mels, n_mfcc: int. Feature sizes of the inputs.

    Returns:
        A `keras.Model` named `cnn_lstm` with inputs `mel`, `mfcc`, `length` and output
        `logits` `(batch, len(tags))`.
    """
    inputs = sequence_inputs(n_mels, n_mfcc)
    min_frames = max(1, config.window_frames // 4) if config.variant == "seed" else 2 ** len(config.conv_channels)
    mel, mfcc, _ = normalised_inputs(inputs, stats if config.variant == "default" else None, min_frames)
    mel, length = conv_branch(mel, inputs["length"], n_mels, config, "mel")
    mfcc, _ = conv_branch(mfcc, inputs["length"], n_mfcc, config, "mfcc")
    frames = keras.layers.Concatenate(name="frame_features")([mel, mfcc])
    mask = LengthMask(name="step_mask")([frames, length])
    if config.dropout:
        frames = keras.layers.Dropout(config.dropout / 2, name="frame_dropout")(frames)
    logits = recurrent_head(frames, mask, config.lstm_units, config.head_units, config.dropout, len(tags))
    return compile_tagger(keras.Model(inputs, logits, name="cnn_lstm"), tags, config.learning_rate)
