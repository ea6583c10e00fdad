"""Configs shared across the package, the strict JSON round-trip, and atomic writes.

`TrainingConfig` (how any model is fitted) and `FeatureRecipe` (how audio becomes
features) live here; each model family's own config dataclass lives in its module under
`keras_music/models/` and is listed in `keras_music.models.registry`. A copy of every
config is saved beside every trained model (`config.json`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import typing
from pathlib import Path


# What ships inside the package: musicnn's converted weights (two ~3 MB .npz files, with the
# manifest of their sha256, `MUSICNN_MANIFEST_NAME`, their licence and provenance; loaded by
# `models.musicnn.weights_path`) and the default emotion model's head, thresholds and card
# (`predict` without `--model`; built by `python -m keras_music.default_model`, made whole on
# first use by `tagging.presets.installed`).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MUSICNN_PACKAGED_DIR = PRETRAINED_DIR / "musicnn"
MUSICNN_MANIFEST_NAME = "weights.json"
DEFAULT_EMOTION_MODEL = PRETRAINED_DIR / "emotion_4q"
# The groups in which a person reads the tags of a pretrained vocabulary (musicnn's MSD and MTT tags),
# in the order outputs show them.
TAG_GROUPS = ("genre", "mood", "instrument", "vocals", "era", "sound")


def cache_dir() -> Path:
    """Where generated files live (demo data, converted weights, built models, embeddings):
    `$KERAS_MUSIC_CACHE`, else `~/.cache/keras_music`."""
    return Path(os.environ.get("KERAS_MUSIC_CACHE", Path.home() / ".cache" / "keras_music"))


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How a model is fitted: epochs, batches, early stopping and the seeded split.

    Args:
        epochs: int. Upper bound on epochs; early stopping usually ends sooner.
        batch_size: int. Examples per gradient step.
        patience: int. Epochs without validation improvement before stopping.
        min_epochs: int. Epochs before early stopping may act or pick a checkpoint; on small
            validation sets an early lucky epoch otherwise wins.
        seed: int. Seeds weights, dropout and shuffling.
        split_seed: int. Seeds the train/validation/test split by song; kept apart from
            `seed` so runs with different seeds are scored on the same test songs.
        validation_fraction: float. Share of songs held out for early stopping.
        test_fraction: float. Share of songs held out for the final report. 80/10/10 keeps
            ~1,500 rows in each held-out part of the Kaggle file, and gives the artist
            lookup as many training songs as possible.
    """

    epochs: int = 100
    batch_size: int = 64
    patience: int = 20
    min_epochs: int = 0
    seed: int = 0
    split_seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


def field_changes(changes: dict) -> str:
    """`spec_augment=0.1, weights="MSD_musicnn+MTT_musicnn"`: changed config fields as benchmark
    rows name them (`--set`), so the default model's builder finds its row by that name."""
    return ", ".join(f"{field}={json.dumps(value)}" for field, value in changes.items())


# Each task's training defaults (flags left unset take these).
EMOTION_TRAINING = TrainingConfig(epochs=60, batch_size=16, patience=10, min_epochs=10,
                                  validation_fraction=0.15, test_fraction=0.15)
# Genre: large batches and short patience; with 8 heads in one network the best validation epoch
# comes at 10-25 (bench.genre --folds 5), so a fit takes under a minute on 2 CPUs.
GENRE_TRAINING = TrainingConfig(batch_size=256, patience=5)


