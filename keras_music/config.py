"""Frozen dataclass configs with a strict JSON round-trip.

The same objects are read by the builders, the CLIs and (later) the KerasTuner
HyperModels, and a copy is saved beside every trained model (`config.json`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class GenreMLPConfig:
    """The genre MLP: which columns it sees and its hidden layers.

    Args:
        feature_set: str. `seed` (the paper's columns) or `full` (adds popularity and the
            artist). Defaults to `full`.
        hidden_units: tuple of int. Width of each hidden ReLU layer.
        dropout: float. Dropout after each hidden layer.
        numeric_bins: int. Quantile bins of the piecewise-linear encoding added beside
            each standardised numeric column (0 = standardised values only).
        artist_embedding_dim: int. Size of the artist embedding (`full` only).
        artist_oov_rate: float. Training-time rate at which an artist is replaced by the
            out-of-vocabulary id, so unseen artists get a trained fallback.
        artist_bias: bool. Add a per-artist offset to the logits (wide path), the neural
            counterpart of target encoding.
        artist_l2: float. L2 penalty on the artist tables; shrinks rare artists to the prior.
        learning_rate: float. Adam learning rate.
        label_smoothing: float. Label smoothing of the cross-entropy; many tracks carry
            more than one genre in the data, so hard 0/1 targets overstate certainty.
        class_weight_power: float. Class weights `(mean count / class count) ** power`:
            0 = none, 1 = fully balanced. A little lifts the rare genres (macro-F1)
            at almost no cost in accuracy.
    """

    feature_set: str = "full"
    hidden_units: tuple[int, ...] = (1024, 512)
    dropout: float = 0.3
    numeric_bins: int = 16
    artist_embedding_dim: int = 16
    artist_oov_rate: float = 0.4
    artist_bias: bool = True
    artist_l2: float = 0.0
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    class_weight_power: float = 0.3


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How a model is fitted: epochs, batches, early stopping and the seeded split.

    Args:
        epochs: int. Upper bound on epochs; early stopping usually ends sooner.
        batch_size: int. Examples per gradient step.
        patience: int. Epochs without validation improvement before stopping.
        seed: int. Seeds weights, dropout and shuffling.
        split_seed: int. Seeds the train/validation/test split by song; kept apart from
            `seed` so runs with different seeds are scored on the same test songs.
        validation_fraction: float. Share of songs held out for early stopping.
        test_fraction: float. Share of songs held out for the final report. 80/10/10 keeps
            ~1,500 rows in each held-out part of the Kaggle file, and gives the artist
            lookup as many training songs as possible.
    """

    epochs: int = 100
    batch_size: int = 64
    patience: int = 20
    seed: int = 0
    split_seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


def config_to_dict(config) -> dict:
    """Plain JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls, values: dict, source: str = "config"):
    """Build `cls` from a dict, rejecting unknown keys by name and restoring tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        if typing.get_origin(hints[name]) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def save_json(path: str | Path, payload: dict) -> None:
    """Write JSON atomically (temp file, then rename), so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
