"""Per-tag decision thresholds, tuned on a run's validation clips.

An exported tagger carries one probability cut per tag in its metadata.json (`thresholds`),
chosen here: the cut with the best F1 on the run's validation split, scored clip by clip
as `keras_music.evaluate` scores them (`keras_music.scoring`). A tag that cannot be tuned (no
positive, or no known cell, among the validation clips) keeps 0.5.
"""

from __future__ import annotations

import logging

import numpy as np

from keras_music.training.common import sequence_config_of

logger = logging.getLogger("keras_music.thresholds")


def f1_thresholds(probabilities: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> list[float]:
    """Per tag, the probability threshold with the best F1 on the known cells (0.5 when a tag
    has no positive or no known cell). Ties go to the higher threshold."""
    thresholds = []
    for j in range(labels.shape[1]):
        known = mask[:, j] > 0
        y, p = labels[known, j] > 0.5, probabilities[known, j]
        if not y.any() or y.all():
            thresholds.append(0.5)
            continue
        best, best_f1 = 0.5, -1.0
        for candidate in np.unique(p):
            predicted = p >= candidate
            tp = np.sum(predicted & y)
            f1 = 2 * tp / (predicted.sum() + y.sum())
            if f1 >= best_f1:
                best, best_f1 = float(candidate), f1
        thresholds.append(best)
    return thresholds


def validation_thresholds(model, config: dict, data: str | None) -> tuple[list[float], str]:
    """Per-tag thresholds tuned on the run's validation clips, and where they came from.

    Args:
        model: the run's Keras tagger.
        config: the run's config.json (its `tags`, `data`, `labels` and validation split).
        data: where the validation clips are; `None`: the run's own data (and labels).

    Returns:
        `(thresholds, source)`: one threshold per tag, and a sentence saying where they came
        from. When the clips cannot be read, every threshold is 0.5 and `source` says why.
    """
    from keras_music.data.emotion import load_emotion_data
    from keras_music.scoring import tagger_logits

    tags = config["tags"]
    try:
        same = data is None or data == config["data"]
        emotion = load_emotion_data(data or config["data"], config.get("labels") if same else None)
        val_ids = [c for c in config["splits"]["validation"] if c in set(emotion.tags.clip_ids)]
        if not val_ids:
            raise ValueError("none of the run's validation clips are in it")
        logits, labels, mask = tagger_logits(model, emotion, val_ids, sequence_config_of(config))
    except (FileNotFoundError, ValueError) as error:
        logger.warning("Thresholds left at 0.5: validation data %r not usable (%s).", data or config["data"], error)
        return [0.5] * len(tags), f"default 0.5 (validation data unavailable: {error})"
    thresholds = f1_thresholds(1 / (1 + np.exp(-logits)), labels, mask)
    return thresholds, f"best F1 on {len(val_ids)} validation clips of {data or config['data']}"
