"""What tagging one file gives: `TagResult` (a file's scores, tags, curve and embedding).

A result is built from the model's window outputs (`result_from_windows`): a file's
probabilities are the sigmoid of the mean of its windows' logits, as `keras_music.evaluate`
scores clips (`keras_music.scoring`), and its tags are those at or above the export's
per-tag thresholds. Exports whose pretrained front end has tags of its own (musicnn's MSD and
MTT tags under the packaged model; metadata.json's `tag_sets`) also give those, averaged the
same way: they have no thresholds, so a person reads the `top_k` most probable of each group
(genre, mood, instrument, vocals, era, sound; `top_tags`). `to_record` / `from_record` are the
JSON records `predict --out` writes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_music.config import TAG_GROUPS
from keras_music.quadrants import quadrant_columns, quadrant_name, quadrant_scores


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
        tag_probabilities: `{tag set: {tag: probability}}`: the pretrained front end's own tags
            (the packaged model: musicnn's `msd` and `mtt` tags, 50 each); {} for other exports.
        top_tags: `{group: [name, ...]}`: the `top_k` most probable names of each group of those
            tags, for a person (genre, mood, instrument, vocals, era, sound).

    Example:

    >>> result = TagResult(file="a.mp3", seconds=30.0, tags=["quadrant_q1"],
    ...     probabilities={"quadrant_q1": 0.9, "quadrant_q2": 0.1, "quadrant_q3": 0.05, "quadrant_q4": 0.3})
    >>> result.quadrant, round(result.arousal, 3), round(result.valence, 3)
    ('Q1 happy/excited', 0.741, 0.889)
    """

    file: str | None
    seconds: float
    probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    windows: list[Window] = dataclasses.field(default_factory=list)
    embedding: np.ndarray | None = dataclasses.field(default=None, compare=False)  # arrays have no `==` bool
    error: str | None = None
    tag_probabilities: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    top_tags: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when the file could not be tagged (see `error`)."""
        return self.error is None

    @property
    def axes(self) -> dict[str, float]:
        """For 4Q quadrant models `{"arousal": ..., "valence": ...}` (`keras_music.quadrants`), else {}."""
        labels = list(self.probabilities)
        scores = quadrant_scores(labels, [[self.probabilities[t] for t in labels]]) if labels else {}
        return {axis: float(values[0]) for axis, values in scores.items()}

    @property
    def arousal(self) -> float | None:
        """For 4Q quadrant models: the share of the quadrant probability on Q1 + Q2 (energetic), in [0, 1]; else None."""
        return self.axes.get("arousal")

    @property
    def valence(self) -> float | None:
        """For 4Q quadrant models: the share of the quadrant probability on Q1 + Q4 (positive), in [0, 1]; else None."""
        return self.axes.get("valence")

    @property
    def quadrant(self) -> str | None:
        """For 4Q quadrant models: the most probable quadrant as a person reads it (`Q1 happy/excited`); else None."""
        if quadrant_columns(list(self.probabilities)) is None:
            return None
        return quadrant_name(max(self.probabilities, key=self.probabilities.get))

    def embedding_values(self) -> list[float]:
        """The embedding as the floats records carry (9 significant digits: float32's precision); [] if none."""
        return [] if self.embedding is None else [float(f"{v:.9g}") for v in self.embedding]

    def to_record(self, windows: bool = False) -> dict:
        """The JSON record `predict` writes: file, seconds, probabilities, tags (4Q models: + quadrant,
        arousal, valence; exports with tag sets: + top_tags, tag_probabilities; + embedding, + windows)."""
        if not self.ok:
            return {"file": self.file, "error": self.error}
        record = {"file": self.file, "seconds": self.seconds, "probabilities": self.probabilities, "tags": self.tags}
        if self.quadrant is not None:
            record.update(quadrant=self.quadrant, **{axis: round(v, 4) for axis, v in self.axes.items()})
        if self.tag_probabilities:
            record.update(top_tags=self.top_tags, tag_probabilities=self.tag_probabilities)
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
                   embedding=None if embedding is None else np.asarray(embedding),
                   tag_probabilities=record.get("tag_probabilities", {}), top_tags=record.get("top_tags", {}))

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


