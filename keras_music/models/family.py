"""What the package knows about a model family: one `ModelFamily` per family, listed in `registry.py`.

A family bundles everything the CLIs, the training library, the KerasTuner hypermodel and
the benchmarks need, so none of them asks "which model is this?" on its own:

* `config`: its frozen config dataclass; the dataclass defaults are the family's default
  hyperparameters.
* `build`: the builder. Taggers (`task == "emotion"`) share one signature,
  `build(config, tags, inputs, stats) -> compiled keras.Model`, where `inputs` maps each
  named input to its width (e.g. `{"mel": 64, "mfcc": 20}` for sequences, `{"features": 168}`
  for a per-clip vector) and `stats` holds `<name>_mean` / `<name>_std` of the training
  data. The genre family: `build(config, preprocessing, num_classes)`.
* `inputs`: what it eats. `sequences` (frame sequences of named features plus `length`),
  `clip_vector` (one `features` vector per clip) or `table` (raw CSV columns).
* `space`: the KerasTuner search space as plain data (see `keras_music.hparams` for the
  entry format). Space names are config fields, `batch_size` (a training setting), or
  names the family derives fields from (`derive` / `underive`).
* `recipe` / `sequences`: what a pretrained front end fixes: the feature recipe its inputs
  must come from (`config.RECIPES` key; e.g. musicnn's 16 kHz log-mel) and its own crop
  and scoring windows (`SequenceConfig` fields).

A tagger's last layer is a Dense named `logits` (`LOGITS_LAYER`), one logit per tag. Its
input is the tagger's embedding (`embedding_output`, `embedding_model`): the clip's pooled
vector after the head's hidden layer (dropout is the identity at inference), which the
export serves as `embeddings` for search and clustering. Because the logits are linear in
it, the mean of a clip's window embeddings maps to the mean of its window logits.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Callable

from keras_music.config import RECIPES, FeatureRecipe
from keras_music.data.sequences import SequenceConfig

INPUT_KINDS = ("sequences", "clip_vector", "table")
CLIP_VECTOR_INPUT = "features"  # the one input of `clip_vector` families (a model's contract)
LOGITS_LAYER = "logits"  # a tagger's last (Dense) layer; its input is the embedding (a model's contract)
VARIANTS = ("default", "seed")  # what learns / the paper's choices (families with a `variant` field)

LEARNING_RATE = {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"}
DROPOUT = {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1}


def check_variant(variant: str) -> None:
    """For configs with a `variant` field: a clear error for anything but `VARIANTS`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")


def layer_widths(field: str, count: str, first: str, ratio: float, minimum: int = 1):
    """`(derive, underive)` for a tuple-of-widths config `field` searched as `count` layers, the
    first `first` wide and each next `ratio` times as wide (at least `minimum`)."""
    def derive(values: dict, config) -> dict:
        widths = getattr(config, field)
        layers, width = int(values.pop(count, len(widths))), int(values.pop(first, widths[0]))
        return {field: tuple(max(int(width * ratio ** i), minimum) for i in range(layers))}

    def underive(config) -> dict:
        return {count: len(getattr(config, field)), first: getattr(config, field)[0]}

    return derive, underive


def embedding_output(model):
    """The embedding of a tagger: the (symbolic) input tensor of its layer named `logits`, `(batch, width)`.

    Raises ValueError when the model has no such layer, or when that layer's input is not one
    `(batch, width)` tensor (e.g. a layer called more than once, or one adding several inputs).
    """
    try:
        layer = model.get_layer(LOGITS_LAYER)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer named {LOGITS_LAYER!r}, so it has no embedding: a "
                         f"tagger's last Dense layer must be named {LOGITS_LAYER!r} (its input is the embedding)."
                         ) from None
    try:
        tensor = layer.input
    except (AttributeError, ValueError) as error:  # a layer called more than once has no single input
        raise ValueError(f"model {model.name!r}: layer {LOGITS_LAYER!r} has no single input ({error}).") from None
    if isinstance(tensor, (list, tuple, dict)) or len(tensor.shape) != 2:
        raise ValueError(f"model {model.name!r}: the input of layer {LOGITS_LAYER!r} is not one (batch, width) "
                         f"tensor, so it is no embedding (got {tensor!r}).")
    return tensor


def embedding_model(model, with_logits: bool = False):
    """A `keras.Model` on `model`'s inputs (the same layers and weights) that outputs its embedding
    `(batch, width)` (`embedding_output`), or, `with_logits`, `{"embeddings": ..., "logits": ...}`
    from one pass (`logits` = the model's own output)."""
    import keras

    embeddings = embedding_output(model)
    outputs = {"embeddings": embeddings, "logits": model.output} if with_logits else embeddings
    return keras.Model(model.input, outputs, name=f"{model.name}_embedding")


