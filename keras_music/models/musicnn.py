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

Weights: the trained MTT and MSD checkpoints inside the musicnn 0.1.0 wheel (ISC licence;
`pip install --no-deps musicnn==0.1.0`: its metadata pins numpy<1.17, and keras_music only
reads its files, never imports it). `weights_path` converts one on first use, offline, into
`$KERAS_MUSIC_CACHE/musicnn/<name>.npz`; `python -m keras_music.musicnn_weights` does it ahead
of time (or from a checkpoint folder elsewhere, `--checkpoint`). No weights are stored in this
repository. `MUSICNN_TAGS` are the 50 output tags.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_music.config import PRETRAINED_DIR, atomic_path, cache_dir
from keras_music.models.sequence_layers import LengthMask, MaskedGlobalAveragePooling, MaskedGlobalMaxPooling, ZeroPadded

logger = logging.getLogger("keras_music.models")

NOTICE_DIR = PRETRAINED_DIR / "musicnn"  # musicnn's licence and where the weights come from
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


# --- weights ---------------------------------------------------------------------------------------

def weights_dir() -> Path:
    """Where converted weights live: `$KERAS_MUSIC_CACHE/musicnn/` (with musicnn's LICENSE)."""
    return cache_dir() / "musicnn"


def installed_checkpoint(weights: str) -> Path | None:
    """The `weights` checkpoint folder of an installed musicnn 0.1.0 (found, not imported), or None."""
    spec = importlib.util.find_spec("musicnn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / weights
        if (folder / ".index").is_file():  # musicnn saved its checkpoints as `<folder>/.index`
            return folder
    return None


def save_weights(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write converted weights atomically, with musicnn's licence notice beside them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, keep_suffix=True) as tmp:
        np.savez(tmp, **arrays)
    if not (out.parent / "LICENSE").is_file():
        shutil.copyfile(NOTICE_DIR / "LICENSE", out.parent / "LICENSE")


def weights_path(weights: str) -> Path:
    """The converted `.npz` of `weights`: from the cache, else converted once, offline, from
    the installed musicnn 0.1.0 wheel. Clear errors for unknown names and a missing wheel."""
    if weights not in WEIGHTS:
        raise ValueError(f"unknown musicnn weights {weights!r}; choose from {list(WEIGHTS)}.")
    path = weights_dir() / f"{weights}.npz"
    if path.is_file():
        return path
    checkpoint = installed_checkpoint(weights)
    if checkpoint is None:
        raise FileNotFoundError(
            f"musicnn's {weights} weights are not converted yet ({path}) and musicnn 0.1.0 is not installed to "
            f"convert them from. Install it with `{INSTALL_HINT}`, or convert a checkpoint folder with "
            f"`python -m keras_music.musicnn_weights --checkpoint <musicnn 0.1.0>/musicnn/{weights}/`.")
    logger.info("converting musicnn's %s weights from %s into %s (once)", weights, checkpoint, path)
    save_weights(checkpoint_arrays(checkpoint), path)
    return path


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
