"""Deterministic synthetic data, so the whole flow runs with no external files.

`make_genre_table` imitates the Kaggle genre CSV: same header, class-dependent feature
distributions, artists tied to genres, gaps in the nullable columns, some durations
in minutes, and a few tracks repeated under a second genre. It goes through the same
validation and cleaning as the real file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from keras_music.config import atomic_path
from keras_music.data.genre import GENRE_COLUMNS, MINUTES_THRESHOLD

_WORLD_SEED = 20221013  # the paper's date; fixes the synthetic task itself
# [0, 1] columns drawn per class from a Gaussian around a class centre.
_UNIT_COLUMNS = ("danceability", "energy", "speechiness", "acousticness", "instrumentalness",
                 "liveness", "valence")


def make_genre_table(num_rows: int = 3000, num_classes: int = 11, seed: int = 0) -> pd.DataFrame:
    """A synthetic genre table with the Kaggle header, raw (mixed duration units, gaps).

    The "world" (class centres, artists and their genres) is fixed; `seed` only draws the
    rows, so tables with different seeds are fresh samples of the same task (a model
    trained on one scores the other).

    Args:
        num_rows: int. Rows to generate. Defaults to `3000`.
        num_classes: int. Number of genre ids. Defaults to `11`.
        seed: int. Same seed, same table. Defaults to `0`.
    """
    world = np.random.default_rng(_WORLD_SEED + num_classes)
    centres = world.uniform(0.15, 0.85, size=(num_classes, len(_UNIT_COLUMNS)))
    tempo_centre = world.uniform(80, 160, size=num_classes)
    loudness_centre = world.uniform(-14, -4, size=num_classes)
    num_artists = num_classes * 25
    artist_class = world.integers(0, num_classes, size=num_artists)

    rng = np.random.default_rng(seed)

    artist = rng.integers(0, num_artists, size=num_rows)
    # Most rows follow their artist's genre; the rest are another genre at random.
    label = np.where(rng.random(num_rows) < 0.75, artist_class[artist], rng.integers(0, num_classes, num_rows))
    noise = rng.normal(0.0, 0.25, size=(num_rows, len(_UNIT_COLUMNS)))
    units = np.clip(centres[label] + noise, 0.0, 1.0)

    columns: dict[str, object] = {
        "Artist Name": [f"Artist {a:04d}" for a in artist],
        "Track Name": [f"Track {seed}-{i:05d}" for i in range(num_rows)],
        "Popularity": np.clip(rng.normal(45 + 2 * label, 12), 0, 100).round(),
        "key": rng.integers(1, 12, size=num_rows).astype(float),
        "loudness": (loudness_centre[label] + rng.normal(0, 2.0, num_rows)).round(3),
        "mode": (rng.random(num_rows) < 0.3 + 0.4 * (label % 2)).astype(int),
        "tempo": (tempo_centre[label] + rng.normal(0, 12, num_rows)).round(3),
        "time_signature": rng.choice([3, 4, 4, 4, 5], size=num_rows),
        "Class": label,
    }
    for i, name in enumerate(_UNIT_COLUMNS):
        columns[name] = units[:, i].round(4)
    duration_ms = rng.normal(200_000 + 8_000 * label, 30_000).clip(60_000, 600_000).round()
    # Like the real file: some classes written in minutes (the unit must not reach the model).
    in_minutes = (label % 4 == 0) & (duration_ms / 60_000 < MINUTES_THRESHOLD)
    columns["duration_in min/ms"] = np.where(in_minutes, (duration_ms / 60_000).round(6), duration_ms)

    table = pd.DataFrame(columns)
    for name, rate in (("Popularity", 0.03), ("key", 0.1), ("instrumentalness", 0.2)):
        table.loc[rng.random(num_rows) < rate, name] = np.nan
    # A few tracks appear twice with a second genre, as in the real data.
    repeats = table.sample(frac=0.05, random_state=seed).copy()
    repeats["Class"] = (repeats["Class"] + 1 + rng.integers(0, num_classes - 1, len(repeats))) % num_classes
    table = pd.concat([table, repeats]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return table[list(GENRE_COLUMNS)]


def write_genre_demo_csv(path: str | Path, num_rows: int = 3000, seed: int = 0) -> Path:
    """Write the synthetic table as a CSV with the Kaggle header (temp file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        make_genre_table(num_rows=num_rows, seed=seed).to_csv(tmp, index=False)
    return path


# --- synthetic music with emotion cues -----------------------------------------------------

DEMO_SAMPLE_RATE = 22050
DEMO_TAGS = ("happy", "sad", "energetic", "calm", "bright")
_MAJOR, _MINOR = (0, 4, 7), (0, 3, 7)
_PROGRESSION = (0, 5, 7, 0)  # I - IV - V - I (i - iv - v - i in minor)


def _demo_attributes(rng) -> dict:
    return {"tempo": float(rng.uniform(60, 180)), "major": bool(rng.random() < 0.5),
            "loudness": float(rng.uniform(0.05, 0.8)), "brightness": float(rng.uniform(0.0, 1.0)),
            "root": int(rng.integers(45, 57))}


def _tone(freq: float, brightness: float, rate: int, seconds: float = 1.2) -> np.ndarray:
    """A decaying harmonic tone; brighter tones keep more energy in upper harmonics."""
    t = np.arange(int(seconds * rate)) / rate
    rolloff = 3.0 - 2.2 * brightness
    harmonics = np.array([h for h in range(1, 9) if freq * h < rate / 2 - 500], dtype="float64")
    wave = (harmonics[:, None] ** -rolloff * np.sin(2 * np.pi * freq * harmonics[:, None] * t)).sum(axis=0)
    return wave * np.exp(-t / 0.35)


def synthesize_clip(attributes: dict, seconds: float = 10.0, rate: int = DEMO_SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Music-like audio from attributes: chords and an arpeggio at `tempo`, major or minor,
    with a noise drum on each beat; scaled to peak `loudness`."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate))
    beat = 60.0 / attributes["tempo"]
    triad = _MAJOR if attributes["major"] else _MINOR
    tones = {}  # each pitch is synthesised once per clip
    for index, start in enumerate(np.arange(0.0, seconds, beat)):
        chord_root = attributes["root"] + _PROGRESSION[(index // 2) % len(_PROGRESSION)]
        notes = [chord_root + 12 + triad[index % 3]] + ([chord_root + i for i in triad] if index % 2 == 0 else [])
        begin = int(start * rate)
        for note in notes:
            if note not in tones:
                tones[note] = _tone(440.0 * 2 ** ((note - 69) / 12), attributes["brightness"], rate)
            tone = tones[note][: out.size - begin]
            out[begin:begin + tone.size] += tone * (0.6 if note > chord_root + 11 else 0.3)
        drum = rng.normal(0, 1, int(0.08 * rate)) * np.exp(-np.arange(int(0.08 * rate)) / (0.015 * rate))
        out[begin:begin + drum.size] += drum[: out.size - begin] * 0.5 * attributes["loudness"] / 0.8
    out += rng.normal(0, 1e-3, out.size)
    return (out / np.max(np.abs(out)) * attributes["loudness"]).astype("float32")


def demo_tags(a: dict) -> dict[str, str]:
    """Emotion cells from attributes: '1', '0', or '' (unknown) inside ambiguous zones."""
    def cell(positive: bool, negative: bool) -> str:
        return "1" if positive else "0" if negative else ""

    fast, slow = a["tempo"] >= 120, a["tempo"] < 90
    loud, soft = a["loudness"] >= 0.5, a["loudness"] < 0.3
    return {
        "happy": cell(a["major"] and fast, not a["major"] or slow),
        "sad": cell(not a["major"] and slow, a["major"] or fast),
        "energetic": cell(loud and fast, soft or slow),
        "calm": cell(soft and a["tempo"] < 100, loud or a["tempo"] >= 130),
        "bright": cell(a["brightness"] >= 0.65, a["brightness"] < 0.35),
    }


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM mono WAV (temp file, then rename)."""
    from keras_music.audio.decoding import wav_bytes

    with atomic_path(path) as tmp:
        tmp.write_bytes(wav_bytes(samples, rate))


def make_emotion_demo(root: str | Path, num_clips: int = 200, seconds: float = 10.0, seed: int = 0,
                      unknown_rate: float = 0.05) -> Path:
    """Write `root/audio/*.wav` and `root/labels.csv` for the synthetic emotion task.

    Tags (`DEMO_TAGS`) follow tempo, mode, loudness and brightness, with unknown cells
    where the cue is ambiguous plus `unknown_rate` of cells at random (like annotators who
    disagree). Existing files are kept, so a second call costs nothing.

    Returns:
        `root`.
    """
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(num_clips):
        attributes = _demo_attributes(rng)
        clip_id = f"demo_{i:04d}"
        path = root / "audio" / f"{clip_id}.wav"
        if not path.is_file():
            write_wav(path, synthesize_clip(attributes, seconds, DEMO_SAMPLE_RATE, seed=seed * 100_003 + i),
                      DEMO_SAMPLE_RATE)
        cells = demo_tags(attributes)
        for tag in cells:
            if rng.random() < unknown_rate:
                cells[tag] = ""
        rows.append({"clip_id": clip_id, **cells})
    with atomic_path(root / "labels.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return root
