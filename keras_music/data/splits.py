"""Seeded train / validation / test splits by group (song, artist), never by row.

One function serves every dataset (genre tracks, CAL500 songs, 4Q artists), so `train`,
`evaluate` and `bench/` always agree on which rows are held out. `stratified_folds` is the
one exception, by row: the protocol of the published 4Q results, kept so that our models can
be compared with them under it (it lets one artist's songs be on both sides).
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


def _check_folds(folds: int, validation_fraction: float) -> None:
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    if not 0.0 <= validation_fraction < 1.0 - 1.0 / folds:
        raise ValueError(f"validation_fraction must be in [0, {1 - 1 / folds:.2f}) with {folds} folds, "
                         f"got {validation_fraction}.")


def group_folds(groups, folds: int, seed: int, validation_fraction: float) -> list[Split]:
    """Seeded k-fold cross-validation by group: every group is tested in exactly one fold.

    Fold i tests the i-th of `folds` near-equal chunks of a seeded permutation of the
    groups; its validation part is the first `validation_fraction` of all groups that
    follow the test chunk (cyclically), so validation groups differ from fold to fold;
    the rest train.
    """
    _check_folds(folds, validation_fraction)
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


def stratified_folds(classes, folds: int, seed: int, validation_fraction: float) -> list[Split]:
    """Seeded stratified k-fold cross-validation by row: every row is tested in exactly one fold.

    The literature's protocol for the 4Q dataset (by clip, stratified on the quadrant), which
    the published F1 scores use; repeat it with other seeds for repeated k-fold. Each class's
    rows are shuffled and dealt to the folds in turn (the count carried on from class to
    class), so every fold holds each class in near-equal numbers. Fold i's validation part
    is, per class, a seeded draw of `floor(validation_fraction * class size)` rows from the
    rows it does not test (stratified too); the rest train.

    Args:
        classes: sequence of hashable labels, one per row (e.g. each clip's quadrant).
        folds: int. Number of folds, at least 2; every class needs at least that many rows.
        seed: int. The same seed and classes always give the same folds.
        validation_fraction: float. Share of each class held out for validation in every fold.
    """
    _check_folds(folds, validation_fraction)
    keys = np.asarray([str(c) for c in classes])
    unique, counts = np.unique(keys, return_counts=True)
    if counts.min() < folds:
        raise ValueError(f"class {str(unique[counts.argmin()])!r} has {counts.min()} rows, "
                         f"fewer than the {folds} folds.")
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(keys == value)) for value in unique]
    fold_of, dealt = np.empty(len(keys), dtype="int64"), 0
    for rows in members:
        fold_of[rows] = (dealt + np.arange(len(rows))) % folds
        dealt += len(rows)
    splits = []
    for i in range(folds):
        part = np.where(fold_of == i, 2, 0).astype("int8")  # 0 train, 1 validation, 2 test
        for rows in members:
            candidates = rng.permutation(rows[fold_of[rows] != i])
            part[candidates[:int(math.floor(len(rows) * validation_fraction))]] = 1
        splits.append(Split(*(np.flatnonzero(part == p) for p in (0, 1, 2))))
    return splits
