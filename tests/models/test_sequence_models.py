"""MLP-LSTM and CNN-LSTM specifics: the seed CNN's arithmetic, SpecAugment in a
saved model, learning at all; the layers themselves in test_sequence_layers.py and test_augmentation.py.

Padding invariance and save -> load run over every registered family in test_families.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_music.models.cnn_lstm import CNNLSTMConfig, build_cnn_lstm
from keras_music.models.mlp_lstm import MLPLSTMConfig
from keras_music.models.registry import REGISTRY
from keras_music.models.sequence_layers import ConvLength

TAGS = ["happy", "sad", "calm"]
INPUTS = {"mel": 16, "mfcc": 6}


def stats(n_mels=16, n_mfcc=6):
    return {"mel_mean": [-40.0] * n_mels, "mel_std": [20.0] * n_mels, "mfcc_mean": [0.0] * n_mfcc,
            "mfcc_std": [10.0] * n_mfcc}


def batch(lengths, frames):
    rng = np.random.default_rng(1)
    mel = rng.normal(-40, 20, (len(lengths), frames, 16)).astype("float32")
    mfcc = rng.normal(0, 10, (len(lengths), frames, 6)).astype("float32")
    for i, n in enumerate(lengths):  # right padding with zeros, as the pipeline makes it
        mel[i, n:] = 0
        mfcc[i, n:] = 0
    return {"mel": mel, "mfcc": mfcc, "length": np.asarray(lengths, "int32")}


def test_seed_cnn_matches_the_paper_arithmetic():
    """5 channels, kernel 1/4 of (window, bands), stride half the kernel: 216 frames -> 7 steps."""
    model = build_cnn_lstm(CNNLSTMConfig(variant="seed"), TAGS, {"mel": 64, "mfcc": 20}, None)
    conv = model.get_layer("mel_conv")
    assert conv.filters == 5 and conv.kernel_size == (54, 16) and conv.strides == (27, 8)
    assert model.get_layer("mfcc_conv").kernel_size == (54, 5)
    assert model.get_layer("mel_flatten_channels").output.shape[-1] == 7 * 5
    assert int(ConvLength(54, 27, "valid")(np.array([216]))[0]) == 7


def test_unknown_variants_are_refused():
    for config in (MLPLSTMConfig, CNNLSTMConfig):
        with pytest.raises(ValueError, match="variant must be"):
            config(variant="fancy")


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["mlp_lstm", "cnn_lstm"])
def test_default_variant_overfits_16_examples(model_name):
    """A model that can learn at all drives the loss on 16 fixed examples down by a large factor."""
    family = REGISTRY[model_name]
    sizes = {"conv_channels": (8, 16)} if model_name == "cnn_lstm" else {}
    config = family.config(lstm_units=32, head_units=32, dropout=0.0, learning_rate=3e-3, **sizes)
    keras.utils.set_random_seed(0)
    model = family.build(config, TAGS, INPUTS, stats())
    inputs = batch([40 - i for i in range(16)], 40)
    labels = np.random.default_rng(2).integers(0, 2, (16, 3)).astype("float32")
    mask = np.ones_like(labels)
    first = model.evaluate(inputs, labels, sample_weight=mask, verbose=0, return_dict=True)["loss"]
    model.fit(inputs, labels, sample_weight=mask, batch_size=16, epochs=80, verbose=0)
    last = model.evaluate(inputs, labels, sample_weight=mask, verbose=0, return_dict=True)["loss"]
    assert last < first / 10, (first, last)


def test_mlp_lstm_with_spec_augment_reloads_and_predicts_unmasked(tmp_path):
    """The layer's own behaviour is in test_augmentation.py; here: in a saved family model it
    keeps its fraction and inference passes the features through."""
    inputs = batch([40, 25], 40)
    model = REGISTRY["mlp_lstm"].build(MLPLSTMConfig(spec_augment=0.1), TAGS, INPUTS, stats())
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer("spec_augment").fraction == 0.1
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6)


def test_mlp_lstm_default_variant_masks_spectrograms_and_the_papers_does_not():
    """The default variant trains with SpecAugment (what measured best), the seed variant as the paper."""
    from keras_music.models.mlp_lstm import DEFAULT_SPEC_AUGMENT

    assert MLPLSTMConfig().spec_augment == DEFAULT_SPEC_AUGMENT > 0
    assert MLPLSTMConfig(variant="seed").spec_augment == 0.0
    assert MLPLSTMConfig(spec_augment=0.0).spec_augment == 0.0
    default = REGISTRY["mlp_lstm"].build(MLPLSTMConfig(), TAGS, INPUTS, stats())
    seed = REGISTRY["mlp_lstm"].build(MLPLSTMConfig(variant="seed"), TAGS, INPUTS, None)
    assert "spec_augment" in {layer.name for layer in default.layers}
    assert "spec_augment" not in {layer.name for layer in seed.layers}