@dataclasses.dataclass(frozen=True)
class FeatureRecipe:
    """How audio becomes named feature frames (`mel`, and `mfcc` unless `n_mfcc` is 0);
    saved beside every feature store and model.

    The defaults are the recipe of the shared 4Q features (librosa 0.11 conventions,
    soxr resampling), so features we compute and the shared ones are interchangeable.
    Named presets: `RECIPES`. Read saved recipes with `FeatureRecipe.from_dict`: a field
    added later and missing from an older recipe.json takes the behaviour of the code that
    wrote it (`LEGACY_RECIPE_FIELDS`), so every saved recipe keeps its meaning.

    Args:
        sample_rate: int. Audio is resampled to this rate (Hz). Defaults to `22050`.
        n_fft: int. FFT size and frame length (samples). Defaults to `2048`.
        hop_length: int. Samples between frames. Defaults to `1024`.
        n_mels: int. Mel bands. Defaults to `64`.
        fmin: float. Lowest mel edge (Hz). Defaults to `0.0`.
        fmax: float or None. Highest mel edge (Hz); None = Nyquist. Defaults to `None`.
        log_floor: float. `10 * log10(power + log_floor)`; 1e-10 makes silence -100 dB.
        n_mfcc: int. MFCCs kept: orthonormal DCT-II of the compressed mel. 0 = no `mfcc`
            feature. Defaults to `20`.
        mel_scale: str. `slaney` (librosa's default) or `htk` (tf.signal's).
        mel_norm: str. `slaney` (area-normalised filters, librosa's default) or `none`.
        center: bool. Centre frames by padding n_fft // 2 zeros at both ends (librosa's
            `center=True, pad_mode='constant'`), so T = 1 + n_samples // hop_length.
        max_seconds: float or None. Extraction keeps at most this much audio from the
            start. Defaults to `30.0`.
        mel_compression: str. How mel power becomes the `mel` feature: `db` is
            `10 * log10(power + log_floor)`; `musicnn` is musicnn's input, `log10(10000 * x + 1)`
            of the power cast to float16 (its pre-trained weights expect that rounding).
        resampler: str. How extraction and `predict` bring audio to `sample_rate`: `soxr_hq`
            (libsoxr's high quality; what librosa and the shared 4Q features use, and 5x
            faster than the FFT resampler on 30 s clips) or `fft` (the core-TF FFT resampler
            the exported `serve_audio` graph uses for audio sent at another rate; stores
            extracted before this field existed used it).
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    log_floor: float = 1e-10
    n_mfcc: int = 20
    mel_scale: str = "slaney"
    mel_norm: str = "slaney"
    center: bool = True
    max_seconds: float | None = 30.0
    mel_compression: str = "db"
    resampler: str = "soxr_hq"

    @classmethod
    def from_dict(cls, values: dict, source: str = "recipe") -> "FeatureRecipe":
        """A saved recipe (recipe.json, a run's or an export's config), fields it predates
        filled with what the code that wrote it did; unknown fields are refused by name."""
        return config_from_dict(cls, {**LEGACY_RECIPE_FIELDS, **values}, source=source)

    def __post_init__(self):
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}.")
        if self.mel_norm not in ("slaney", "none"):
            raise ValueError(f"mel_norm must be 'slaney' or 'none', got {self.mel_norm!r}.")
        if self.resampler not in RESAMPLERS:
            raise ValueError(f"resampler must be one of {RESAMPLERS}, got {self.resampler!r}.")
        if self.mel_compression not in MEL_COMPRESSIONS:
            raise ValueError(f"mel_compression must be one of {MEL_COMPRESSIONS}, got {self.mel_compression!r}.")
        if not 0 <= self.n_mfcc <= self.n_mels:
            raise ValueError(f"n_mfcc must be in 0..n_mels ({self.n_mels}), got {self.n_mfcc}.")
        if self.hop_length <= 0 or self.n_fft <= 0 or self.sample_rate <= 0:
            raise ValueError("sample_rate, n_fft and hop_length must be positive.")
        top = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < top <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={self.fmin}, fmax={top}.")

    @property
    def feature_dims(self) -> dict[str, int]:
        """The named features this recipe produces and their sizes, in their fixed order
        (`mel` first): the keys of feature stores, pipelines and model inputs."""
        return {"mel": self.n_mels, **({"mfcc": self.n_mfcc} if self.n_mfcc else {})}

    @property
    def mel_fmax(self) -> float:
        """fmax with None resolved to the Nyquist frequency."""
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    def num_frames(self, num_samples: int) -> int:
        """Frames that `num_samples` samples give (T = 1 + n // hop with centring)."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return max(0, 1 + (num_samples - self.n_fft) // self.hop_length)


MEL_COMPRESSIONS = ("db", "musicnn")
RESAMPLERS = ("soxr_hq", "fft")
# What a recipe saved before a field existed meant: extraction then used the FFT resampler.
LEGACY_RECIPE_FIELDS = {"resampler": "fft"}

RECIPES = {
    # The shared 4Q features (`FeatureRecipe()`): 22,050 Hz, 64 dB mel bands + 20 MFCC.
    "4q": FeatureRecipe(),
    # musicnn's input (Pons and Serra 2019; its `batch_data`): 16 kHz, 96 Slaney mel bands of
    # 512-sample frames every 256, float16 power, log10(10000 x + 1). Whole files, as musicnn
    # tags whole tracks.
    "musicnn": FeatureRecipe(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, n_mfcc=0,
                             mel_compression="musicnn", max_seconds=None),
}


def config_to_dict(config) -> dict:
    """Plain JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls, values: dict, source: str = "config"):
    """Build `cls` from a dict, rejecting unknown keys by name and restoring tuples."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        if typing.get_origin(hints[name]) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False):
    """Yield a temporary path beside `path`, renamed onto `path` only when the block succeeds.

    Every file the package writes goes through here, so a crash never leaves half a file
    under its final name (a failed block removes its temporary file). `keep_suffix` names
    it `name.tmp.ext` for writers that choose a format by extension (Keras, matplotlib);
    otherwise it is `name.ext.tmp`.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}" if keep_suffix else f"{path.name}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_json(path: str | Path, payload: dict) -> None:
    """Write JSON atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
