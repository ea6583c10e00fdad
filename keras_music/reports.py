"""Scores and their presentation: the JSON report, its printed table, the history plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics

from keras_music.config import atomic_path, save_json
from keras_music.quadrants import QUADRANT_AXES, quadrant_columns, quadrant_scores


def classification_report(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro-F1, log loss, per-class F1 and confusion matrix of softmax outputs.

    Args:
        labels: int array `(n,)`. True class ids.
        probabilities: float array `(n, num_classes)`. Predicted class probabilities.
        class_names: list of str. Name of each class id.

    Returns:
        A JSON-ready dict; `confusion_matrix[i][j]` counts true class i predicted as j.
    """
    ids = list(range(len(class_names)))
    # float32 softmax rows can miss 1 by ~1e-7; renormalise in float64 for log loss.
    probabilities = np.asarray(probabilities, dtype="float64")
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    per_class = metrics.f1_score(labels, predicted, labels=ids, average=None, zero_division=0)
    support = np.bincount(labels, minlength=len(ids))
    return {
        "n": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "macro_f1": float(metrics.f1_score(labels, predicted, labels=ids, average="macro", zero_division=0)),
        "log_loss": float(metrics.log_loss(labels, probabilities, labels=ids)),
        "per_class": {
            name: {"f1": float(f1), "support": int(n)} for name, f1, n in zip(class_names, per_class, support)
        },
        "class_names": list(class_names),
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=ids).tolist(),
    }


def format_classification_report(report: dict, title: str = "") -> str:
    """Human-readable text of `classification_report` output."""
    names = report["class_names"]
    width = max(len(n) for n in names)
    lines = [title] if title else []
    lines.append(f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro_f1={report['macro_f1']:.4f}  "
                 f"log_loss={report['log_loss']:.4f}")
    lines.append(f"\n{'class':<{width}}  {'f1':>6}  {'support':>7}")
    for name in names:
        row = report["per_class"][name]
        lines.append(f"{name:<{width}}  {row['f1']:6.3f}  {row['support']:7d}")
    lines.append("\nconfusion matrix (rows: true class, columns: predicted; ids as above, 0-based)")
    ids = "".join(f"{i:>5d}" for i in range(len(names)))
    lines.append(f"{'':>4}{ids}")
    for i, row in enumerate(report["confusion_matrix"]):
        lines.append(f"{i:>4}" + "".join(f"{v:>5d}" for v in row))
    return "\n".join(lines)


# Below this standard deviation of predicted probabilities across clips, a tag is
# predicted (nearly) the same for every song: the seed paper's failure mode.
CONSTANT_PREDICTION_STD = 0.02


