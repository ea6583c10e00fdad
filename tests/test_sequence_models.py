"""MLP-LSTM and CNN-LSTM: shapes, padding invariance, length arithmetic, save -> load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.config import EmotionModelConfig
from keras_music.models.cnn_lstm import build_cnn_lstm
from keras_music.models.layers import ConvLength, MaskedGlobalMaxPooling
from keras_music.models.mlp_lstm import build_mlp_lstm

TAGS = ["happy", "sad", "calm"]
BUILDERS = {"mlp_lstm": build_mlp_lstm, "cnn_lstm": build_cnn_lstm}
VARIANTS = [(m, v) for m in BUILDERS for v in ("default", "seed")]


def stats(n_mels=16, n_mfcc=6):
    return {"mel_mean": [-40.0] * n_mels, "mel_std": [20.0] * n_mels, "mfcc_mean": [0.0] * n_mfcc,
            "mfcc_std": [10.0] * n_mfcc}


def small(model, variant):
    config = EmotionModelConfig(model=model, variant=variant, frame_units=8, conv_channels=(4, 4), lstm_units=8,
                                head_units=8, window_frames=24)
    keras.utils.set_random_seed(0)
    return BUILDERS[model](config, TAGS, stats(), n_mels=16, n_mfcc=6)


def batch(lengths, frames):
    rng = np.random.default_rng(1)
    mel = rng.normal(-40, 20, (len(lengths), frames, 16)).astype("float32")
    mfcc = rng.normal(0, 10, (len(lengths), frames, 6)).astype("float32")
    for i, n in enumerate(lengths):  # right padding with zeros, as the pipeline makes it
        mel[i, n:] = 0
        mfcc[i, n:] = 0
    return {"mel": mel, "mfcc": mfcc, "length": np.asarray(lengths, "int32")}


@pytest.mark.parametrize("model_name, variant", VARIANTS)
def test_padding_never_changes_the_output(model_name, variant):
    model = small(model_name, variant)
    short = batch([30, 41], 41)
    logits = model.predict(short, verbose=0)
    assert logits.shape == (2, 3) and model.output.name.startswith("logits") or model.layers[-1].name == "logits"
    padded = {k: (np.pad(v, ((0, 0), (0, 23), (0, 0))) if v.ndim == 3 else v) for k, v in short.items()}
    np.testing.assert_allclose(model.predict(padded, verbose=0), logits, atol=1e-5)


@pytest.mark.parametrize("model_name, variant", VARIANTS)
def test_one_step_trains_and_save_load_is_identical(model_name, variant, tmp_path):
    model = small(model_name, variant)
    inputs = batch([30, 41, 24, 35], 41)
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], "float32")
    mask = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 1, 1]], "float32")
    logs = model.train_on_batch(inputs, labels, sample_weight=mask, return_dict=True)
    assert np.isfinite(logs["loss"]) and "auc_happy" in logs and "macro_auc" in logs
    expected = model.predict(inputs, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")  # no custom_objects needed
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, atol=1e-6)


def test_seed_cnn_matches_the_paper_arithmetic():
    """5 channels, kernel 1/4 of (window, bands), stride half the kernel: 216 frames -> 7 steps."""
    model = build_cnn_lstm(EmotionModelConfig(variant="seed"), TAGS, None)
    conv = model.get_layer("mel_conv")
    assert conv.filters == 5 and conv.kernel_size == (54, 16) and conv.strides == (27, 8)
    assert model.get_layer("mfcc_conv").kernel_size == (54, 5)
    assert model.get_layer("mel_flatten_channels").output.shape[-1] == 7 * 5
    assert int(ConvLength(54, 27, "valid")(np.array([216]))[0]) == 7


def test_length_arithmetic_and_masked_max():
    np.testing.assert_array_equal(ConvLength(2, 2, "valid")(np.array([1, 2, 7, 646])), [1, 1, 3, 323])
    np.testing.assert_array_equal(ConvLength(3, 2, "same")(np.array([5, 6])), [3, 3])
    frames = np.array([[[1.0], [5.0], [9.0]]], "float32")
    assert float(MaskedGlobalMaxPooling()([frames, np.array([[True, True, False]])])[0, 0]) == 5.0


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match="model must be"):
        EmotionModelConfig(model="transformer")
    with pytest.raises(ValueError, match="variant must be"):
        EmotionModelConfig(variant="fancy")


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["mlp_lstm", "cnn_lstm"])
def test_default_variant_overfits_16_examples(model_name):
    """A model that can learn at all drives the loss on 16 fixed examples down by a large factor."""
    config = EmotionModelConfig(model=model_name, conv_channels=(8, 16), lstm_units=32, head_units=32, dropout=0.0,
                                learning_rate=3e-3)
    keras.utils.set_random_seed(0)
    model = BUILDERS[model_name](config, TAGS, stats(), n_mels=16, n_mfcc=6)
    inputs = batch([40 - i for i in range(16)], 40)
    labels = np.random.default_rng(2).integers(0, 2, (16, 3)).astype("float32")
    mask = np.ones_like(labels)
    first = model.evaluate(inputs, labels, sample_weight=mask, verbose=0, return_dict=True)["loss"]
    model.fit(inputs, labels, sample_weight=mask, batch_size=16, epochs=150, verbose=0)
    last = model.evaluate(inputs, labels, sample_weight=mask, verbose=0, return_dict=True)["loss"]
    assert last < first / 10, (first, last)
