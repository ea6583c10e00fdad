"""musicnn (Pons and Serra, ISMIR 2019 LBD; ISC licence) in Keras 3, with its trained weights.

The architecture of musicnn 0.1.0's `build_musicnn` (`MTT_musicnn`, `MSD_musicnn`), layer for
layer, on the `musicnn` feature recipe (16 kHz, 96 mel bands, hop 256; `config.RECIPES`):

* front end: batch norm of the log-mel, then musically motivated filters read across the
  whole spectrogram: two *timbral* (vertical) convolutions, 7 frames x 38 / 67 bands, 204
  filters each, and three *temporal* (horizontal) ones, 128 / 64 / 32 frames x 1 band, 51
  filters each; ReLU, batch norm, max over frequency; 561 values per frame;
* mid end: three 1-D convolutions over time (7 frames, 64 filters, ReLU, batch norm), the
  second and third with residual connections; front- and mid-end outputs concatenated:
  753 values per frame (dense connections);
* back end: max and mean over time (interleaved per channel, as musicnn flattens them),
  batch norm, dropout 0.5, dense 200 + ReLU + batch norm (the *penultimate* layer, musicnn's
  usual embedding), dropout 0.5, dense 50 tag logits.

Unlike the TF1 original, which scores fixed 187-frame (3 s) patches (and cannot score a
shorter file), every stage here also takes a `length` per example: frames beyond it are
zeroed before each convolution, as the original's convolution padding zeroes what lies past
a patch's end, and kept out of the pooling, so a padded batch gives exactly what each clip
alone gives. On full patches the outputs are musicnn's (tested).

Weights: the trained MTT and MSD checkpoints of musicnn 0.1.0 (ISC licence), converted to
`.npz` and shipped in `keras_music/pretrained/musicnn/` with a manifest of their sha256
(`weights.json`), checked on every load. Without the shipped files (a trimmed install),
`weights_path` converts the checkpoints of an installed musicnn 0.1.0 wheel (`pip install
--no-deps musicnn==0.1.0`: its metadata pins numpy<1.17; keras_music only reads its files,
never imports it) once, offline, into `$KERAS_MUSIC_CACHE/musicnn/<name>.npz`.
`python -m keras_music.musicnn_weights` converts ahead of time, and `--packaged` rebuilds the
shipped files and their manifest from the wheel. `MUSICNN_TAGS` are the 50 output tags.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np

from keras_music.config import MUSICNN_MANIFEST_NAME, MUSICNN_PACKAGED_DIR, atomic_path, cache_dir
from keras_music.models.sequence_layers import LengthMask, MaskedGlobalAveragePooling, MaskedGlobalMaxPooling, ZeroPadded

logger = logging.getLogger("keras_music.models")

MUSICNN_VERSION = "0.1.0"  # the musicnn release whose checkpoints are converted
REBUILD_HINT = "python -m keras_music.musicnn_weights --packaged"
INSTALL_HINT = ("pip install --no-deps musicnn==0.1.0  (ISC licence; --no-deps because its metadata pins "
                "numpy<1.17; keras_music reads its checkpoint files and never imports it)")
BANDS = 96  # the musicnn recipe's mel bands (timbral kernels are sized from them)
PATCH_FRAMES = 187  # musicnn's input patch: 3 s at 16 kHz, hop 256
MIDEND_FILTERS = 64
BACKEND_UNITS = 200
FRONTEND_WIDTH = 2 * 204 + 3 * 51  # 561 values per frame
MIDEND_WIDTH = FRONTEND_WIDTH + 3 * MIDEND_FILTERS  # 753

# musicnn 0.1.0's configuration.py (ISC licence, Music Technology Group, UPF).
MUSICNN_TAGS = {
    "MTT_musicnn": [
        "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
        "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals",
        "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft",
        "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal",
        "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral"],
    "MSD_musicnn": [
        "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
        "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
        "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
        "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
        "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
        "indie pop", "sad", "House", "happy"],
}
WEIGHTS = tuple(MUSICNN_TAGS)

# How a person reads each of musicnn's tags: (group, name shown). Synonyms share a name (MTT's `female`,
# `woman`, `female voice` ... and MSD's `female vocalists` are all "female vocals"); a group's names are
# ranked by the highest probability among their tags (`keras_music.tagging.results.top_tags`).
_GENRES = {"rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
           "classic rock", "soul", "indie rock", "folk", "punk", "blues", "hard rock", "ambient", "experimental",
           "country", "easy listening", "funk", "electro", "heavy metal", "indie pop", "classical", "techno",
           "indian", "opera", "new age"}
_SYNONYMS = {
    "female vocalists": ("vocals", "female vocals"), "female vocalist": ("vocals", "female vocals"),
    "female": ("vocals", "female vocals"), "woman": ("vocals", "female vocals"),
    "female vocal": ("vocals", "female vocals"), "female voice": ("vocals", "female vocals"),
    "male vocalists": ("vocals", "male vocals"), "male": ("vocals", "male vocals"), "man": ("vocals", "male vocals"),
    "male vocal": ("vocals", "male vocals"), "male voice": ("vocals", "male vocals"),
    "vocal": ("vocals", "vocals"), "vocals": ("vocals", "vocals"), "singing": ("vocals", "vocals"),
    "voice": ("vocals", "vocals"), "instrumental": ("vocals", "instrumental"),
    "no vocals": ("vocals", "instrumental"), "no vocal": ("vocals", "instrumental"),
    "no voice": ("vocals", "instrumental"), "choir": ("vocals", "choir"), "choral": ("vocals", "choir"),
    "00s": ("era", "2000s"), "90s": ("era", "1990s"), "80s": ("era", "1980s"), "70s": ("era", "1970s"),
    "60s": ("era", "1960s"), "oldies": ("era", "oldies"),
    "electronica": ("genre", "electronic"), "Hip-Hop": ("genre", "hip-hop"), "rnb": ("genre", "r&b"),
    "House": ("genre", "house"), "Progressive rock": ("genre", "progressive rock"), "classic": ("genre", "classical"),
    "chillout": ("mood", "chill"), "chill": ("mood", "chill"), "Mellow": ("mood", "mellow"),
    "beats": ("sound", "beat"),
    **{tag: ("mood", tag) for tag in ("beautiful", "party", "sexy", "catchy", "sad", "happy", "weird")},
    **{tag: ("instrument", tag) for tag in ("guitar", "acoustic", "strings", "drums", "piano", "violin", "synth",
                                            "harpsichord", "flute", "sitar", "harp", "cello")},
    **{tag: ("sound", tag) for tag in ("slow", "fast", "beat", "loud", "quiet", "soft", "solo")},
}


def tag_reading(tag: str) -> tuple[str, str]:
    """`(group, name shown)` of one of musicnn's tags (a group of `config.TAG_GROUPS`); KeyError for other tags."""
    return ("genre", tag) if tag in _GENRES else _SYNONYMS[tag]