def quadrant_axes(tags: list[str], labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Arousal and valence ROC-AUC from quadrant tags (`quadrant_scores`); {} for other tags.

    The truth is whether a clip's quadrant is one of the axis's two.
    """
    column = quadrant_columns(tags)
    result = {}
    for axis, score in quadrant_scores(tags, probabilities).items():
        truth = labels[:, [column[q] for q in QUADRANT_AXES[axis]]].sum(axis=1) > 0
        if 0 < truth.sum() < len(truth):
            result[f"{axis}_roc_auc"] = float(metrics.roc_auc_score(truth, score))
    return result


def one_tag_per_clip(labels: np.ndarray, mask: np.ndarray) -> bool:
    """Whether every cell is known and every clip has exactly one positive tag (its class, e.g. a
    4Q quadrant): then accuracy and F1 of the argmax over tags mean something."""
    return bool(np.all(mask > 0) and (np.asarray(labels).sum(axis=1) == 1).all())


def reliability(labels: np.ndarray, mask: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> dict:
    """How far the tag probabilities can be read as frequencies, pooled over every known cell:
    `bins` equal-width bins of probability, each with its cells' count, mean probability and
    share of positives (a reliability diagram as a table); `ece`, the expected calibration error
    (the count-weighted mean gap between the two); `brier`, the mean squared error.

    >>> r = reliability(np.array([[1, 0], [0, 1]]), np.ones((2, 2)), np.array([[0.9, 0.1], [0.2, 0.7]]), bins=2)
    >>> [(b["count"], round(b["probability"], 2), b["positive_rate"]) for b in r["bins"]], round(r["ece"], 3)
    ([(2, 0.15, 0.0), (2, 0.8, 1.0)], 0.175)
    """
    known = np.asarray(mask) > 0
    y, p = np.asarray(labels, "float64")[known], np.asarray(probabilities, "float64")[known]
    which = np.minimum((p * bins).astype(int), bins - 1)
    table, gap = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append({"low": b / bins, "high": (b + 1) / bins, "count": int(inside.sum()),
                          "probability": float(p[inside].mean()), "positive_rate": float(y[inside].mean())})
            gap += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return {"bins": table, "ece": float(gap / max(len(p), 1)), "brier": float(np.mean((p - y) ** 2)) if len(p) else None}


def reliability_markdown(table: dict) -> str:
    """A `reliability` result as a Markdown table (a reliability diagram a person reads in a model card)."""
    lines = ["| probability | cells | mean probability | share that is positive |", "|---|---|---|---|"]
    lines += [f"| {b['low']:.1f}-{b['high']:.1f} | {b['count']} | {b['probability']:.3f} | {b['positive_rate']:.3f} |"
              for b in table["bins"]]
    return "\n".join(lines)


def tagging_report(tags: list[str], labels: np.ndarray, mask: np.ndarray, logits: np.ndarray) -> dict:
    """Per-tag ROC-AUC, PR-AUC, accuracy and prediction spread over known cells, plus macro means.

    `accuracy` and `macro_f1` (the predicted class is the argmax over tags; F1 averaged over
    the tags as classes, as the 4Q literature reports it) only when every clip has exactly one
    positive tag (e.g. the 4Q quadrants), else None; for quadrant tags also `arousal_roc_auc` and
    `valence_roc_auc` (`quadrant_axes`). Tags whose known cells are all one class have no
    AUC (None) and are left out of the macro AUCs. `ece` and `brier`: calibration of the
    probabilities over all known cells (`reliability`).
    """
    probabilities = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype="float64")))
    per_tag, constant = {}, []
    for j, tag in enumerate(tags):
        known = mask[:, j] > 0
        y, p = labels[known, j], probabilities[known, j]
        both = 0 < y.sum() < len(y)
        spread = float(probabilities[:, j].std())
        per_tag[tag] = {
            "known": int(known.sum()), "positive": int(y.sum()),
            "roc_auc": float(metrics.roc_auc_score(y, p)) if both else None,
            "pr_auc": float(metrics.average_precision_score(y, p)) if both else None,
            "accuracy": float(np.mean((p > 0.5) == (y > 0.5))) if known.any() else None,
            "probability_mean": float(probabilities[:, j].mean()), "probability_std": spread,
        }
        if spread < CONSTANT_PREDICTION_STD:
            constant.append(tag)
    defined = [v for v in per_tag.values() if v["roc_auc"] is not None]
    single_label = one_tag_per_clip(labels, mask)
    truth, predicted = labels.argmax(axis=1), probabilities.argmax(axis=1)
    return {
        "n": int(len(labels)),
        "macro_roc_auc": float(np.mean([v["roc_auc"] for v in defined])) if defined else None,
        "macro_pr_auc": float(np.mean([v["pr_auc"] for v in defined])) if defined else None,
        "macro_accuracy": float(np.mean([v["accuracy"] for v in per_tag.values() if v["accuracy"] is not None])),
        "accuracy": float(np.mean(predicted == truth)) if single_label else None,
        "macro_f1": float(metrics.f1_score(truth, predicted, labels=range(len(tags)), average="macro",
                                           zero_division=0)) if single_label else None,
        **(quadrant_axes(tags, labels, probabilities) if single_label else {}),
        **{k: v for k, v in reliability(labels, mask, probabilities).items() if k != "bins"},
        "per_tag": per_tag,
        "constant_predictions": constant,
    }


def format_tagging_report(report: dict, title: str = "") -> str:
    """Per-tag table of `tagging_report`, with a loud warning for (nearly) constant predictions."""
    def number(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    width = max(8, *(len(t) for t in report["per_tag"]))
    lines = [title] if title else []
    head = f"n={report['n']}  macro_roc_auc={number(report['macro_roc_auc']).strip()}  " \
           f"macro_pr_auc={number(report['macro_pr_auc']).strip()}  macro_accuracy={report['macro_accuracy']:.3f}"
    if report["accuracy"] is not None:
        head += f"  accuracy={report['accuracy']:.3f}  macro_f1={report['macro_f1']:.3f}"
    for axis in QUADRANT_AXES:
        if f"{axis}_roc_auc" in report:
            head += f"  {axis}_roc_auc={report[f'{axis}_roc_auc']:.3f}"
    lines += [head, "", f"{'tag':<{width}}  known  pos  roc_auc  pr_auc  acc@0.5  p_mean  p_std"]
    for tag, row in report["per_tag"].items():
        lines.append(f"{tag:<{width}}  {row['known']:5d} {row['positive']:4d}  {number(row['roc_auc'])}  "
                     f"{number(row['pr_auc'])}  {number(row['accuracy'])}  {row['probability_mean']:6.3f}  "
                     f"{row['probability_std']:6.3f}")
    if report["constant_predictions"]:
        lines.append(f"\nWARNING: the model predicts (nearly) the same probability for every clip for "
                     f"{len(report['constant_predictions'])} tag(s): {', '.join(report['constant_predictions'])} "
                     f"(std across clips < {CONSTANT_PREDICTION_STD}). It has not learned them.")
    return "\n".join(lines)


def plot_history(histories: dict | list[dict], path: str | Path, title: str) -> Path:
    """Save per-epoch curves (training and validation) as a PNG, one panel per metric.

    `histories` is Keras' `History.history` or a list of them (ensemble members, drawn
    as separate lines); each metric `m` is drawn with `val_m` beside it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = [histories] if isinstance(histories, dict) else list(histories)
    names = [k for k in histories[0] if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, history in enumerate(histories):
            epochs = np.arange(1, len(history[name]) + 1)
            suffix = f" (member {i})" if len(histories) > 1 else ""
            ax.plot(epochs, history[name], color="tab:blue", alpha=0.9 - 0.2 * i, label="train" + suffix)
            if f"val_{name}" in history:
                ax.plot(epochs, history[f"val_{name}"], color="tab:orange", alpha=0.9 - 0.2 * i,
                        label="validation" + suffix)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100)


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write a matplotlib figure atomically (no half-written PNG under its name) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


