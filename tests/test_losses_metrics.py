"""Masked BCE and per-emotion metrics, checked against direct formulas and scikit-learn."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from keras_music.losses import MaskedBinaryCrossentropy, masked_binary_crossentropy
from keras_music.metrics import MacroAccuracy, TagMetric, by_label_auc, emotion_metrics


def bce(y, z):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (400, 3)).astype("float32")
    logits = (1.2 * y - 0.6 + rng.normal(0, 1, y.shape)).astype("float32")
    mask = (rng.random(y.shape) < 0.6).astype("float32")
    return y, logits, mask


def test_unknown_cells_contribute_nothing(batch):
    y, logits, mask = batch
    expected = (bce(y, logits) * mask).sum() / mask.sum()
    loss = MaskedBinaryCrossentropy()
    assert float(loss(y, logits, sample_weight=mask)) == pytest.approx(expected, rel=1e-5)
    assert float(masked_binary_crossentropy(y, logits, mask)) == pytest.approx(expected, rel=1e-5)
    flipped = np.where(mask > 0, y, 1 - y)  # change every unknown label: same loss
    assert float(loss(flipped, logits, sample_weight=mask)) == pytest.approx(expected, rel=1e-5)


def test_batch_without_known_cells_gives_zero_not_nan(batch):
    y, logits, _ = batch
    value = float(MaskedBinaryCrossentropy()(y, logits, sample_weight=np.zeros_like(y)))
    assert value == 0.0


def test_loss_config_round_trip():
    loss = MaskedBinaryCrossentropy(from_logits=False)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedBinaryCrossentropy) and restored.from_logits is False


def test_per_tag_metrics_match_sklearn(batch):
    y, logits, mask = batch
    metrics = {m.name: m for m in emotion_metrics(["happy", "sad", "calm"])}
    for metric in metrics.values():
        for start in range(0, len(y), 64):  # several batches, as in an epoch
            metric.update_state(y[start:start + 64], logits[start:start + 64], sample_weight=mask[start:start + 64])
    aucs = []
    for j, tag in enumerate(["happy", "sad", "calm"]):
        known = mask[:, j] > 0
        auc = roc_auc_score(y[known, j], logits[known, j])
        aucs.append(auc)
        assert float(metrics[f"auc_{tag}"].result()) == pytest.approx(auc, abs=2e-3)
        assert float(metrics[f"pr_auc_{tag}"].result()) == pytest.approx(
            average_precision_score(y[known, j], logits[known, j]), abs=1e-2)
        assert float(metrics[f"accuracy_{tag}"].result()) == pytest.approx(
            np.mean((logits[known, j] > 0) == y[known, j]), abs=1e-6)
    assert float(metrics["macro_auc"].result()) == pytest.approx(np.mean(aucs), abs=2e-3)
    per_tag_accuracy = [np.mean((logits[mask[:, j] > 0, j] > 0) == y[mask[:, j] > 0, j]) for j in range(3)]
    assert float(metrics["macro_accuracy"].result()) == pytest.approx(np.mean(per_tag_accuracy), abs=1e-6)


def test_per_tag_views_give_the_numbers_of_metrics_of_their_own(batch):
    """`emotion_metrics`' per-tag metrics hold no state: they read their column of the macro
    metrics' counts. Batch by batch and after a reset, they equal a per-tag metric of its own."""
    y, logits, mask = batch
    y[:, 1] = np.where(mask[:, 1] > 0, 1.0, y[:, 1])  # tag 1: every known cell positive (no ROC-AUC)
    mask[:200, 2] = 0  # tag 2: no known cell in the first batches
    metrics = emotion_metrics(["happy", "sad", "calm"])
    views = [m for m in metrics if isinstance(m, TagMetric)]
    assert len(views) == 9 and all(not view.variables for view in views)
    own = [TagMetric(view.kind, view.index, name=view.name) for view in views]
    for rounds in range(2):
        for metric in metrics + own:
            metric.reset_state()
        for start in range(0, len(y) - 100 * rounds, 64):
            for metric in metrics + own:
                metric.update_state(y[start:start + 64], logits[start:start + 64],
                                    sample_weight=mask[start:start + 64])
            got = [float(view.result()) for view in views]
            # 1e-5: float32 sums over the batch in another order (seen: 1.2e-6).
            np.testing.assert_allclose(got, [float(m.result()) for m in own], atol=1e-5,
                                       err_msg=f"round {rounds}, batch at {start}")


def test_views_and_by_label_auc_refuse_what_they_cannot_read():
    with pytest.raises(ValueError, match="multi_label=False"):
        by_label_auc(keras.metrics.AUC())
    roc = keras.metrics.AUC(multi_label=True, num_labels=3, name="macro_auc")
    with pytest.raises(ValueError, match="pr_auc_sad: a pr_auc view reads a PR multi-label AUC, got 'macro_auc'"):
        TagMetric("pr_auc", 1, name="pr_auc_sad", source=roc)
    with pytest.raises(ValueError, match="reads a MacroAccuracy"):
        TagMetric("accuracy", 1, source=roc)


def test_metrics_reset_and_round_trip(batch):
    y, logits, mask = batch
    metric = TagMetric("auc", 1, name="auc_sad")
    metric.update_state(y, logits, sample_weight=mask)
    metric.reset_state()
    metric.update_state(y[:100], logits[:100], sample_weight=mask[:100])
    known = mask[:100, 1] > 0
    assert float(metric.result()) == pytest.approx(roc_auc_score(y[:100][known, 1], logits[:100][known, 1]), abs=3e-3)
    clone = TagMetric.from_config(metric.get_config())
    assert clone.name == "auc_sad" and clone.kind == "auc" and clone.index == 1
    macro = MacroAccuracy.from_config(MacroAccuracy(3).get_config())
    assert macro.num_tags == 3
    with pytest.raises(ValueError, match="kind"):
        TagMetric("f1", 0)
