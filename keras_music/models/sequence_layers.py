"""Layers that keep right-padded frame sequences honest: length masks, zeroed padding,
conv output lengths, pooling over real frames only, and a minimum time length.

Each layer is registered under the `keras_music` package (`keras_music>ClassName`), so a
saved `.keras` model reloads with plain `keras.saving.load_model(path)` once
`keras_music.models` is imported; the names must never change.
"""

from __future__ import annotations

import keras
from keras import ops


def length_mask(frames, length):
    """Boolean `(batch, T)`: True on each example's first `length` frames of `frames` `(batch, T, ...)`."""
    steps = ops.arange(ops.shape(frames)[1])
    return ops.expand_dims(steps, 0) < ops.expand_dims(ops.cast(length, steps.dtype), 1)


@keras.saving.register_keras_serializable(package="keras_music")
class LengthMask(keras.layers.Layer):
    """`[frames (batch, T, ...), length (batch,)]` -> boolean mask `(batch, T)`, True on real frames.

    Right padding only (real frames first), which is also what keeps Keras' LSTM on the
    fused cuDNN path on GPU.
    """

    def call(self, inputs):
        return length_mask(*inputs)

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