@dataclasses.dataclass(frozen=True)
class TagSet:
    """Tags a tagger's pretrained part computes in the same forward pass, besides the tagger's own.

    For example musicnn's 50 Million Song Dataset tags under a `musicnn_head` emotion model: the
    export serves them beside the emotion tags at no extra cost (`ModelFamily.tag_sets`).

    Args:
        name: str. Short name, the prefix of its serving outputs (`msd` -> `msd_probabilities`).
        logits: the symbolic `(batch, len(labels))` tensor of the tags' logits, on the model's inputs.
        labels: tuple of str. The tags, in the order of `logits`.
        readings: tuple of `(group, name shown)` per label: how a person reads each tag (for
            example `("vocals", "female vocals")`); groups such as genre, mood, instrument.
        source: str. Who trained these tags, on what (the model card and metadata.json say it).
    """

    name: str
    logits: object
    labels: tuple
    readings: tuple
    source: str


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One model family (see the module docstring).

    Args:
        name: str. Registry key, also the `--model` value and the saved run's `model`.
        task: str. `emotion` (multi-label tags, masked loss) or `genre` (classes).
        inputs: str. One of `INPUT_KINDS`.
        config: type. The family's frozen config dataclass.
        build: callable. The builder (signature per task, see the module docstring).
        space: dict. KerasTuner search space.
        summary: str. One line for `--help` and the docs.
        derive: callable or None. `(values, config) -> dict of config fields` for the space
            names that are not fields (it pops them from `values`).
        underive: callable or None. `config -> dict of those names`: the inverse of `derive`.
        recipe: str or None. `RECIPES` key the sequences must be computed with (None: any).
        sequences: dict. `SequenceConfig` fields this family fixes (e.g. a pretrained
            network's input length as `crop_frames`).
        frozen_output: str or None. The last layer of a frozen pretrained front end: the
            layers up to it never train, so training computes its output once per window
            and fits only the rest (`keras_music.training.frozen`).
        tag_sets: callable or None. `(model, config) -> list of TagSet`: other tags the
            pretrained front end computes from the same pass (musicnn's MSD and MTT tags),
            which the export serves beside the model's own.
    """

    name: str
    task: str
    inputs: str
    config: type
    build: Callable
    space: dict
    summary: str
    derive: Callable | None = None
    underive: Callable | None = None
    recipe: str | None = None
    sequences: dict = dataclasses.field(default_factory=dict)
    frozen_output: str | None = None
    tag_sets: Callable | None = None

    def __post_init__(self):
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"{self.name}: inputs must be one of {INPUT_KINDS}, got {self.inputs!r}.")
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ValueError(f"{self.name}: recipe must be one of {sorted(RECIPES)}, got {self.recipe!r}.")

    def sequence_config(self, **overrides) -> SequenceConfig:
        """`SequenceConfig` defaults with this family's fixed fields, then `overrides`."""
        return dataclasses.replace(SequenceConfig(), **{**self.sequences, **overrides})

    def check_recipe(self, recipe: FeatureRecipe | None, source: str) -> None:
        """A clear error when `source`'s features were not computed the way this family's
        pretrained front end needs (same spectrogram; length limit and resampler may differ)."""
        if self.recipe is None:
            return
        expected = RECIPES[self.recipe]
        loose = {"max_seconds", "resampler"}
        differ = [] if recipe is None else [f.name for f in dataclasses.fields(FeatureRecipe)
                                            if f.name not in loose and getattr(recipe, f.name) != getattr(expected, f.name)]
        if recipe is None or differ:
            found = "no recipe" if recipe is None else ", ".join(f"{n}={getattr(recipe, n)!r}" for n in differ)
            raise ValueError(f"{source}: {self.name} needs features of the {self.recipe!r} recipe (extract them with "
                             f"`python -m keras_music.extract AUDIO --out STORE --recipe {self.recipe}`); found {found}.")

    @property
    def has_variants(self) -> bool:
        """Whether the config has a `variant` field (`seed` = the paper's choices, `default`)."""
        return "variant" in {f.name for f in dataclasses.fields(self.config)}

    def config_from_hparams(self, values: dict, config):
        """`config` with the hyperparameter `values` applied (`batch_size` is not a model field
        and is ignored here; `keras_music.hparams.configs_from_hparams` applies it)."""
        values = {k: v for k, v in values.items() if k != "batch_size"}
        fields = dict(self.derive(values, config)) if self.derive else {}
        hints = typing.get_type_hints(self.config)
        for name, value in values.items():
            fields[name] = int(value) if hints.get(name) is int else value
        return dataclasses.replace(config, **fields)

    def hparams_from_config(self, config) -> dict:
        """The values of the space's names (except `batch_size`) that reproduce `config`."""
        derived = self.underive(config) if self.underive else {}
        return {name: derived[name] if name in derived else getattr(config, name)
                for name in self.space if name != "batch_size"}
