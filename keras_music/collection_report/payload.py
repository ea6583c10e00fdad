"""A collection's records as the data of the report page (`report_payload`): compact, for 10,000 files.

The page needs, per file, its scores (every probability, arousal and valence), the names a
person reads (quadrant, top tags), a link to the audio, its curve and its nearest tracks.
Numbers go as little-endian base64 arrays (probabilities as uint16 steps of 1/65535, times
and similarities as float32), so 10,000 files stay a few MB and the browser decodes them at
once; curves are decoded only when a file's panel opens.
"""

from __future__ import annotations

import base64
import os
import time
import urllib.parse
from pathlib import Path

import numpy as np

from keras_music.quadrants import quadrant_columns, quadrant_name, quadrant_scores
from keras_music.tagging.records import Collection
from keras_music.version import __version__

AXES = ("arousal", "valence")
PROBABILITY_STEPS = 65535  # probabilities in [0, 1] as uint16


def encoded(values, dtype: str) -> str:
    """`values` as base64 of a little-endian array of `dtype` (uint16 probabilities: steps of 1/65535)."""
    values = np.asarray(values, dtype="float64")
    if dtype == "uint16":
        values = np.rint(np.clip(values, 0.0, 1.0) * PROBABILITY_STEPS)
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def audio_link(file: str, audio_root: Path, page_folder: Path) -> str:
    """The file as a link relative to the page's folder (so the page works beside the music), URL-quoted."""
    path = Path(file)
    path = path if path.is_absolute() else audio_root / path
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(page_folder))
    return urllib.parse.quote(Path(relative).as_posix())


def score_table(collection: Collection) -> tuple[list[str], np.ndarray]:
    """Every score of every file: `(names, (files, scores))`: arousal and valence (4Q models), the
    model's labels (as a person reads them) and each tag set's tags (`msd: rock`)."""
    results = collection.results
    labels = list(results[0].probabilities)
    names, columns = [], []
    probabilities = np.array([[r.probabilities[t] for t in labels] for r in results])
    axes = quadrant_scores(labels, probabilities)
    for axis in AXES if axes else ():
        names.append(axis)
        columns.append(axes[axis])
    names += [quadrant_name(t) for t in labels]
    columns += list(probabilities.T)
    for tag_set, values in results[0].tag_probabilities.items():
        for tag in values:
            names.append(f"{tag_set}: {tag}")
            columns.append(np.array([r.tag_probabilities.get(tag_set, {}).get(tag, np.nan) for r in results]))
    return names, np.stack(columns, axis=1)


def curve_table(collection: Collection) -> dict | None:
    """The per-window curves of all files: offsets into the windows, their times and values (the
    model's labels, then arousal and valence for 4Q models); None when the records have none."""
    if not collection.has_windows:
        return None
    labels = list(collection.results[0].probabilities)
    quadrants = quadrant_columns(labels) is not None
    offsets, starts, ends, rows = [0], [], [], []
    for result in collection.results:
        values = np.array([[w.probabilities[t] for t in labels] for w in result.windows]).reshape(-1, len(labels))
        if quadrants and len(values):
            axes = quadrant_scores(labels, values)
            values = np.concatenate([values, np.stack([axes[a] for a in AXES], axis=1)], axis=1)
        rows.append(values)
        starts += [w.start for w in result.windows]
        ends += [w.end for w in result.windows]
        offsets.append(offsets[-1] + len(result.windows))
    width = len(labels) + (len(AXES) if quadrants else 0)
    values = np.concatenate([r.reshape(-1, width) for r in rows]) if starts else np.zeros((0, width))
    return {"names": [quadrant_name(t) for t in labels] + (list(AXES) if quadrants else []),
            "labels": len(labels), "offsets": encoded(offsets, "uint32"), "start": encoded(starts, "float32"),
            "end": encoded(ends, "float32"), "values": encoded(values, "uint16")}


def top_tag_table(collection: Collection) -> dict:
    """Each file's top tags as indices into one vocabulary per group (`{group: [names]}`)."""
    groups = list(dict.fromkeys(g for r in collection.results for g in r.top_tags))
    vocabulary = {g: sorted({n for r in collection.results for n in r.top_tags.get(g, [])}) for g in groups}
    index = {g: {n: i for i, n in enumerate(names)} for g, names in vocabulary.items()}
    per_file = [[[index[g][n] for n in r.top_tags.get(g, [])] for g in groups] for r in collection.results]
    return {"groups": groups, "names": vocabulary, "files": per_file}


def report_payload(collection: Collection, page_folder: Path, audio_root: Path | None = None,
                   similar: tuple[np.ndarray, np.ndarray] | None = None, title: str | None = None) -> dict:
    """The page's data (JSON-ready) for `collection`.

    Args:
        collection: the tagged files (`keras_music.tagging.records.read_collection`).
        page_folder: where the page will be written (audio links are relative to it).
        audio_root: where relative file names in the records start (default: the current folder,
            as `predict` was run from there).
        similar: `(indices, scores)` of each file's nearest tracks `(files, k)`, or None (no embeddings).
    """
    results = collection.results
    labels = list(results[0].probabilities) if results else []
    quadrants = quadrant_columns(labels) is not None
    audio_root = Path.cwd() if audio_root is None else Path(audio_root)
    score_names, scores = score_table(collection) if results else ([], np.zeros((0, 0)))
    colours = [quadrant_name(t) for t in labels]
    missing = []
    if not collection.has_windows:
        missing.append("curves: these records have no per-window scores. Tag with `keras-music predict ... "
                       "--per-window --out FILE.jsonl` to see each file's curve over time.")
    if similar is None:
        missing.append("similar tracks: these records have no embeddings. Tag with `keras-music predict ... "
                       "--embeddings --out FILE.jsonl` to list each file's most similar tracks.")
    payload = {
        "title": title or f"{collection.path.name}: {len(results):,} tagged files",
        "records": collection.path.name, "model": collection.model, "version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        "quadrants": quadrants, "axes": list(AXES) if quadrants else score_names[:2],
        "files": [r.file for r in results],
        "links": [audio_link(r.file, audio_root, page_folder) for r in results],
        "seconds": [r.seconds for r in results],
        "colour_names": colours,
        "colour": [int(np.argmax([r.probabilities[t] for t in labels])) for r in results],
        "tags": [[labels.index(t) for t in r.tags] for r in results],
        "score_names": score_names,
        "scores": encoded(np.nan_to_num(scores, nan=0.0), "uint16"),
        "top_tags": top_tag_table(collection),
        "curves": curve_table(collection) if results else None,
        "similar": None,
        "failures": [list(f) for f in collection.failures],
        "missing": missing,
    }
    if similar is not None:
        indices, similarities = similar
        payload["similar"] = {"k": int(indices.shape[1]), "indices": encoded(indices, "uint32"),
                              "scores": encoded(similarities, "float32")}
    return payload
