"""Seeded train / validation / test splits by group (song, artist), never by row.

One function serves every dataset (genre tracks, CAL500 songs, 4Q artists), so `train`,
`evaluate` and `bench/` always agree on which rows are held out.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """Row indices of the train / validation / test parts of one table."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_by_group(groups, seed: int, validation_fraction: float, test_fraction: float) -> Split:
    """Seeded split of rows such that all rows of one group land in the same part.

    Args:
        groups: sequence of hashable keys, one per row (e.g. a normalised song or artist).
        seed: int. The same seed and groups always give the same split.
        validation_fraction: float. Share of groups (not rows) held out for validation.
        test_fraction: float. Share of groups held out for testing.
    """
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError("validation_fraction + test_fraction must be below 1 to leave training groups.")
    keys = np.asarray([str(g) for g in groups])
    unique, row_group = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = int(math.floor(len(unique) * test_fraction))
    n_val = int(math.floor(len(unique) * validation_fraction))
    part = np.zeros(len(unique), dtype="int8")  # 0 train, 1 validation, 2 test
    part[order[:n_test]] = 2
    part[order[n_test:n_test + n_val]] = 1
    row_part = part[row_group]
    return Split(*(np.flatnonzero(row_part == p) for p in (0, 1, 2)))
