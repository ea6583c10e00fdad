"""Per-emotion masked metrics with readable names, and their macro averages.

`emotion_metrics(tags)` returns, for every tag `t`, `accuracy_t`, `auc_t` (ROC) and
`pr_auc_t`, plus `macro_accuracy`, `macro_auc` and `macro_pr_auc`. Pass them as
`weighted_metrics` to `compile`: the known-cell mask arrives as the `(batch, tags)`
sample weight, so unknown cells count nowhere. Keras then logs `val_auc_happy` etc. in
History, CSV logs and TensorBoard, and resets them every epoch.

Models output logits; ROC/PR-AUC use 1,000 thresholds over the sigmoid (within ~1e-3 of
scikit-learn's exact values). A tag whose known cells are all one class has no defined
AUC; Keras reports 0 for it, and the macro AUC then counts it as 0.

The per-tag metrics of `emotion_metrics` hold no state of their own: they read their tag's
column of the macro metrics' counts (Keras updates those). One multi-label update per
batch instead of one per tag and kind halves the graph a fit traces before its first step
(seconds of every fit's start-up on CPU: `python -m bench.startup`) and gives the same numbers.
"""

from __future__ import annotations

import keras
from keras import initializers, ops

NUM_THRESHOLDS = 1000
KINDS = ("accuracy", "auc", "pr_auc")
CURVES = {"auc": "ROC", "pr_auc": "PR"}  # the AUC curve of each AUC kind


def _inner_metric(kind: str, num_labels: int | None = None):
    if kind == "accuracy":
        return keras.metrics.BinaryAccuracy(threshold=0.0)  # logits: > 0  <=>  probability > 0.5
    curve = CURVES[kind]
    return keras.metrics.AUC(num_thresholds=NUM_THRESHOLDS, curve=curve, from_logits=True,
                             multi_label=num_labels is not None, num_labels=num_labels)