def write_report(path: str | Path, report: dict) -> Path:
    """Save a report as JSON (atomically)."""
    save_json(path, report)
    return Path(path)


def plot_emotion_curve(path: str | Path, times: np.ndarray, tags: list[str], probabilities: np.ndarray,
                       title: str) -> Path:
    """PNG of per-window probabilities over time (`times`: window centres in seconds), written atomically.

    Quadrant models also get arousal and valence (`quadrant_scores`) in a second panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_scores = quadrant_scores(tags, probabilities)
    fig, axes = plt.subplots(2 if axes_scores else 1, 1, figsize=(9, 5.5 if axes_scores else 3.5), sharex=True,
                             squeeze=False)
    for j, tag in enumerate(tags):
        axes[0, 0].plot(times, probabilities[:, j], label=tag, linewidth=1.2)
    axes[0, 0].set(ylabel="probability", ylim=(0, 1), title=title)
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=min(len(tags), 4))
    if axes_scores:
        for axis, score in axes_scores.items():
            axes[1, 0].plot(times, score, label=axis, linewidth=1.5)
        axes[1, 0].axhline(0.5, color="grey", linewidth=0.6)
        axes[1, 0].set(ylabel="share of quadrants", ylim=(0, 1))
        axes[1, 0].legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("time (s, window centre)")
    return save_figure(fig, path, dpi=90)
