"""CAL500 emotion labels from the original UCSD annotation files.

The vocabulary pairs each `Emotion-X` with `NOT-Emotion-X`. For song s and emotion X
(the paper's construction): mask = 1 if X or NOT-X is set in `hardAnnotations.txt`,
label = 1 if X is set. A cell with neither is *unknown* (annotators did not agree), not
negative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_music.data.tags import TagTable, slug

EMOTION_PREFIX = "Emotion-"
NEGATION_PREFIX = "NOT-"


def emotion_pairs(vocab: list[str]) -> list[tuple[str, int, int]]:
    """`(emotion tag, column of X, column of NOT-X)` for every emotion with both columns."""
    column = {tag: i for i, tag in enumerate(vocab)}
    pairs = [(tag, i, column[NEGATION_PREFIX + tag]) for i, tag in enumerate(vocab)
             if tag.startswith(EMOTION_PREFIX) and NEGATION_PREFIX + tag in column]
    if not pairs:
        raise ValueError("no Emotion-X / NOT-Emotion-X pairs found in the vocabulary.")
    return pairs


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"CAL500 file {str(path)!r} does not exist (expected the UCSD "
                                "CAL500_noAudioFeatures folder: songNames.txt, vocab.txt, hardAnnotations.txt).")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_cal500_emotions(labels_dir: str | Path) -> TagTable:
    """The emotion TagTable of CAL500 (502 songs x 18 emotions in the original files).

    Args:
        labels_dir: the folder with `songNames.txt`, `vocab.txt` and `hardAnnotations.txt`.

    Raises:
        FileNotFoundError: a file is missing. ValueError: the matrix does not match the
            song list and vocabulary, or holds values other than 0/1 (the message says where).
    """
    labels_dir = Path(labels_dir)
    songs = _read_lines(labels_dir / "songNames.txt")
    vocab = _read_lines(labels_dir / "vocab.txt")
    matrix_path = labels_dir / "hardAnnotations.txt"
    rows = _read_lines(matrix_path)
    if len(rows) != len(songs):
        raise ValueError(f"{matrix_path}: {len(rows)} rows, but songNames.txt lists {len(songs)} songs.")
    hard = np.zeros((len(songs), len(vocab)), dtype="float32")
    for i, row in enumerate(rows):
        values = row.split(",")
        if len(values) != len(vocab) or any(v not in ("0", "1") for v in values):
            raise ValueError(f"{matrix_path}, line {i + 1}: expected {len(vocab)} comma-separated 0/1 values "
                             f"(one per vocab.txt tag), got {len(values)}.")
        hard[i] = np.asarray(values, dtype="float32")
    pairs = emotion_pairs(vocab)
    positive = hard[:, [p for _, p, _ in pairs]]
    negative = hard[:, [n for _, _, n in pairs]]
    both = np.argwhere((positive > 0) & (negative > 0))
    if len(both):
        song, emotion = both[0]
        raise ValueError(f"{matrix_path}: song {songs[song]!r} has both {pairs[emotion][0]!r} and its NOT- tag.")
    return TagTable(clip_ids=songs, tags=[slug(tag) for tag, _, _ in pairs],
                    labels=positive, mask=np.maximum(positive, negative))


def load_cal500_vectors(path: str | Path) -> dict[str, np.ndarray]:
    """The 68 aggregated (MULAN / Marsyas) audio features per song, keyed by song id.

    Args:
        path: `mulan_features.csv`: a `song` column, then one numeric column per feature.

    Raises:
        FileNotFoundError, or ValueError naming the line and column of a bad value.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CAL500 features {str(path)!r} do not exist (expected mulan_features.csv).")
    frame = pd.read_csv(path)
    if "song" not in frame.columns:
        raise ValueError(f"{path}: missing column 'song'.")
    values = frame.drop(columns=["song"]).apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype="float64"))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(f"{path}, line {row + 2}, column {values.columns[column]!r}: not a finite number.")
    return dict(zip(frame["song"], values.to_numpy(dtype="float32")))
