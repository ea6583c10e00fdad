"""musicnn_head: musicnn's pretrained embedding, frozen, under a small head of our own.

What a user gets from a pretrained tagger with a probe, as a trainable, exportable family:
the Keras 3 musicnn (`models/musicnn.py`, MTT or MSD weights) runs frozen up to its
200-unit penultimate layer on each 3 s window; our dropout -> dense -> `logits` head
learns the tags with the masked loss. Clips are scored as every tagger: the mean of the
window logits. Inputs: the `musicnn` recipe's `mel` (16 kHz, 96 bands) and `length`.

`weights="MSD_musicnn+MTT_musicnn"` runs both trained networks side by side on the same
mel and concatenates their embeddings (400 values): the two were trained on different tags
(MSD's moods and genres, MTT's instruments and tempo), and on the 4Q artist folds the pair
scored above the MSD network alone (0.730 vs 0.724 accuracy, 0.929 vs 0.923 macro ROC-AUC;
`bench.emotion`, docs/benchmarks.md) at twice its compute. The packaged default model uses it.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_music.audio.filterbank import band_centres
from keras_music.config import RECIPES
from keras_music.models.blocks import sequence_inputs
from keras_music.models.compile import compile_tagger
from keras_music.models.family import DROPOUT, LEARNING_RATE, ModelFamily, TagSet
from keras_music.models.musicnn import (
    BANDS,
    MUSICNN_TAGS,
    PATCH_FRAMES,
    WEIGHTS,
    load_pretrained,
    musicnn_backend,
    musicnn_body,
    musicnn_pooling,
    tag_layer,
    tag_reading,
)
from keras_music.models.spectral_layers import LevelNormalization, SpectralAugment

MUSICNN_SEQUENCES = {"crop_frames": PATCH_FRAMES, "window_hop": PATCH_FRAMES // 2}
# The head trains on windows (about 20 per 30 s clip), not clips: larger batches, as many steps per epoch as
# 16 clips would give.
HEAD_SEQUENCES = {**MUSICNN_SEQUENCES, "batch_size": 128}


@dataclasses.dataclass(frozen=True)
class MusicnnHeadConfig:
    """A frozen musicnn embedding and a trained head.

    Args:
        weights: str. `MSD_musicnn` (Million Song Dataset; its 50 tags include moods such as sad,
            happy, mellow, chill), `MTT_musicnn` (MagnaTagATune), or several joined by `+`
            (`MSD_musicnn+MTT_musicnn`: both networks, embeddings concatenated).
        head_units: int. Hidden width of our head; 0 = logits straight from the embedding
            (a linear probe).
        dropout: float. Dropout on the embedding and before the logits.
        learning_rate: float. Adam learning rate.
        level_normalization: float in [0, 1]. Each window's mel power brought this share of the
            way to one level before musicnn (`spectral_layers.LevelNormalization`), in training
            and scoring: 1 = a gain changes nothing; 0 = off (musicnn reads the recording's level).
        spectral_augment: int. Augmented copies of the training windows (random gain, tilt, low
            and high cuts, noise floor: `spectral_layers.SpectralAugment`) the head also learns
            from; 0 = off. Scoring never augments.
    """

    weights: str = "MSD_musicnn"
    head_units: int = 64
    dropout: float = 0.3
    learning_rate: float = 1e-3
    level_normalization: float = 0.0
    spectral_augment: int = 0

    def __post_init__(self):
        weight_names(self.weights)
        if not 0 <= self.level_normalization <= 1:
            raise ValueError(f"level_normalization must be in [0, 1], got {self.level_normalization!r}.")
        if self.spectral_augment < 0:
            raise ValueError(f"spectral_augment must be >= 0 (augmented copies), got {self.spectral_augment!r}.")


def weight_names(weights: str) -> list[str]:
    """The musicnn weights named by `weights` (`MSD_musicnn`, or several joined by `+`), checked."""
    names = weights.split("+") if isinstance(weights, str) else []
    if not names or any(name not in WEIGHTS for name in names) or len(set(names)) != len(names):
        raise ValueError(f"weights must be one of {list(WEIGHTS)} or several of them joined by '+' "
                         f"(e.g. 'MSD_musicnn+MTT_musicnn'), got {weights!r}.")
    return names


def network_prefixes(weights: str) -> dict[str, str]:
    """`{weights name: layer-name prefix}` of the networks of a `musicnn_head` (`weights` as its config's).
    One network keeps the plain `musicnn_` names (those of runs made before `+` existed)."""
    names = weight_names(weights)
    return {names[0]: "musicnn_"} if len(names) == 1 else {
        name: f"musicnn_{name.split('_')[0].lower()}_" for name in names}


TAG_SOURCES = {
    "MSD_musicnn": "musicnn's MSD_musicnn tags: trained by its authors (Pons and Serra 2019) on the 50 most "
                   "frequent last.fm tags of the Million Song Dataset (not by keras_music)",
    "MTT_musicnn": "musicnn's MTT_musicnn tags: trained by its authors (Pons and Serra 2019) on the 50 most "
                   "frequent MagnaTagATune tags (not by keras_music)",
}


def musicnn_tag_sets(model: keras.Model, config: MusicnnHeadConfig) -> list[TagSet]:
    """musicnn's own tags from each network of a `musicnn_head` model: its `penultimate` output
    through the network's trained tag layer (`musicnn.tag_layer`). The same forward pass as our
    head's, so a tagger gives musicnn's genre, mood, instrument and era tags at no extra cost."""
    sets = []
    for weights, prefix in network_prefixes(config.weights).items():
        logits = tag_layer(weights, prefix)(model.get_layer(f"{prefix}penultimate").output)
        labels = tuple(MUSICNN_TAGS[weights])
        sets.append(TagSet(name=weights.split("_")[0].lower(), logits=logits, labels=labels,
                           readings=tuple(tag_reading(tag) for tag in labels), source=TAG_SOURCES[weights]))
    return sets


def check_musicnn_inputs(inputs: dict[str, int], family: str) -> None:
    """The musicnn front end takes the 96-band `mel` of the musicnn recipe and nothing else."""
    if inputs != {"mel": BANDS}:
        raise ValueError(f"{family} takes {{'mel': {BANDS}}} (features of `--recipe musicnn`), got {inputs}.")


def build_musicnn_head(config: MusicnnHeadConfig, tags: list[str], inputs: dict[str, int],
                       stats: dict | None = None) -> keras.Model:
    """Compiled tagger: frozen musicnn (up to `penultimate`; with several weights, each
    network's, concatenated as `musicnn_penultimate`) -> dropout -> dense -> `logits`.
    `stats` are not used: musicnn normalises its input with its own trained batch norm."""
    check_musicnn_inputs(inputs, "musicnn_head")
    model_inputs = sequence_inputs(inputs)
    prefixes = network_prefixes(config.weights)
    mel, length = model_inputs["mel"], model_inputs["length"]
    if config.spectral_augment:
        mel = SpectralAugment(band_centres(RECIPES["musicnn"]), copies=config.spectral_augment,
                              name="spectral_augment")([mel, length])
    if config.level_normalization:
        mel = LevelNormalization(strength=config.level_normalization, name="level_normalization")([mel, length])
    embeddings = []
    for prefix in prefixes.values():
        body = musicnn_body(mel, length, prefix=prefix)
        pool, _, _ = musicnn_pooling(body["midend"], body["mask"], prefix=prefix)
        embeddings.append(musicnn_backend(pool, prefix=prefix, dropout=False))  # frozen: same in training
    x = embeddings[0] if len(embeddings) == 1 else keras.layers.Concatenate(name="musicnn_penultimate")(embeddings)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    if config.head_units:
        x = keras.layers.Dense(config.head_units, activation="relu", name="head_dense")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(len(tags), name="logits")(x)
    model = keras.Model(model_inputs, logits, name="musicnn_head")
    for weights, prefix in prefixes.items():
        for name in load_pretrained(model, weights, prefix=prefix):
            model.get_layer(name).trainable = False
    return compile_tagger(model, tags, config.learning_rate)


FAMILY = ModelFamily(
    name="musicnn_head",
    task="emotion",
    inputs="sequences",
    config=MusicnnHeadConfig,
    build=build_musicnn_head,
    summary="tags from musicnn's frozen pretrained embedding (MTT/MSD) and a small trained head",
    space={
        "weights": {"type": "choice", "values": [*WEIGHTS, "MSD_musicnn+MTT_musicnn"]},
        "head_units": {"type": "choice", "values": [0, 64, 128]},
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
    },
    recipe="musicnn",
    sequences=HEAD_SEQUENCES,
    frozen_output="musicnn_penultimate",
    tag_sets=musicnn_tag_sets,
)