@keras.saving.register_keras_serializable(package="keras_music")
class TagMetric(keras.metrics.Metric):
    """One tag (column) of a multi-label output, scored with a masked metric.

    Alone, it keeps its own state. Made by `emotion_metrics`, it is a view: it reads column
    `index` of the macro metric of its kind (`source`), which must be updated before its
    `result()` (it is: Keras updates every metric of a batch, then reads them), and its own
    `update_state` and `reset_state` do nothing. Reloaded from a config, it keeps its own state.

    Args:
        kind: str. `accuracy` (threshold 0.5), `auc` (ROC) or `pr_auc`.
        index: int. Column of the tag in labels and logits.
        name: str. Reported name, e.g. `auc_happy`.
        source: the `MacroAccuracy` (kind `accuracy`) or multi-label `keras.metrics.AUC`
            (`auc`: curve ROC, `pr_auc`: PR) whose counts to read; None for a metric of its own.
    """

    def __init__(self, kind, index, name=None, dtype=None, source=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        super().__init__(name=name or f"{kind}_{index}", dtype=dtype)
        self.kind, self.index = kind, int(index)
        if source is not None and not _reads(kind, source):
            raise ValueError(f"{self.name}: a {kind} view reads a "
                             f"{'MacroAccuracy' if kind == 'accuracy' else CURVES[kind] + ' multi-label AUC'}, "
                             f"got {source.name!r} ({type(source).__name__}).")
        # Held in a plain object so Keras does not track the source's variables as this metric's.
        self._source = _Untracked(source)
        self.inner = None if source is not None else _inner_metric(kind)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.inner is None:
            return  # a view: the source metric counts this batch
        column = lambda x: ops.convert_to_tensor(x)[:, self.index]  # noqa: E731
        weight = None if sample_weight is None else column(sample_weight)
        self.inner.update_state(column(y_true), column(y_pred), sample_weight=weight)

    def result(self):
        if self.inner is not None:
            return self.inner.result()
        source = self._source.value
        if self.kind == "accuracy":
            return ops.divide_no_nan(source.correct[self.index], source.known[self.index])
        return by_label_auc(source)[self.index]

    def reset_state(self):
        if self.inner is not None:
            self.inner.reset_state()

    def get_config(self):
        return {"kind": self.kind, "index": self.index, "name": self.name, "dtype": self.dtype}


def _reads(kind: str, source) -> bool:
    if kind == "accuracy":
        return isinstance(source, MacroAccuracy)
    return isinstance(source, keras.metrics.AUC) and _readable_curve(source) == CURVES[kind]


def _readable_curve(auc: keras.metrics.AUC) -> str | None:
    """The curve (ROC or PR) of a multi-label, interpolated AUC that `by_label_auc` reads; None otherwise."""
    config = auc.get_config()
    readable = auc.multi_label and config["curve"] in ("ROC", "PR") and config["summation_method"] == "interpolation"
    return config["curve"] if readable else None


class _Untracked:
    def __init__(self, value):
        self.value = value


def by_label_auc(auc: keras.metrics.AUC):
    """Each label's area under the curve from a multi-label `keras.metrics.AUC`'s counts, by
    the formulas of its `result()` (Riemann sums with interpolation for ROC, Davis & Goadrich's
    interpolation for PR) before it averages them over labels."""
    curve = _readable_curve(auc)
    if curve is None:
        config = auc.get_config()
        raise ValueError(f"{auc.name}: by_label_auc reads a multi-label ROC or PR AUC with interpolation, got "
                         f"curve {config['curve']!r}, summation {config['summation_method']!r}, "
                         f"multi_label={auc.multi_label}.")
    tp, fp, tn, fn = auc.true_positives, auc.false_positives, auc.true_negatives, auc.false_negatives
    if curve == "PR":
        dtp = tp[:-1] - tp[1:]
        predicted = tp + fp
        dp = predicted[:-1] - predicted[1:]
        slope = ops.divide_no_nan(dtp, ops.maximum(dp, 0))
        intercept = tp[1:] - slope * predicted[1:]
        ratio = ops.where(ops.logical_and(predicted[:-1] > 0, predicted[1:] > 0),
                          ops.divide_no_nan(predicted[:-1], ops.maximum(predicted[1:], 0)),
                          ops.ones_like(predicted[1:]))
        increments = ops.divide_no_nan(slope * (dtp + intercept * ops.log(ratio)), ops.maximum(tp[1:] + fn[1:], 0))
        return ops.sum(increments, axis=0)
    recall = ops.divide_no_nan(tp, tp + fn)
    false_positive_rate = ops.divide_no_nan(fp, fp + tn)
    return ops.sum((false_positive_rate[:-1] - false_positive_rate[1:]) * (recall[:-1] + recall[1:]) / 2.0, axis=0)


@keras.saving.register_keras_serializable(package="keras_music")
class MacroAccuracy(keras.metrics.Metric):
    """Mean over tags of each tag's masked binary accuracy (tags with no known cell skipped).

    Args:
        num_tags: int. Number of tags (columns).
    """

    def __init__(self, num_tags, name="macro_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_tags = int(num_tags)
        self.correct = self.add_variable(shape=(self.num_tags,), initializer=initializers.Zeros(), name="correct")
        self.known = self.add_variable(shape=(self.num_tags,), initializer=initializers.Zeros(), name="known")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        weight = ops.ones_like(y_pred) if sample_weight is None else ops.cast(sample_weight, y_pred.dtype)
        hit = ops.cast(ops.equal(ops.cast(y_pred > 0, y_pred.dtype), y_true), y_pred.dtype)
        self.correct.assign_add(ops.sum(hit * weight, axis=0))
        self.known.assign_add(ops.sum(weight, axis=0))

    def result(self):
        has_cells = ops.cast(self.known > 0, self.known.dtype)
        per_tag = ops.divide_no_nan(self.correct, self.known)
        return ops.divide_no_nan(ops.sum(per_tag * has_cells), ops.sum(has_cells))

    def reset_state(self):
        self.correct.assign(ops.zeros_like(self.correct))
        self.known.assign(ops.zeros_like(self.known))

    def get_config(self):
        return {"num_tags": self.num_tags, "name": self.name, "dtype": self.dtype}


def emotion_metrics(tags: list[str]) -> list[keras.metrics.Metric]:
    """Per-tag and macro metrics named after `tags`; use as `compile(weighted_metrics=...)`.
    Keep the list whole: the per-tag metrics read the macro metrics' counts (see `TagMetric`)."""
    macro = {
        "accuracy": MacroAccuracy(len(tags)),
        "auc": keras.metrics.AUC(num_thresholds=NUM_THRESHOLDS, curve="ROC", from_logits=True, multi_label=True,
                                 num_labels=len(tags), name="macro_auc"),
        "pr_auc": keras.metrics.AUC(num_thresholds=NUM_THRESHOLDS, curve="PR", from_logits=True, multi_label=True,
                                    num_labels=len(tags), name="macro_pr_auc"),
    }
    per_tag = [TagMetric(kind, i, name=f"{kind}_{tag}", source=macro[kind]) for kind in KINDS
               for i, tag in enumerate(tags)]
    return list(macro.values()) + per_tag  # the sources first: the views read them after their update


@keras.saving.register_keras_serializable(package="keras_music")
def member_mean_accuracy(y_true, y_pred):
    """Accuracy of an ensemble's mean prediction from its members' `(batch, members, classes)`
    probabilities (what the saved model outputs), per row."""
    predicted = ops.argmax(ops.mean(y_pred, axis=1), axis=-1)
    return ops.cast(ops.equal(ops.argmax(y_true, axis=-1), predicted), "float32")
