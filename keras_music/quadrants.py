"""Russell's four emotion quadrants (the 4Q labels): names a person reads, and arousal / valence.

A 4Q model has one tag per quadrant of the arousal (energy) x valence (positive vs negative)
plane (tags ending in `q1` .. `q4`, e.g. `quadrant_q1`). `quadrant_columns` recognises such
tags; `quadrant_scores` turns the quadrant probabilities into arousal and valence, the share
of the probability on the two energetic (Q1 + Q2) or the two positive (Q1 + Q4) quadrants,
so both lie in [0, 1] however the four probabilities are calibrated. NumPy only: the tagger
and the export's graph (`keras_music.serving.signatures`) use the same rule.

>>> quadrant_name("quadrant_q3")
'Q3 sad/depressed'
>>> scores = quadrant_scores(["quadrant_q1", "quadrant_q2", "quadrant_q3", "quadrant_q4"], [[0.6, 0.2, 0.1, 0.1]])
>>> [round(float(scores[axis][0]), 2) for axis in ("arousal", "valence")]
[0.8, 0.7]
"""

from __future__ import annotations

import numpy as np

QUADRANTS = ("q1", "q2", "q3", "q4")
# What each quadrant feels like (Panda et al. 2018 after Russell 1980): high arousal and positive
# valence (Q1), high arousal and negative valence (Q2), low arousal and negative (Q3), low and positive (Q4).
QUADRANT_NAMES = {"q1": "Q1 happy/excited", "q2": "Q2 angry/tense", "q3": "Q3 sad/depressed",
                  "q4": "Q4 calm/relaxed"}
QUADRANT_AXES = {"arousal": ("q1", "q2"), "valence": ("q1", "q4")}


def quadrant_of(tag: str) -> str:
    """`q1` .. `q4` for a quadrant tag such as `quadrant_q1` (the text after the last `_`), else ''."""
    quadrant = tag.rsplit("_", 1)[-1].lower()
    return quadrant if quadrant in QUADRANTS else ""


def quadrant_columns(tags: list[str]) -> dict[str, int] | None:
    """`{"q1": column, ...}` when `tags` are exactly the four quadrants (in any order), else None."""
    columns = {quadrant_of(tag): j for j, tag in enumerate(tags)}
    return columns if len(tags) == 4 and set(columns) == set(QUADRANTS) else None


def quadrant_name(tag: str) -> str:
    """The name a person reads for a quadrant tag (`quadrant_q1` -> `Q1 happy/excited`); other tags unchanged."""
    return QUADRANT_NAMES.get(quadrant_of(tag), tag)


def quadrant_scores(tags: list[str], probabilities) -> dict:
    """Arousal and valence `{axis: (n,)}` from the quadrant probabilities `(n, 4)`; {} for other tags.

    A row's arousal is the share of its quadrant probability on Q1 + Q2 (valence: Q1 + Q4).
    """
    columns = quadrant_columns(tags)
    if columns is None:
        return {}
    probabilities = np.asarray(probabilities, dtype="float64")
    total = probabilities.sum(axis=1)
    return {axis: probabilities[:, [columns[q] for q in quadrants]].sum(axis=1) / total
            for axis, quadrants in QUADRANT_AXES.items()}