# Keras layer -> the TF1 variable scope that musicnn's graph gave it (creation order).
_FRONTEND = [("timbral_74", 7, 38, 204, "valid"), ("timbral_77", 7, 67, 204, "valid"),
             ("temporal_128", 128, 1, 51, "same"), ("temporal_64", 64, 1, 51, "same"),
             ("temporal_32", 32, 1, 51, "same")]
CHECKPOINT_NAMES = {
    "input_bn": "batch_normalization",
    **{name: f"conv2d{'' if i == 0 else f'_{i}'}" for i, (name, *_) in enumerate(_FRONTEND)},
    **{f"{name}_bn": f"batch_normalization_{i + 1}" for i, (name, *_) in enumerate(_FRONTEND)},
    **{f"midend_conv{i}": f"conv2d_{i + 4}" for i in (1, 2, 3)},
    **{f"midend_bn{i}": f"batch_normalization_{i + 5}" for i in (1, 2, 3)},
    "pool_bn": "batch_normalization_9",
    "penultimate_dense": "dense",
    "penultimate": "batch_normalization_10",
    "musicnn_logits": "dense_1",
}
_KERAS_VARIABLES = {"Conv2D": ("kernel", "bias"), "Conv1D": ("kernel", "bias"), "Dense": ("kernel", "bias"),
                    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}


