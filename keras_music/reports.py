"""Scores and their presentation: the JSON report, its printed table, the history plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics

from keras_music.config import save_json


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
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(path: str | Path, report: dict) -> Path:
    """Save a report as JSON (atomically)."""
    save_json(path, report)
    return Path(path)
