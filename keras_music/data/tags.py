"""Multi-label tag tables (labels + known-cell mask per clip) and their join with features.

Every emotion dataset (CAL500, 4Q, the synthetic demo) becomes one `TagTable`, so the
pipeline, models, loss and metrics never care where labels came from.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np

logger = logging.getLogger(__name__)


def slug(name: str) -> str:
    """Metric-friendly tag name: `Emotion-Laid-back_/_Mellow` -> `laid_back_mellow`."""
    name = re.sub(r"^(NOT-)?Emotion-", "", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclasses.dataclass(frozen=True)
class TagTable:
    """Per-clip binary tags with a mask of which cells are known.

    Attributes:
        clip_ids: list of str. One id per row (a song name, or a file stem).
        tags: list of str. Tag names (slugs), one per column.
        labels: float32 array `(clips, tags)`. 1 = tag applies (only meaningful where known).
        mask: float32 array `(clips, tags)`. 1 = the cell is known, 0 = unknown (ignored by
            the loss and every metric; never read as a negative).
    """

    clip_ids: list[str]
    tags: list[str]
    labels: np.ndarray
    mask: np.ndarray

    def __post_init__(self):
        shape = (len(self.clip_ids), len(self.tags))
        if self.labels.shape != shape or self.mask.shape != shape:
            raise ValueError(f"labels {self.labels.shape} and mask {self.mask.shape} must both be {shape}.")
        if len(set(self.clip_ids)) != len(self.clip_ids):
            raise ValueError("clip ids must be unique.")

    def rows(self, clip_ids) -> "TagTable":
        """The sub-table of `clip_ids`, in that order."""
        index = {c: i for i, c in enumerate(self.clip_ids)}
        missing = [c for c in clip_ids if c not in index]
        if missing:
            raise ValueError(f"{len(missing)} clip id(s) have no labels, e.g. {missing[:5]}.")
        take = [index[c] for c in clip_ids]
        return TagTable(list(clip_ids), self.tags, self.labels[take], self.mask[take])

    def counts(self) -> dict[str, dict[str, int]]:
        """Known and positive cells per tag."""
        return {t: {"known": int(self.mask[:, i].sum()), "positive": int((self.labels * self.mask)[:, i].sum())}
                for i, t in enumerate(self.tags)}


@dataclasses.dataclass(frozen=True)
class JoinReport:
    """Outcome of matching a tag table to the clips of a feature source, by id."""

    matched: list[str]
    labels_only: list[str]   # labelled, but no features
    features_only: list[str]  # features, but no labels


def join_ids(table: TagTable, feature_ids) -> JoinReport:
    """Match labelled clips to feature clips by id, naming every clip found on one side only."""
    feature_ids = list(feature_ids)
    features, labelled = set(feature_ids), set(table.clip_ids)
    report = JoinReport(
        matched=[c for c in table.clip_ids if c in features],
        labels_only=sorted(labelled - features),
        features_only=sorted(features - labelled),
    )
    for side, names in (("labels but no features", report.labels_only),
                        ("features but no labels", report.features_only)):
        if names:
            shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
            logger.warning("%d clip(s) have %s and are left out: %s", len(names), side, shown)
    return report