def musicnn_body(mel, length, prefix: str = "") -> dict:
    """musicnn's front and mid end on `mel` `(batch, T, 96)` with real lengths `length`.

    Returns a dict of `(batch, T, C)` tensors: `timbral` (408), `temporal` (153), `frontend`
    (561), `cnn1` .. `cnn3` (64 each), `midend` (753, the back end's input), and `mask`.
    Layer names are those of `CHECKPOINT_NAMES`, with `prefix` in front.
    """
    mask = LengthMask(name=f"{prefix}frame_mask")([mel, length])
    x = keras.layers.Reshape((-1, BANDS, 1), name=f"{prefix}mel_as_image")(mel)
    x = keras.layers.BatchNormalization(name=f"{prefix}input_bn")(x)
    x = ZeroPadded(name=f"{prefix}input_zero_padding")([x, mask])
    padded = keras.layers.ZeroPadding2D(((3, 3), (0, 0)), name=f"{prefix}timbral_time_padding")(x)
    branches = []
    for name, frames, bands, filters, padding in _FRONTEND:
        y = keras.layers.Conv2D(filters, (frames, bands), padding=padding, activation="relu",
                                name=f"{prefix}{name}")(padded if padding == "valid" else x)
        y = keras.layers.BatchNormalization(name=f"{prefix}{name}_bn")(y)
        y = keras.layers.MaxPooling2D((1, y.shape[2]), name=f"{prefix}{name}_max_over_bands")(y)
        branches.append(keras.layers.Reshape((-1, filters), name=f"{prefix}{name}_frames")(y))
    timbral = keras.layers.Concatenate(name=f"{prefix}timbral")(branches[:2])
    temporal = keras.layers.Concatenate(name=f"{prefix}temporal")(branches[2:])
    frontend = keras.layers.Concatenate(name=f"{prefix}frontend")([timbral, temporal])
    frontend = ZeroPadded(name=f"{prefix}frontend_zero_padding")([frontend, mask])
    layers, x = [], frontend
    for i in (1, 2, 3):
        y = keras.layers.Conv1D(MIDEND_FILTERS, 7, padding="same", activation="relu", name=f"{prefix}midend_conv{i}")(x)
        y = keras.layers.BatchNormalization(name=f"{prefix}midend_bn{i}")(y)
        if i > 1:  # residual connections from the second layer on
            y = keras.layers.Add(name=f"{prefix}midend_residual{i}")([y, x])
        x = ZeroPadded(name=f"{prefix}midend_zero_padding{i}")([y, mask])
        layers.append(x)
    midend = keras.layers.Concatenate(name=f"{prefix}midend")([frontend, *layers])
    return {"timbral": timbral, "temporal": temporal, "frontend": frontend, "cnn1": layers[0], "cnn2": layers[1],
            "cnn3": layers[2], "midend": midend, "mask": mask}


def musicnn_pooling(midend, mask, prefix: str = ""):
    """musicnn's back-end input: max and mean over real frames, interleaved per channel
    (`[max_0, mean_0, max_1, ...]`, the order of its flattened `(753, 2)` pool), `(batch, 1506)`."""
    maximum = MaskedGlobalMaxPooling(name=f"{prefix}max_pool")([midend, mask])
    mean = MaskedGlobalAveragePooling(name=f"{prefix}mean_pool")([midend, mask])
    stacked = keras.layers.Concatenate(name=f"{prefix}max_mean")(
        [keras.layers.Reshape((-1, 1), name=f"{prefix}{n}_column")(t) for n, t in (("max", maximum), ("mean", mean))])
    return keras.layers.Flatten(name=f"{prefix}pool")(stacked), maximum, mean