@dataclasses.dataclass(frozen=True)
class WindowOutputs:
    """What `serve_audio` gives for windows of one source: the tags' logits `(windows, tags)`, the
    embeddings `(windows, width)` (when asked for) and each tag set's logits `{name: (windows, n)}`."""

    logits: np.ndarray
    embeddings: np.ndarray | None = None
    tag_sets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.logits)

    def take(self, positions: np.ndarray) -> WindowOutputs:
        """The windows at `positions`."""
        return WindowOutputs(self.logits[positions], None if self.embeddings is None else self.embeddings[positions],
                             {name: values[positions] for name, values in self.tag_sets.items()})

    @classmethod
    def join(cls, parts: list[WindowOutputs]) -> WindowOutputs:
        """The windows of `parts` (chunks of one file, in order) as one."""
        return cls(np.concatenate([p.logits for p in parts]),
                   None if parts[0].embeddings is None else np.concatenate([p.embeddings for p in parts]),
                   {name: np.concatenate([p.tag_sets[name] for p in parts]) for name in parts[0].tag_sets})


def tag_groups(tag_sets: dict) -> list[str]:
    """The groups of metadata.json's `tag_sets`, in `config.TAG_GROUPS` order (others after, sorted)."""
    groups = {group for meta in tag_sets.values() for group in meta["groups"]}
    return [g for g in TAG_GROUPS if g in groups] + sorted(groups - set(TAG_GROUPS))


def top_tags(tag_probabilities: dict[str, dict[str, float]], tag_sets: dict, k: int) -> dict[str, list[str]]:
    """The `k` most probable names of each group (`tag_groups` order), from the tag sets' probabilities
    and how metadata.json's `tag_sets` reads each tag (group, name shown). A name several tags share
    (synonyms, or the same tag from two networks) scores the highest of their probabilities.

    >>> sets = {"msd": {"labels": ["rock", "80s", "male vocalists"], "groups": ["genre", "era", "vocals"],
    ...                 "names": ["rock", "1980s", "male vocals"]},
    ...         "mtt": {"labels": ["rock", "male"], "groups": ["genre", "vocals"], "names": ["rock", "male vocals"]}}
    >>> top_tags({"msd": {"rock": 0.4, "80s": 0.2, "male vocalists": 0.1}, "mtt": {"rock": 0.7, "male": 0.3}}, sets, 1)
    {'genre': ['rock'], 'vocals': ['male vocals'], 'era': ['1980s']}
    """
    best: dict[str, dict[str, float]] = {}
    for name, probabilities in tag_probabilities.items():
        meta = tag_sets[name]
        for label, group, shown in zip(meta["labels"], meta["groups"], meta["names"]):
            scores = best.setdefault(group, {})
            scores[shown] = max(scores.get(shown, 0.0), probabilities[label])
    return {group: sorted(best[group], key=lambda shown: -best[group][shown])[:k] for group in tag_groups(tag_sets)}


def result_from_windows(file: str | None, num_samples: int, windows: WindowOutputs, starts: np.ndarray,
                        labels: list[str], thresholds: np.ndarray, geometry: WindowGeometry,
                        tag_sets: dict | None = None, top_k: int = 3) -> TagResult:
    """A file's `TagResult` from its windows' outputs and start frames. `tag_sets`: metadata.json's
    (how to read the tag sets' outputs); `top_k`: names per group in `top_tags`."""
    logits, embeddings = windows.logits, windows.embeddings
    probabilities = sigmoid(mean_windows(logits))
    frames = geometry.recipe.num_frames(num_samples)
    width = geometry.window if geometry.window and geometry.hop else frames
    seconds = geometry.recipe.hop_length / geometry.sample_rate  # per frame; window times are frame times
    length = num_samples / geometry.sample_rate
    curve = [Window(round(s * seconds, 3), round(min((s + width) * seconds, length), 3),
                    dict(zip(labels, map(float, sigmoid(row)))))
             for s, row in zip(starts.tolist(), logits)]
    tag_probabilities = {name: dict(zip(tag_sets[name]["labels"], map(float, sigmoid(mean_windows(values)))))
                         for name, values in windows.tag_sets.items()}
    return TagResult(
        file=None if file is None else str(file),
        seconds=round(length, 3),
        probabilities=dict(zip(labels, map(float, probabilities))),
        tags=[t for t, p, th in zip(labels, probabilities, thresholds) if p >= th],
        windows=curve,
        embedding=None if embeddings is None else mean_windows(embeddings),
        tag_probabilities=tag_probabilities,
        top_tags=top_tags(tag_probabilities, tag_sets, top_k) if tag_probabilities else {},
    )
