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


def group_folds(groups, folds: int, seed: int, validation_fraction: float) -> list[Split]:
    """Seeded k-fold cross-validation by group: every group is tested in exactly one fold.

    Fold i tests the i-th of `folds` near-equal chunks of a seeded permutation of the
    groups; its validation part is the first `validation_fraction` of all groups that
    follow the test chunk (cyclically), so validation groups differ from fold to fold;
    the rest train.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    if not 0.0 <= validation_fraction < 1.0 - 1.0 / folds:
        raise ValueError(f"validation_fraction must be in [0, {1 - 1 / folds:.2f}) with {folds} folds, "
                         f"got {validation_fraction}.")
    keys = np.asarray([str(g) for g in groups])
    unique, row_group = np.unique(keys, return_inverse=True)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} groups cannot make {folds} folds.")
    chunks = np.array_split(np.random.default_rng(seed).permutation(len(unique)), folds)
    n_val = int(math.floor(len(unique) * validation_fraction))
    splits = []
    for i in range(folds):
        rest = np.concatenate([chunks[(i + j) % folds] for j in range(1, folds)])
        part = np.zeros(len(unique), dtype="int8")
        part[chunks[i]] = 2
        part[rest[:n_val]] = 1
        row_part = part[row_group]
        splits.append(Split(*(np.flatnonzero(row_part == p) for p in (0, 1, 2))))
    return splits