def musicnn_backend(pool, prefix: str = "", dropout: bool = True):
    """Batch norm, dropout (musicnn's training regime; off for a frozen copy, which must compute
    the same in training as in inference), dense 200 + ReLU + batch norm (the penultimate embedding)."""
    x = keras.layers.BatchNormalization(name=f"{prefix}pool_bn")(pool)
    if dropout:
        x = keras.layers.Dropout(0.5, name=f"{prefix}pool_dropout")(x)
    x = keras.layers.Dense(BACKEND_UNITS, activation="relu", name=f"{prefix}penultimate_dense")(x)
    return keras.layers.BatchNormalization(name=f"{prefix}penultimate")(x)


def build_musicnn(weights: str | None = "MTT_musicnn") -> keras.Model:
    """musicnn as published: `{mel (batch, T, 96), length}` -> a dict of its outputs.

    Outputs: `logits` (50 tags of `MUSICNN_TAGS[weights]`; musicnn's taggram is their
    sigmoid), `penultimate` (200), `mean_pool` / `max_pool` (753), and the per-frame
    `timbral`, `temporal`, `cnn1` .. `cnn3`. `weights`: `MTT_musicnn`, `MSD_musicnn` or None
    (untrained).
    """
    inputs = {"mel": keras.Input((None, BANDS), name="mel"), "length": keras.Input((), dtype="int32", name="length")}
    body = musicnn_body(inputs["mel"], inputs["length"])
    pool, maximum, mean = musicnn_pooling(body["midend"], body["mask"])
    penultimate = musicnn_backend(pool)
    x = keras.layers.Dropout(0.5, name="penultimate_dropout")(penultimate)
    logits = keras.layers.Dense(len(MUSICNN_TAGS["MTT_musicnn"]), name="musicnn_logits")(x)
    outputs = {"logits": logits, "penultimate": penultimate, "mean_pool": mean, "max_pool": maximum,
               **{k: body[k] for k in ("timbral", "temporal", "cnn1", "cnn2", "cnn3")}}
    model = keras.Model(inputs, outputs, name=weights or "musicnn")
    if weights:
        load_pretrained(model, weights)
    return model


def tag_layer(weights: str, prefix: str = "") -> keras.layers.Dense:
    """musicnn's trained tag layer of `weights` (penultimate 200 -> `MUSICNN_TAGS[weights]` logits),
    frozen: the 50 tags its authors trained, to put on a network's `penultimate` output."""
    layer = keras.layers.Dense(len(MUSICNN_TAGS[weights]), name=f"{prefix}musicnn_logits", trainable=False)
    layer.build((None, BACKEND_UNITS))
    with np.load(weights_path(weights)) as arrays:
        layer.set_weights([arrays[f"musicnn_logits/{variable}"] for variable in ("kernel", "bias")])
    return layer


# --- weights ---------------------------------------------------------------------------------------

