"""The report's numbers agree with scikit-learn; the plot is a real PNG."""

from __future__ import annotations

import numpy as np
from sklearn import metrics

from keras_music.reports import classification_report, format_classification_report, plot_history


def test_report_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    probabilities = rng.dirichlet(np.ones(3), 200)
    report = classification_report(labels, probabilities, ["a", "b", "c"])
    predicted = probabilities.argmax(1)
    assert report["accuracy"] == metrics.accuracy_score(labels, predicted)
    assert report["macro_f1"] == metrics.f1_score(labels, predicted, average="macro")
    assert np.isclose(report["log_loss"], metrics.log_loss(labels, probabilities))
    assert report["confusion_matrix"] == metrics.confusion_matrix(labels, predicted).tolist()
    assert sum(report["per_class"][n]["support"] for n in "abc") == 200
    text = format_classification_report(report, title="T")
    assert "macro_f1=" in text and "confusion matrix" in text


def test_plot_history_writes_png(tmp_path):
    history = {"loss": [1.0, 0.8], "accuracy": [0.3, 0.5], "val_loss": [1.1, 0.9], "val_accuracy": [0.2, 0.4]}
    path = plot_history(history, tmp_path / "h.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))


def test_quadrant_axes_match_sklearn_on_summed_probabilities():
    from keras_music.reports import tagging_report

    rng = np.random.default_rng(0)
    quadrant = rng.integers(0, 4, 200)
    labels = np.eye(4, dtype="float32")[quadrant]
    logits = rng.normal(size=(200, 4)) + 2 * labels
    report = tagging_report([f"quadrant_q{i}" for i in range(1, 5)], labels, np.ones_like(labels), logits)
    p = 1 / (1 + np.exp(-logits))
    arousal = metrics.roc_auc_score(quadrant < 2, (p[:, 0] + p[:, 1]) / p.sum(axis=1))
    valence = metrics.roc_auc_score(np.isin(quadrant, [0, 3]), (p[:, 0] + p[:, 3]) / p.sum(axis=1))
    assert abs(report["arousal_roc_auc"] - arousal) < 1e-12 and abs(report["valence_roc_auc"] - valence) < 1e-12
    assert report["arousal_roc_auc"] > 0.7
    other = tagging_report(["happy", "sad", "calm", "angry"], labels, np.ones_like(labels), logits)
    assert "arousal_roc_auc" not in other


def test_tagging_report_macro_f1_only_for_one_tag_per_clip():
    from keras_music.reports import format_tagging_report, tagging_report

    rng = np.random.default_rng(1)
    quadrant = rng.integers(0, 4, 120)
    labels = np.eye(4, dtype="float32")[quadrant]
    logits = rng.normal(size=(120, 4)) + 1.5 * labels
    tags = [f"quadrant_q{i}" for i in range(1, 5)]
    report = tagging_report(tags, labels, np.ones_like(labels), logits)
    assert report["macro_f1"] == metrics.f1_score(quadrant, logits.argmax(axis=1), average="macro")
    assert report["accuracy"] == metrics.accuracy_score(quadrant, logits.argmax(axis=1))
    assert "macro_f1=" in format_tagging_report(report)
    never_predicted = tagging_report(tags, labels, np.ones_like(labels), np.tile([3.0, 0, 0, 0], (120, 1)))
    assert never_predicted["macro_f1"] == metrics.f1_score(quadrant, np.zeros(120), labels=range(4),
                                                           average="macro", zero_division=0)
    multi = labels.copy()
    multi[0, (quadrant[0] + 1) % 4] = 1  # one clip with two tags: not single-label data
    assert tagging_report(tags, multi, np.ones_like(labels), logits)["macro_f1"] is None
    unknown = np.ones_like(labels)
    unknown[3, 0] = 0  # an unknown cell: which tag is the clip's cannot be told
    assert tagging_report(tags, labels, unknown, logits)["macro_f1"] is None


def test_reliability_is_a_table_of_probability_against_frequency():
    import doctest

    from keras_music import reports

    assert doctest.testmod(reports, optionflags=doctest.ELLIPSIS).failed == 0
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(4000, 4))
    calibrated = reports.reliability((rng.uniform(size=p.shape) < p).astype(int), np.ones_like(p), p)
    overconfident = reports.reliability((rng.uniform(size=p.shape) < 0.5).astype(int), np.ones_like(p), p)
    assert calibrated["ece"] < 0.02 < 0.2 < overconfident["ece"]
    assert sum(b["count"] for b in calibrated["bins"]) == p.size and len(calibrated["bins"]) == 10
    masked = reports.reliability(np.ones((2, 2)), np.array([[1, 0], [0, 0]]), np.full((2, 2), 0.25))
    assert masked["bins"] == [{"low": 0.2, "high": 0.3, "count": 1, "probability": 0.25, "positive_rate": 1.0}]
