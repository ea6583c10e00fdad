"""What tagging one file gives: `TagResult` (a file's scores, tags, curve and embedding).

A result is built from the model's window logits (`result_from_windows`): a file's
probabilities are the sigmoid of the mean of its windows' logits, as `keras_music.evaluate`
scores clips (`keras_music.scoring`), and its tags are those at or above the export's
per-tag thresholds. `to_record` / `from_record` are the JSON records `predict --out` writes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Window:
    """One scoring window of a file: its span in seconds and its tag probabilities."""

    start: float
    end: float
    probabilities: dict[str, float]


@dataclasses.dataclass(frozen=True)
class TagResult:
    """A file's (or waveform's) tags.

    Attributes:
        file: the file's path as given, or None for a waveform.
        seconds: the audio's length.
        probabilities: `{tag: probability}` for every output tag of the model.
        tags: the tags at or above the export's thresholds, in the model's tag order.
        windows: the per-window scores over time (the emotion curve), in time order.
        embedding: the mean of the windows' embeddings (asked for with `embeddings=True`), else None.
        error: why the file could not be tagged (`tag_files` only); the other fields are then empty.

    Example:

    >>> result = TagResult(file="a.mp3", seconds=30.0, tags=["quadrant_q1"],
    ...     probabilities={"quadrant_q1": 0.9, "quadrant_q2": 0.1, "quadrant_q3": 0.05, "quadrant_q4": 0.3})
    >>> round(result.arousal, 3), round(result.valence, 3)
    (0.741, 0.889)
    """

    file: str | None
    seconds: float
    probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    windows: list[Window] = dataclasses.field(default_factory=list)
    embedding: np.ndarray | None = dataclasses.field(default=None, compare=False)  # arrays have no `==` bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        """False when the file could not be tagged (see `error`)."""
        return self.error is None

    def _axes(self) -> dict:
        from keras_music.reports import quadrant_scores  # here: reports brings scikit-learn

        if not self.probabilities:
            return {}
        labels = list(self.probabilities)
        return quadrant_scores(labels, np.array([[self.probabilities[t] for t in labels]]))

    @property
    def arousal(self) -> float | None:
        """For 4Q quadrant models: the share of the quadrant probability on Q1 + Q2 (energetic), in [0, 1]; else None."""
        axes = self._axes()
        return float(axes["arousal"][0]) if axes else None

    @property
    def valence(self) -> float | None:
        """For 4Q quadrant models: the share of the quadrant probability on Q1 + Q4 (positive), in [0, 1]; else None."""
        axes = self._axes()
        return float(axes["valence"][0]) if axes else None

    def embedding_values(self) -> list[float]:
        """The embedding as the floats records carry (9 significant digits: float32's precision); [] if none."""
        return [] if self.embedding is None else [float(f"{v:.9g}") for v in self.embedding]

    def to_record(self, windows: bool = False) -> dict:
        """The JSON record `predict` writes: file, seconds, probabilities, tags (+ embedding, + windows)."""
        if not self.ok:
            return {"file": self.file, "error": self.error}
        record = {"file": self.file, "seconds": self.seconds, "probabilities": self.probabilities, "tags": self.tags}
        if self.embedding is not None:
            record["embedding"] = self.embedding_values()
        if windows:
            record["windows"] = [dataclasses.asdict(w) for w in self.windows]
        return record

    @classmethod
    def from_record(cls, record: dict) -> TagResult:
        """The inverse of `to_record` (a line of `predict --out X.jsonl`)."""
        if record.get("error"):
            return cls(file=record["file"], seconds=0.0, error=record["error"])
        embedding = record.get("embedding")
        return cls(file=record["file"], seconds=record["seconds"], probabilities=record["probabilities"],
                   tags=record["tags"], windows=[Window(**w) for w in record.get("windows", [])],
                   embedding=None if embedding is None else np.asarray(embedding))

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """A PNG of the per-window curve (quadrant models: also arousal and valence), written atomically."""
        from keras_music.reports import plot_emotion_curve

        labels = list(self.probabilities)
        times = np.array([(w.start + w.end) / 2 for w in self.windows])
        probabilities = np.array([[w.probabilities[t] for t in labels] for w in self.windows])
        return plot_emotion_curve(path, times, labels, probabilities,
                                  title or (Path(self.file).name if self.file else "waveform"))


def mean_windows(values: np.ndarray) -> np.ndarray:
    """The mean over a file's windows `(windows, n)` -> `(n,)`, as evaluate averages logits (`WindowMeans`)."""
    from keras_music.scoring import WindowMeans

    means = WindowMeans(1, values.shape[1])
    means.add(np.zeros(len(values), int), values)
    return means.means()[0]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits))


@dataclasses.dataclass(frozen=True)
class WindowGeometry:
    """How an export's windows map to seconds: its rate, recipe (frame hop) and window/hop in frames."""

    sample_rate: int
    recipe: object  # FeatureRecipe
    window: int
    hop: int


def result_from_windows(file: str | None, num_samples: int, logits: np.ndarray, starts: np.ndarray,
                        labels: list[str], thresholds: np.ndarray, geometry: WindowGeometry,
                        embeddings: np.ndarray | None = None) -> TagResult:
    """A file's `TagResult` from its windows' logits `(windows, tags)` and start frames (and embeddings)."""
    probabilities = sigmoid(mean_windows(logits))
    frames = geometry.recipe.num_frames(num_samples)
    width = geometry.window if geometry.window and geometry.hop else frames
    seconds = geometry.recipe.hop_length / geometry.sample_rate  # per frame; window times are frame times
    length = num_samples / geometry.sample_rate
    windows = [Window(round(s * seconds, 3), round(min((s + width) * seconds, length), 3),
                      dict(zip(labels, map(float, sigmoid(row)))))
               for s, row in zip(starts.tolist(), logits)]
    return TagResult(
        file=None if file is None else str(file),
        seconds=round(length, 3),
        probabilities=dict(zip(labels, map(float, probabilities))),
        tags=[t for t, p, th in zip(labels, probabilities, thresholds) if p >= th],
        windows=windows,
        embedding=None if embeddings is None else mean_windows(embeddings),
    )