class WeightsDigestError(ValueError):
    """A shipped weights file whose sha256 is not the one its manifest records."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(path: str | Path) -> str:
    """The sha256 of a shipped weights file, checked against the manifest beside it
    (`weights.json`): a damaged or replaced file is an error, never loaded."""
    path = Path(path)
    manifest = path.parent / MUSICNN_MANIFEST_NAME
    advice = (f"reinstall keras_music (`pip install --force-reinstall --no-deps keras_music`) or rebuild the "
              f"file from musicnn {MUSICNN_VERSION} (`{REBUILD_HINT}`)")
    try:
        expected = json.loads(manifest.read_text())["files"][path.name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsDigestError(f"{path}: its sha256 is not recorded in {manifest} "
                                 f"({type(error).__name__}: {error}); {advice}.") from None
    actual = file_sha256(path)
    if actual != expected:
        raise WeightsDigestError(f"{path}: sha256 {actual} does not match {expected} recorded in {manifest}; "
                                 f"the file is damaged or was replaced: {advice}.")
    return actual


def packaged_weights(weights: str, folder: str | Path = MUSICNN_PACKAGED_DIR) -> Path | None:
    """The shipped `.npz` of `weights` in `folder`, its digest checked; None when it is not there."""
    path = Path(folder) / f"{weights}.npz"
    if not path.is_file():
        return None
    check_digest(path)
    return path


def weights_dir() -> Path:
    """Where weights converted on this machine live: `$KERAS_MUSIC_CACHE/musicnn/` (with musicnn's LICENSE)."""
    return cache_dir() / "musicnn"


def installed_checkpoint(weights: str) -> Path | None:
    """The `weights` checkpoint folder of an installed musicnn 0.1.0 (found, not imported), or None."""
    spec = importlib.util.find_spec("musicnn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / weights
        if (folder / ".index").is_file():  # musicnn saved its checkpoints as `<folder>/.index`
            return folder
    return None


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """`np.savez_compressed`, reproducibly: arrays in name order, fixed zip timestamps (numpy
    stamps the current time), so the same arrays give the same bytes. Written atomically."""
    with atomic_path(out, keep_suffix=True) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(arrays):
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(entry, "w", force_zip64=True) as file:
                    np.lib.format.write_array(file, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def save_weights(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write converted weights atomically, with musicnn's licence notice beside them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_npz(arrays, out)
    if not (out.parent / "LICENSE").is_file():
        shutil.copyfile(MUSICNN_PACKAGED_DIR / "LICENSE", out.parent / "LICENSE")


def converted_weights(weights: str) -> Path:
    """The `.npz` of `weights` converted on this machine: from the cache, else converted once,
    offline, from the installed musicnn 0.1.0 wheel (the fallback when none is shipped)."""
    path = weights_dir() / f"{weights}.npz"
    if path.is_file():
        return path
    checkpoint = installed_checkpoint(weights)
    if checkpoint is None:
        raise FileNotFoundError(
            f"musicnn's {weights} weights are not shipped in {MUSICNN_PACKAGED_DIR} (reinstall keras_music) "
            f"nor converted ({path}), and musicnn {MUSICNN_VERSION} is not installed to convert them from. Install it with "
            f"`{INSTALL_HINT}`, or convert a checkpoint folder with "
            f"`python -m keras_music.musicnn_weights --checkpoint <musicnn 0.1.0>/musicnn/{weights}/`.")
    logger.info("converting musicnn's %s weights from %s into %s (once)", weights, checkpoint, path)
    save_weights(checkpoint_arrays(checkpoint), path)
    return path


def weights_path(weights: str) -> Path:
    """The `.npz` of `weights`: the shipped file (digest checked), else `converted_weights`.
    Clear errors for unknown names, a damaged shipped file and nothing to convert from."""
    if weights not in WEIGHTS:
        raise ValueError(f"unknown musicnn weights {weights!r}; choose from {list(WEIGHTS)}.")
    return packaged_weights(weights) or converted_weights(weights)


def write_packaged_weights(folder: str | Path = MUSICNN_PACKAGED_DIR) -> dict:
    """Convert both checkpoints of the installed musicnn 0.1.0 wheel into `folder` (by default the
    package's own `pretrained/musicnn/`): `<name>.npz` and the manifest of their sha256 and
    sources, `weights.json`. Returns the manifest. How the shipped files are rebuilt."""
    try:
        version = importlib.metadata.version("musicnn")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"musicnn {MUSICNN_VERSION} is not installed: `{INSTALL_HINT}`.") from None
    if version != MUSICNN_VERSION:
        raise ValueError(f"musicnn {version} is installed; the shipped weights come from {MUSICNN_VERSION}: "
                         f"`{INSTALL_HINT}`.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for weights in WEIGHTS:
        checkpoint = installed_checkpoint(weights)
        if checkpoint is None:
            raise FileNotFoundError(f"the installed musicnn {version} has no {weights}/ checkpoint folder.")
        arrays = checkpoint_arrays(checkpoint)
        out = folder / f"{weights}.npz"
        save_weights(arrays, out)
        files[out.name] = {
            "sha256": file_sha256(out), "bytes": out.stat().st_size, "arrays": len(arrays),
            "values": int(sum(a.size for a in arrays.values())), "dtype": "float32",
            "source": {f"musicnn/{weights}/{source.name}": file_sha256(source)
                       for source in sorted(checkpoint.iterdir())
                       if source.name == ".index" or source.name.startswith(".data-")}}  # what is read
    manifest = {"musicnn_version": version, "licence": "ISC (LICENSE beside this file)", "command": REBUILD_HINT,
                "files": files}
    with atomic_path(folder / MUSICNN_MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_pretrained(model: keras.Model, weights: str, prefix: str = "") -> list[str]:
    """Set every musicnn layer of `model` (named as `musicnn_body` / `musicnn_backend` name
    them, after `prefix`) from the converted weights (`weights_path`); returns the layers set.
    Layers of `CHECKPOINT_NAMES` that `model` lacks (e.g. musicnn's 50-tag layer under our own
    head) are skipped; a shape mismatch is an error."""
    names = {layer.name for layer in model.layers}
    done = []
    with np.load(weights_path(weights)) as arrays:
        for layer_name in CHECKPOINT_NAMES:
            if prefix + layer_name not in names:
                continue
            layer = model.get_layer(prefix + layer_name)
            layer.set_weights([arrays[f"{layer_name}/{v}"] for v in _KERAS_VARIABLES[type(layer).__name__]])
            done.append(layer.name)
    if not done:
        raise ValueError(f"{model.name} has no musicnn layers (prefix {prefix!r}).")
    return done


def checkpoint_arrays(checkpoint: str | Path) -> dict[str, np.ndarray]:
    """Read a musicnn 0.1.0 TF1 checkpoint (its folder, e.g. `.../musicnn/MTT_musicnn/`) into
    `{keras layer/variable: array}`, converting the mid end's 2-D kernels `(7, C, 1, 64)` to
    the 1-D kernels `(7, C, 64)` of `Conv1D`."""
    import tensorflow as tf

    prefix = str(checkpoint)
    if Path(prefix).is_dir():
        if not (Path(prefix) / ".index").is_file():
            raise FileNotFoundError(
                f"{checkpoint}: not a musicnn checkpoint folder: it has no `.index` file (musicnn 0.1.0 saved each "
                f"model as `<folder>/.index` + `<folder>/.data-00000-of-00001`, e.g. the wheel's musicnn/MSD_musicnn/).")
        prefix = prefix.rstrip("/") + "/"  # musicnn saved its checkpoints as `<folder>/.index`
    try:
        # Not tf.train.load_checkpoint: given a folder it follows the `checkpoint` file, whose
        # path is the author's machine.
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except (ValueError, tf.errors.OpError) as error:
        raise FileNotFoundError(f"{checkpoint}: not a musicnn checkpoint folder ({error}).") from None
    arrays = {}
    for layer_name, scope in CHECKPOINT_NAMES.items():
        kind = "BatchNormalization" if "bn" in layer_name or layer_name == "penultimate" else "Dense"
        for variable in _KERAS_VARIABLES[kind]:
            if not reader.has_tensor(f"{scope}/{variable}"):
                raise ValueError(f"{checkpoint}: no variable {scope}/{variable}; not a musicnn_musicnn checkpoint "
                                 f"(MTT_musicnn or MSD_musicnn; the vgg models have another architecture).")
            value = reader.get_tensor(f"{scope}/{variable}")
            if layer_name.startswith("midend_conv") and variable == "kernel":
                value = value[:, :, 0, :]
            arrays[f"{layer_name}/{variable}"] = value.astype("float32")
    return arrays
