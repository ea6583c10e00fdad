"""The Keras 3 port of musicnn against musicnn 0.1.0's own outputs (../shared/reference/musicnn).

The reference was made with musicnn's `extractor`, which has a bug for every patch after the
first: its loop unpacks the new batch's `cnn1..cnn3` and `penultimate` into other names and
appends the first patch's values again (`features['penultimate'] = np.concatenate((...,
penultimate_))` with `penultimate_` from patch 0). `taggram`, `mean_pool`, `max_pool`,
`timbral` and `temporal` are per patch; `penultimate` and `cnn1..3` are compared on patch 0,
the one the reference really holds (tested below, so a corrected reference shows up here).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from keras_music.config import MUSICNN_MANIFEST_NAME, MUSICNN_PACKAGED_DIR
from keras_music.models.musicnn import (
    CHECKPOINT_NAMES,
    MUSICNN_TAGS,
    WEIGHTS,
    WeightsDigestError,
    build_musicnn,
    checkpoint_arrays,
    converted_weights,
    file_sha256,
    packaged_weights,
    weights_path,
)

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "musicnn"
FILES = ("mozart_k545_bright_22k_mono_16bit", "beethoven_op18no4_minor_44k_stereo",
         "bach_chorale_bwv269_calm_22k_mono_64k")
TOLERANCE = 1e-4  # outputs (taggram, penultimate, pools); measured: taggram <= 6e-7, penultimate <= 3e-6
# Inner layers, relative to max(|value|, 1): float32 sums in another order (oneDNN vs TF1's
# kernels) grow through the residual mid end; measured up to 1.5e-4 on cnn3.
INNER_TOLERANCE = 1e-3


def reference(weights: str, stem: str) -> dict:
    path = REFERENCE / f"{weights}__{stem}.npz"
    if not path.is_file():
        pytest.skip(f"musicnn reference not found at {path} (expected ../shared beside the repo)")
    with np.load(path) as arrays:
        return dict(arrays)


@pytest.fixture(scope="module", params=WEIGHTS)
def musicnn(request):
    return request.param, build_musicnn(request.param)


def run(model, patches: np.ndarray, lengths=None) -> dict:
    lengths = np.full(len(patches), patches.shape[1], "int32") if lengths is None else np.asarray(lengths, "int32")
    return model.predict({"mel": patches, "length": lengths}, verbose=0)


@pytest.mark.parametrize("stem", FILES)
def test_port_reproduces_musicnn_from_its_patches(musicnn, stem):
    weights, model = musicnn
    ref = reference(weights, stem)
    patches = ref["patches"]
    batch, frames = patches.shape[:2]
    out = run(model, patches)
    taggram = 1 / (1 + np.exp(-out["logits"].astype("float64")))
    errors = {
        "taggram": np.abs(taggram - ref["taggram"]).max(),
        "penultimate (patch 0)": np.abs(out["penultimate"][0] - ref["penultimate"][0]).max(),
        "mean_pool": np.abs(out["mean_pool"] - ref["mean_pool"]).max(),
        "max_pool (relative)": (np.abs(out["max_pool"] - ref["max_pool"]) / np.maximum(np.abs(ref["max_pool"]), 1)).max(),
        "timbral (relative)": (np.abs(out["timbral"].reshape(batch * frames, -1) - ref["timbral"])
                               / np.maximum(np.abs(ref["timbral"]), 1)).max(),
        "temporal": np.abs(out["temporal"].reshape(batch * frames, -1) - ref["temporal"]).max(),
        **{f"{k} (patch 0, relative)": (np.abs(out[k][0] - ref[k][:frames]) / np.maximum(np.abs(ref[k][:frames]), 1)).max()
           for k in ("cnn1", "cnn2", "cnn3")},
    }
    print(f"\n{weights} {stem} ({batch} patches): " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    inner = ("timbral", "temporal", "cnn")
    assert all(value <= (INNER_TOLERANCE if key.startswith(inner) else TOLERANCE) for key, value in errors.items()), errors


def test_reference_repeats_patch_zero_beyond_the_first_patch():
    """Why penultimate / cnn1..3 are compared on patch 0 only (musicnn 0.1.0's extractor bug)."""
    ref = reference("MTT_musicnn", FILES[1])
    frames = ref["patches"].shape[1]
    assert len(ref["penultimate"]) > 1
    assert all(np.array_equal(row, ref["penultimate"][0]) for row in ref["penultimate"])
    assert np.array_equal(ref["cnn1"][frames:2 * frames], ref["cnn1"][:frames])
    assert not np.array_equal(ref["timbral"][frames:2 * frames], ref["timbral"][:frames])  # these are per patch


def test_padding_and_batch_neighbours_change_nothing(musicnn):
    """A clip padded into a longer batch scores as it does alone: zeros beyond its end before
    every convolution (musicnn's own zero padding) and pooling over its real frames only."""
    _, model = musicnn
    rng = np.random.default_rng(0)
    short = rng.uniform(0, 3, (1, 150, 96)).astype("float32")
    long = rng.uniform(0, 3, (1, 220, 96)).astype("float32")
    alone = run(model, short)
    batch = np.concatenate([np.pad(short, ((0, 0), (0, 70), (0, 0)), constant_values=7.0), long])
    together = run(model, batch, [150, 220])
    for key in ("logits", "penultimate", "mean_pool", "max_pool"):
        np.testing.assert_allclose(together[key][:1], alone[key], atol=1e-4, rtol=1e-4, err_msg=key)


def musicnn_package() -> Path:
    spec = importlib.util.find_spec("musicnn")  # found, not imported (it would turn off eager execution)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("musicnn 0.1.0 not installed (`pip install musicnn==0.1.0 --no-deps`; CI installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def test_tags_and_weights_files():
    for weights in WEIGHTS:
        assert len(MUSICNN_TAGS[weights]) == 50 and len(set(MUSICNN_TAGS[weights])) == 50
        assert weights_path(weights) == MUSICNN_PACKAGED_DIR / f"{weights}.npz"  # shipped, no wheel needed
        with np.load(weights_path(weights)) as arrays:
            assert {name.split("/")[0] for name in arrays.files} == set(CHECKPOINT_NAMES)
            assert all(arrays[name].dtype == np.float32 for name in arrays.files)
    with pytest.raises(ValueError, match="unknown musicnn weights 'MTT_vgg'"):
        weights_path("MTT_vgg")
    assert (weights_path("MTT_musicnn").parent / "LICENSE").is_file()
    manifest = json.loads((MUSICNN_PACKAGED_DIR / MUSICNN_MANIFEST_NAME).read_text())
    provenance = (MUSICNN_PACKAGED_DIR / "README.md").read_text()  # states the digests of what ships
    assert all(entry["sha256"] in provenance for entry in manifest["files"].values())


def test_packaged_weights_equal_a_fresh_conversion_from_the_wheel(tmp_path, capsys):
    """The shipped files hold exactly what the musicnn 0.1.0 wheel converts to, their manifest
    names the wheel's checkpoint files by digest, and `--packaged` rebuilds them (elsewhere here)."""
    from keras_music import musicnn_weights

    package = musicnn_package()
    shipped = json.loads((MUSICNN_PACKAGED_DIR / MUSICNN_MANIFEST_NAME).read_text())
    assert shipped["musicnn_version"] == "0.1.0" and set(shipped["files"]) == {f"{w}.npz" for w in WEIGHTS}
    for weights in WEIGHTS:
        converted = checkpoint_arrays(package / weights)
        with np.load(MUSICNN_PACKAGED_DIR / f"{weights}.npz") as arrays:
            assert sorted(arrays.files) == sorted(converted)
            for name in arrays.files:
                np.testing.assert_array_equal(arrays[name], converted[name], err_msg=f"{weights} {name}")
        entry = shipped["files"][f"{weights}.npz"]
        assert entry["sha256"] == file_sha256(MUSICNN_PACKAGED_DIR / f"{weights}.npz")
        assert entry["values"] == sum(a.size for a in converted.values())
        assert entry["source"] == {f"musicnn/{weights}/{name}": file_sha256(package / weights / name)
                                   for name in (".index", ".data-00000-of-00001")}

    assert musicnn_weights.main(["--packaged", str(tmp_path / "rebuilt")]) == 0
    assert "sha256" in capsys.readouterr().out
    rebuilt = json.loads((tmp_path / "rebuilt" / MUSICNN_MANIFEST_NAME).read_text())
    for name, entry in rebuilt["files"].items():
        assert entry["sha256"] == file_sha256(tmp_path / "rebuilt" / name)
        assert packaged_weights(name.removesuffix(".npz"), tmp_path / "rebuilt") == tmp_path / "rebuilt" / name
        assert {k: v for k, v in entry.items() if k not in ("sha256", "bytes")} == \
            {k: v for k, v in shipped["files"][name].items() if k not in ("sha256", "bytes")}
    with pytest.raises(SystemExit):
        musicnn_weights.parse_args(["--packaged", "--checkpoint", str(package / "MSD_musicnn")])


def test_a_tampered_copy_fails_the_digest_check(tmp_path):
    """A shipped file that is not the one its manifest records is refused with both digests
    and how to repair it, never loaded; so is one the manifest does not list."""
    copy = tmp_path / "musicnn"
    shutil.copytree(MUSICNN_PACKAGED_DIR, copy)
    assert packaged_weights("MSD_musicnn", copy) == copy / "MSD_musicnn.npz"
    recorded = file_sha256(copy / "MSD_musicnn.npz")
    data = bytearray((copy / "MSD_musicnn.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "MSD_musicnn.npz").write_bytes(bytes(data))
    with pytest.raises(WeightsDigestError) as error:
        packaged_weights("MSD_musicnn", copy)
    message = str(error.value)
    assert str(copy / "MSD_musicnn.npz") in message and "\n" not in message
    assert recorded in message and file_sha256(copy / "MSD_musicnn.npz") in message
    assert "--force-reinstall" in message and "python -m keras_music.musicnn_weights --packaged" in message
    assert packaged_weights("MTT_musicnn", copy) == copy / "MTT_musicnn.npz"  # the other one is intact

    manifest = json.loads((copy / MUSICNN_MANIFEST_NAME).read_text())
    del manifest["files"]["MTT_musicnn.npz"]
    (copy / MUSICNN_MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(WeightsDigestError, match="MTT_musicnn.npz: its sha256 is not recorded in"):
        packaged_weights("MTT_musicnn", copy)
    assert packaged_weights("MTT_musicnn", tmp_path / "nothing") is None


def test_weights_are_converted_once_from_the_installed_wheel(tmp_path, monkeypatch, capsys):
    """The fallback without shipped files: a fresh cache, first use converts the wheel's checkpoint
    (exactly `checkpoint_arrays`), with musicnn's licence beside it; later uses read the file; the
    command converts both ahead of time; without the wheel, the error says how to install it,
    and the shipped files still serve `weights_path`."""
    from keras_music import musicnn_weights

    package = musicnn_package()
    monkeypatch.setenv("KERAS_MUSIC_CACHE", str(tmp_path / "cache"))
    path = converted_weights("MSD_musicnn")
    assert path == tmp_path / "cache" / "musicnn" / "MSD_musicnn.npz" and (path.parent / "LICENSE").is_file()
    converted = checkpoint_arrays(package / "MSD_musicnn")
    with np.load(path) as arrays:
        assert sorted(arrays.files) == sorted(converted)
        for name in arrays.files:
            np.testing.assert_array_equal(arrays[name], converted[name], err_msg=name)
    written = path.stat().st_mtime_ns
    assert converted_weights("MSD_musicnn") == path and path.stat().st_mtime_ns == written

    assert musicnn_weights.main([]) == 0
    assert {p.name for p in path.parent.iterdir()} == {"LICENSE", "MSD_musicnn.npz", "MTT_musicnn.npz"}
    assert musicnn_weights.main(["--checkpoint", str(tmp_path / "empty")]) == 1
    assert "not a musicnn checkpoint folder" in capsys.readouterr().err

    monkeypatch.setenv("KERAS_MUSIC_CACHE", str(tmp_path / "other"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "musicnn" else real_find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps musicnn==0.1.0"):
        converted_weights("MTT_musicnn")
    assert weights_path("MTT_musicnn") == MUSICNN_PACKAGED_DIR / "MTT_musicnn.npz"
    assert not (tmp_path / "other" / "musicnn").exists()


def test_checkpoint_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a musicnn checkpoint folder"):
        checkpoint_arrays(tmp_path)


def test_families_train_what_they_say_and_keep_musicnn_elsewhere():
    """musicnn_head: only our head trains; musicnn_lstm: musicnn's convolutions fine-tune, its batch
    norms keep musicnn's statistics, and both start from musicnn's trained weights."""
    import keras

    from keras_music.models.musicnn_head import MusicnnHeadConfig, build_musicnn_head
    from keras_music.models.musicnn_lstm import MusicnnLSTMConfig, build_musicnn_lstm

    tags = ["Q1", "Q2", "Q3", "Q4"]
    head = build_musicnn_head(MusicnnHeadConfig(), tags, {"mel": 96})
    assert {w.path.split("/")[0] for w in head.trainable_weights} == {"head_dense", "logits"}
    lstm = build_musicnn_lstm(MusicnnLSTMConfig(), tags, {"mel": 96})
    trainable = {w.path.split("/")[0] for w in lstm.trainable_weights}
    assert {"musicnn_timbral_74", "musicnn_midend_conv3", "lstm", "logits"} <= trainable
    assert not any(name.endswith("_bn") or "bn" in name.split("_")[-1] for name in trainable)
    frozen = build_musicnn_lstm(MusicnnLSTMConfig(fine_tune=False), tags, {"mel": 96})
    assert not any(w.path.startswith("musicnn_") for w in frozen.trainable_weights)
    with np.load(weights_path("MSD_musicnn")) as trained:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(lstm.get_layer("musicnn_midend_conv1").kernel),
                                      trained["midend_conv1/kernel"])


def test_head_on_both_networks_concatenates_their_embeddings():
    """`weights='MSD_musicnn+MTT_musicnn'`: both trained networks, frozen, side by side; the
    frozen output is their two penultimate layers, concatenated in that order."""
    from keras_music.models.musicnn_head import MusicnnHeadConfig, build_musicnn_head
    from keras_music.training.frozen import split_at

    model = build_musicnn_head(MusicnnHeadConfig(weights="MSD_musicnn+MTT_musicnn"), ["Q1", "Q2"], {"mel": 96})
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"head_dense", "logits"}
    front, _ = split_at(model, "musicnn_penultimate")
    x = {"mel": np.random.default_rng(0).normal(size=(2, 187, 96)).astype("float32"),
         "length": np.array([187, 150], "int32")}
    single = [build_musicnn(weights).predict(x, verbose=0)["penultimate"] for weights in ("MSD_musicnn", "MTT_musicnn")]
    np.testing.assert_allclose(np.asarray(front(x, training=False)), np.concatenate(single, axis=1), atol=1e-5)
    for bad in ("MSD_musicnn+MSD_musicnn", "MSD_musicnn+", "msd"):
        with pytest.raises(ValueError, match="joined by '\\+'"):
            MusicnnHeadConfig(weights=bad)


@pytest.mark.parametrize("stem", FILES[:2])
def test_a_head_gives_musicnns_own_tags_from_the_same_pass(stem):
    """`musicnn_tag_sets`: under our emotion head, each network's trained 50-tag layer on its
    penultimate output reproduces musicnn 0.1.0's taggram (MSD and MTT) from the same patches."""
    import keras

    from keras_music.config import TAG_GROUPS
    from keras_music.models.musicnn_head import MusicnnHeadConfig, build_musicnn_head, musicnn_tag_sets

    config = MusicnnHeadConfig(weights="MSD_musicnn+MTT_musicnn")
    model = build_musicnn_head(config, ["Q1", "Q2", "Q3", "Q4"], {"mel": 96})
    sets = musicnn_tag_sets(model, config)
    assert [(t.name, t.labels) for t in sets] == [("msd", tuple(MUSICNN_TAGS["MSD_musicnn"])),
                                                  ("mtt", tuple(MUSICNN_TAGS["MTT_musicnn"]))]
    assert all(group in TAG_GROUPS and name for t in sets for group, name in t.readings)
    assert all("not by keras_music" in t.source for t in sets)
    outputs = keras.Model(model.input, {t.name: t.logits for t in sets})
    for t, weights in zip(sets, ("MSD_musicnn", "MTT_musicnn")):
        ref = reference(weights, stem)
        patches = ref["patches"]
        logits = outputs.predict({"mel": patches, "length": np.full(len(patches), patches.shape[1], "int32")},
                                 verbose=0)[t.name]
        np.testing.assert_allclose(1 / (1 + np.exp(-logits.astype("float64"))), ref["taggram"], atol=TOLERANCE)
    assert not any(w.trainable for t in sets for w in outputs.weights if "musicnn_logits" in w.path)


def test_every_musicnn_tag_has_a_reading():
    """Each of the 100 tags is read in one of the groups; synonyms share the name shown."""
    from keras_music.config import TAG_GROUPS
    from keras_music.models.musicnn import tag_reading

    readings = {tag: tag_reading(tag) for tags in MUSICNN_TAGS.values() for tag in tags}
    assert {group for group, _ in readings.values()} == set(TAG_GROUPS)
    assert readings["female vocalists"] == readings["woman"] == readings["female voice"] == ("vocals", "female vocals")
    assert readings["no vocals"] == readings["instrumental"] == ("vocals", "instrumental")
    assert readings["80s"] == ("era", "1980s") and readings["Hip-Hop"] == ("genre", "hip-hop")
    with pytest.raises(KeyError):
        tag_reading("polka")
