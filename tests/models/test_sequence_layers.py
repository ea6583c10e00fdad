"""Sequence layers: length masks, zeroed padding, conv output lengths, masked pooling, time padding."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.models import sequence_layers
from keras_music.models.sequence_layers import (
    ConvLength,
    LengthMask,
    MaskedGlobalAveragePooling,
    MaskedGlobalMaxPooling,
    PadTime,
    ZeroPadded,
)
from tests.models.conftest import registered_in


def test_registered_names_are_the_ones_saved_models_hold():
    assert registered_in(sequence_layers) == {
        "keras_music>LengthMask", "keras_music>ZeroPadded", "keras_music>ConvLength",
        "keras_music>MaskedGlobalMaxPooling", "keras_music>MaskedGlobalAveragePooling", "keras_music>PadTime"}


@pytest.mark.parametrize("layer", [
    LengthMask(), ZeroPadded(), ConvLength(3, 2, "same"), MaskedGlobalMaxPooling(), MaskedGlobalAveragePooling(),
    PadTime(7),
])
def test_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_length_mask_is_true_on_the_real_frames_only():
    frames = np.zeros((3, 4, 2), "float32")
    mask = LengthMask()([frames, np.array([4, 1, 0], "int32")])
    assert keras.backend.standardize_dtype(mask.dtype) == "bool"
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    symbolic = LengthMask()([keras.Input((None, 2)), keras.Input((), dtype="int32")])
    assert symbolic.shape == (None, None) and symbolic.dtype == "bool"


def test_zero_padded_zeroes_padded_steps_and_keeps_real_ones():
    frames = np.arange(1, 13, dtype="float32").reshape(2, 3, 2)
    mask = np.array([[True, True, False], [True, False, False]])
    out = np.asarray(ZeroPadded()([frames, mask]))
    np.testing.assert_array_equal(out[0, :2], frames[0, :2])
    np.testing.assert_array_equal(out[1, :1], frames[1, :1])
    assert np.all(out[0, 2:] == 0) and np.all(out[1, 1:] == 0)
    images = np.ones((2, 3, 4, 5), "float32")  # (batch, T, bands, channels): broadcast over the rest
    out = np.asarray(ZeroPadded()([images, mask]))
    assert out.shape == images.shape and out[0, 2].sum() == 0 and out[0, 1].sum() == 20


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, "valid"), (3, 2, "valid"), (4, 4, "valid"),
                                                   (3, 2, "same"), (5, 3, "same"), (2, 2, "same")])
def test_conv_length_is_the_output_length_of_the_convolution(kernel, stride, padding):
    lengths = np.arange(kernel, 30)
    got = np.asarray(ConvLength(kernel, stride, padding)(lengths))
    conv = keras.layers.Conv1D(1, kernel, strides=stride, padding=padding)
    pool = keras.layers.MaxPooling1D(kernel, strides=stride, padding=padding)
    for n, out in zip(lengths, got):
        clip = np.zeros((1, int(n), 2), "float32")
        assert out == conv(clip).shape[1] == pool(clip).shape[1], n


def test_conv_length_gives_a_clip_shorter_than_the_kernel_one_step():
    np.testing.assert_array_equal(ConvLength(5, 2, "valid")(np.array([0, 1, 4, 5, 7])), [1, 1, 1, 1, 2])
    np.testing.assert_array_equal(ConvLength(3, 2, "same")(np.array([0, 1])), [1, 1])
    assert ConvLength(5, 2)(keras.Input((), dtype="int32")).dtype == "int32"


def test_masked_max_never_picks_padding():
    frames = np.array([[[1.0, -5.0], [5.0, -7.0], [99.0, 99.0]],
                       [[-3.0, -4.0], [50.0, 50.0], [60.0, 60.0]]], "float32")
    mask = np.array([[True, True, False], [True, False, False]])
    np.testing.assert_array_equal(MaskedGlobalMaxPooling()([frames, mask]), [[5, -5], [-3, -4]])


def test_masked_max_consumes_the_keras_mask_of_an_lstm():
    frames = keras.Input((None, 3))
    length = keras.Input((), dtype="int32")
    mask = LengthMask()([frames, length])
    sequence = keras.layers.LSTM(4, return_sequences=True)(frames, mask=mask)
    pooled = MaskedGlobalMaxPooling()([sequence, mask])
    assert getattr(pooled, "_keras_mask", None) is None
    model = keras.Model([frames, length], pooled)
    x = np.random.default_rng(0).normal(size=(1, 5, 3)).astype("float32")
    padded = np.concatenate([x, np.full((1, 3, 3), 1e3, "float32")], axis=1)
    np.testing.assert_allclose(model([padded, np.array([5])]), model([x, np.array([5])]), atol=1e-6)


def test_masked_average_is_the_mean_of_the_real_frames():
    frames = np.array([[[1.0], [3.0], [100.0]], [[4.0], [100.0], [100.0]], [[7.0], [7.0], [7.0]]], "float32")
    mask = np.array([[True, True, False], [True, False, False], [False, False, False]])
    # An example without real frames (an empty per-replica batch row) gives 0, not NaN.
    np.testing.assert_allclose(MaskedGlobalAveragePooling()([frames, mask]), [[2.0], [4.0], [0.0]])
    symbolic = MaskedGlobalAveragePooling()([keras.Input((None, 6)), keras.Input((None,), dtype="bool")])
    assert symbolic.shape == (None, 6)


def test_pad_time_pads_short_inputs_with_zeros_to_min_frames():
    short = np.ones((2, 3, 4), "float32")
    out = np.asarray(PadTime(7)(short))
    assert out.shape == (2, 7, 4)
    np.testing.assert_array_equal(out[:, :3], short)
    assert np.all(out[:, 3:] == 0)
    long = np.ones((2, 9, 4), "float32")
    np.testing.assert_array_equal(PadTime(7)(long), long)
    assert PadTime(5)(np.zeros((0, 0, 4), "float32")).shape == (0, 5, 4)  # an empty replica batch
    assert PadTime(5)(np.ones((1, 2, 3, 2), "float32")).shape == (1, 5, 3, 2)


def test_a_saved_model_with_the_sequence_layers_reloads_with_the_same_outputs(save_and_load):
    frames = keras.Input((None, 3), name="frames")
    length = keras.Input((), dtype="int32", name="length")
    padded = PadTime(6, name="min_frames")(frames)
    mask = LengthMask(name="frame_mask")([padded, length])
    zeroed = ZeroPadded(name="zero_padding")([padded, mask])
    pooled = keras.layers.Concatenate()([MaskedGlobalMaxPooling(name="max")([zeroed, mask]),
                                         MaskedGlobalAveragePooling(name="mean")([zeroed, mask])])
    model = keras.Model({"frames": frames, "length": length},
                        {"pooled": pooled, "steps": ConvLength(3, 2, "valid", name="steps")(length)}, name="sequence")
    data = {"frames": np.random.default_rng(0).normal(size=(3, 4, 3)).astype("float32"),
            "length": np.array([4, 2, 1], "int32")}
    expected = model.predict(data, verbose=0)
    for pre_split in (False, True):
        reloaded = save_and_load(model, pre_split=pre_split)
        assert {"PadTime", "LengthMask", "ZeroPadded", "MaskedGlobalMaxPooling", "MaskedGlobalAveragePooling",
                "ConvLength"} <= {type(layer).__name__ for layer in reloaded.layers}
        assert reloaded.get_layer("min_frames").min_frames == 6
        out = reloaded.predict(data, verbose=0)
        for name in expected:
            np.testing.assert_array_equal(out[name], expected[name])
