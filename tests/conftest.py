"""Shared fixtures: paths to the shared datasets (skipped with a reason when absent) and small tables."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One OpenMP thread per test process (scikit-learn's HistGradientBoosting, and the commands tests
# run inherit it): `pytest -n 2` already keeps every core busy, and OpenMP threads that spin while
# another worker holds the cores made bench/test_genre.py 4x slower (19 s vs 75 s, measured with
# a second process busy). TensorFlow's own thread pools are not affected (measured: no change).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
GENRE_CSV = SHARED / "datasets" / "genre" / "train.csv"
# Where `data="mer4q"` / `--data cal500` look (keras_music.data.emotion.DATASETS_ENV).
if (SHARED / "datasets").is_dir():
    os.environ.setdefault("KERAS_MUSIC_DATASETS", str(SHARED / "datasets"))
# `--precision auto` (predict's default) means float32 here (keras_music.precision): bfloat16 is a
# process-wide TensorFlow option, and tests compare graphs to 1e-5. tests/tagging/test_precision.py
# asks for bfloat16 by name.
os.environ["KERAS_MUSIC_PRECISION"] = "float32"


@pytest.fixture(scope="session")
def genre_csv() -> Path:
    """The shared Kaggle genre CSV; tests using it skip when ../shared is not beside the repo."""
    if not GENRE_CSV.is_file():
        pytest.skip(f"shared genre data not found at {GENRE_CSV} (expected ../shared beside the repo)")
    return GENRE_CSV


@pytest.fixture(scope="session")
def demo_frame():
    """A small cleaned synthetic genre table."""
    from keras_music.data.demo import make_genre_table
    from keras_music.data.genre import validate_genre_frame

    return validate_genre_frame(make_genre_table(num_rows=600, seed=1), 11, source="demo")


@pytest.fixture
def demo_csv(tmp_path) -> Path:
    """A raw synthetic genre CSV with the Kaggle header."""
    from keras_music.data.demo import write_genre_demo_csv

    return write_genre_demo_csv(tmp_path / "demo.csv", num_rows=400, seed=2)


AUDIO_DIR = SHARED / "audio"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    """The shared folder of small real music files (WAV, FLAC, OGG, MP3)."""
    if not AUDIO_DIR.is_dir():
        pytest.skip(f"shared audio not found at {AUDIO_DIR} (expected ../shared beside the repo)")
    return AUDIO_DIR


def copy_shared_audio(audio_dir: Path, folder: Path) -> Path:
    """`folder` with the shared clips and, in `bad/`, a corrupt MP3 (callers add their other bad files)."""
    (folder / "bad").mkdir(parents=True, exist_ok=True)
    for path in audio_dir.iterdir():
        if path.suffix != ".md":
            shutil.copy(path, folder / path.name)
    (folder / "bad" / "corrupt.mp3").write_bytes(b"ID3 this is not an mp3")
    return folder


CAL500_LABELS = SHARED / "datasets" / "cal500" / "labels"
MER4Q = SHARED / "datasets" / "mer4q"


@pytest.fixture(scope="session")
def cal500_labels() -> Path:
    if not (CAL500_LABELS / "hardAnnotations.txt").is_file():
        pytest.skip(f"shared CAL500 labels not found at {CAL500_LABELS}")
    return CAL500_LABELS


@pytest.fixture(scope="session")
def mer4q_dir() -> Path:
    if not (MER4Q / "labels.csv").is_file():
        pytest.skip(f"shared 4Q features not found at {MER4Q}")
    return MER4Q


@pytest.fixture(scope="session")
def small_emotion_store(tmp_path_factory) -> Path:
    """A feature store of 40 synthetic 4 s demo clips with labels.csv (extracted once per session)."""
    from keras_music.data.demo import make_emotion_demo
    from keras_music.data.extraction import extract_folder

    root = make_emotion_demo(tmp_path_factory.mktemp("small-demo"), num_clips=40, seconds=4.0, seed=5)
    summary = extract_folder(root / "audio", root / "store", workers=1)
    assert summary.written == 40 and not summary.failed
    (root / "store" / "labels.csv").write_text((root / "labels.csv").read_text())
    return root / "store"


@pytest.fixture(scope="session")
def emotion_run(small_emotion_store, tmp_path_factory) -> Path:
    """A small trained CNN-LSTM run folder (3 epochs on `small_emotion_store`) for export and predict tests."""
    from keras_music.config import TrainingConfig
    from keras_music.models.cnn_lstm import CNNLSTMConfig
    from keras_music.data.sequences import SequenceConfig
    from keras_music.training import train_emotion

    out = tmp_path_factory.mktemp("emotion-run") / "run"
    train_emotion(str(small_emotion_store), out,
                  CNNLSTMConfig(conv_channels=(8, 16), lstm_units=16, head_units=16),
                  SequenceConfig(crop_frames=64, batch_size=8, window_hop=32),
                  TrainingConfig(epochs=3, batch_size=8, min_epochs=0, validation_fraction=0.2, test_fraction=0.2),
                  verbose=0)
    return out


@pytest.fixture(scope="session")
def export(emotion_run, tmp_path_factory) -> Path:
    """`emotion_run` exported for TF Serving (its version folder): what predict and the Tagger load."""
    from keras_music.export import export_run

    return export_run(emotion_run, "tagger", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def small_4q_labels(small_emotion_store, tmp_path_factory) -> Path:
    """4Q-style `labels.csv` (clip_id, quadrant, arousal, valence) for the clips of `small_emotion_store`,
    quadrants Q1..Q4 in turn, with a `metadata.csv` beside it: clips 0-9 by one band, the rest by one
    solo artist each."""
    from keras_music.data.emotion import load_emotion_data

    root = tmp_path_factory.mktemp("small-4q-labels")
    ids = load_emotion_data(str(small_emotion_store)).tags.clip_ids
    quadrants = [f"Q{1 + i % 4}" for i in range(len(ids))]
    (root / "labels.csv").write_text("clip_id,quadrant,arousal,valence\n" + "".join(
        f"{c},{q},{'high' if q in ('Q1', 'Q2') else 'low'},{'positive' if q in ('Q1', 'Q4') else 'negative'}\n"
        for c, q in zip(ids, quadrants)))
    (root / "metadata.csv").write_text("clip_id,artist\n" + "".join(
        f"{c},{'The Band' if i < 10 else f'Solo {i}'}\n" for i, c in enumerate(ids)))
    return root / "labels.csv"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """`$KERAS_MUSIC_CACHE` of this test session (and the commands it runs), never the user's: the
    demo data, musicnn's converted weights, the default model and window embeddings start
    empty and are made once per session, as on a fresh install."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("keras_music_cache")
        patch.setenv("KERAS_MUSIC_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def musicnn_store(tmp_path_factory):
    """24 four-second clips at 16 kHz (a tone per quadrant plus noise), extracted with the
    musicnn recipe, and a 4Q-style labels CSV with a metadata.csv of artists beside it."""
    import numpy as np
    import soundfile

    from keras_music.config import RECIPES
    from keras_music.data.extraction import extract_folder

    quadrants = ("Q1", "Q2", "Q3", "Q4")
    root = tmp_path_factory.mktemp("musicnn_store")
    audio = root / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(4 * 16000) / 16000
    labels, meta = ["clip_id,quadrant,arousal,valence"], ["clip_id,artist,title,genres,pquad,seconds,frames"]
    for i in range(24):
        q = i % 4
        wave = 0.3 * np.sin(2 * np.pi * (220 * (q + 1)) * t) + 0.05 * rng.normal(size=t.size)
        clip = f"C{i:03d}"
        soundfile.write(audio / f"{clip}.wav", wave.astype("float32"), 16000)
        labels.append(f"{clip},{quadrants[q]},{'high' if q < 2 else 'low'},{'positive' if q in (0, 3) else 'negative'}")
        meta.append(f"{clip},artist {i // 2},t,g,1.0,4,250")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "metadata.csv").write_text("\n".join(meta) + "\n")
    extract_folder(audio, root / "store", RECIPES["musicnn"], workers=1)
    return root


MPEG1_LAYER3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def without_info_frame(mp3: bytes) -> bytes:
    """An MPEG-1 Layer III file's bytes without its Xing/Info frame (the first frame, which LAME
    fills with the stream's length), as older rips and concatenated streams are: the decoder
    then estimates the length from the first frame's bitrate and the file's size."""
    header = int.from_bytes(mp3[:4], "big")
    assert header >> 21 == 0x7FF and (header >> 17) & 0xF == 0b1101, "expected an MPEG-1 Layer III frame first"
    rate = (44100, 48000, 32000)[(header >> 10) & 3]
    size = 144000 * MPEG1_LAYER3_KBPS[(header >> 12) & 15] // rate + ((header >> 9) & 1)
    return mp3[size:] if b"Xing" in mp3[:size] or b"Info" in mp3[:size] else mp3


def encode_mp3(path: Path, samples, rate: int, mode: str = "CONSTANT", level: float = 0.5) -> bytes:
    """`samples` encoded by LAME through libsndfile (which writes a Xing/Info frame); the file's bytes."""
    import soundfile

    soundfile.write(path, samples, rate, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode=mode,
                    compression_level=level)
    return path.read_bytes()


@pytest.fixture(scope="session")
def estimated_length_mp3s(audio_dir, tmp_path_factory) -> dict[str, Path]:
    """Complete MP3s over 60 s (long-file path at --chunk-seconds 60) whose headers overstate their length,
    and two cut ones. Made from the shared Bach chorale (10 s, 44.1 kHz stereo) looped:

    - `vbr_no_xing`: 1 s of digital silence, then 69 s of music, VBR without its Xing frame: the first
      frame's 32 kb/s makes the estimate minutes too long (a large shortfall: a warning);
    - `cbr_no_info`: 75 s CBR without its Info frame: a size-based estimate a little too long (silent);
    - `concatenated`: 20 s at a low CBR bitrate, then 50 s at 320 kb/s, both without Info frames;
    - `cut`: the first half of the bytes of a 75 s CBR file with its Info frame (it announces 75 s);
    - `crumbs`: the first 5,000 bytes of it (0.2 s: too little to keep, on either path).
    """
    import numpy as np
    import soundfile

    music, rate = soundfile.read(audio_dir / "bach_chorale_bwv269_calm_44k_stereo_16bit.wav", dtype="float32")
    folder = tmp_path_factory.mktemp("estimated-length-mp3s")
    scratch = folder / "scratch"
    scratch.mkdir()

    def looped(seconds):
        return np.tile(music, (int(np.ceil(seconds * rate / len(music))), 1))[: int(seconds * rate)]

    files = {name: folder / f"{name}.mp3" for name in ("vbr_no_xing", "cbr_no_info", "concatenated", "cut", "crumbs")}
    silence = np.zeros((rate, 2), "float32")
    files["vbr_no_xing"].write_bytes(without_info_frame(
        encode_mp3(scratch / "vbr.mp3", np.concatenate([silence, looped(69)]), rate, "VARIABLE")))
    cbr = encode_mp3(scratch / "cbr.mp3", looped(75), rate)
    files["cbr_no_info"].write_bytes(without_info_frame(cbr))
    files["concatenated"].write_bytes(
        without_info_frame(encode_mp3(scratch / "low.mp3", looped(20), rate, level=0.9))
        + without_info_frame(encode_mp3(scratch / "high.mp3", looped(50), rate, level=0.0)))
    files["cut"].write_bytes(cbr[: len(cbr) // 2])
    files["crumbs"].write_bytes(cbr[:5000])
    return files


@pytest.fixture(scope="session")
def gcs_bucket(tmp_path_factory):
    """A Google Cloud Storage bucket `gs://music` on 127.0.0.1: `gcp-storage-emulator` (the GCS JSON
    API, in memory) started for the session. `STORAGE_EMULATOR_HOST` points the client library,
    hence Beam's `gs://` filesystem, in this process and the commands it starts, at it.

    Application default credentials are a user file whose access token never expires (the
    emulator ignores it): without any, Beam retries its credential lookup for ~25 s in every
    process before it goes on anonymously.

    Yields the bucket (a google.cloud.storage Bucket) to upload to and list."""
    import json
    import socket
    import subprocess
    import sys
    import time

    emulator = shutil.which("gcp-storage-emulator", path=os.path.dirname(sys.executable)) or shutil.which(
        "gcp-storage-emulator")
    if emulator is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    storage = pytest.importorskip("google.cloud.storage", reason="Beam's gcs filesystem needs apache-beam[gcp]: "
                                  "pip install -e '.[beam]'")
    from google.auth.credentials import AnonymousCredentials

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([emulator, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                               "--default-bucket", "music", "--quiet"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"gcp-storage-emulator did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
    credentials = tmp_path_factory.mktemp("gcs") / "application_default_credentials.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "test", "client_secret": "test",
                                       "refresh_token": "test", "token": "emulator",
                                       "expiry": "2999-01-01T00:00:00Z"}))
    settings = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
                "GOOGLE_CLOUD_PROJECT": "test"}
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield storage.Client(project="test", credentials=AnonymousCredentials()).bucket("music")
    finally:
        server.terminate()
        server.wait(timeout=30)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def packaged_records(audio_dir, tmp_path_factory) -> Path:
    """`predict --per-window --embeddings --out tags.jsonl` with the packaged model over a copy of the
    shared clips and a corrupt MP3 (`bad/corrupt.mp3`): the records `report` and `similar` start from."""
    import subprocess
    import sys

    folder = copy_shared_audio(audio_dir, tmp_path_factory.mktemp("packaged") / "music")
    records = folder.parent / "tags.jsonl"
    done = subprocess.run([sys.executable, "-m", "keras_music.predict", str(folder), "--per-window", "--embeddings",
                           "--out", str(records)], capture_output=True, text=True, cwd=folder.parent, timeout=600)
    assert done.returncode == 1 and "corrupt.mp3" in done.stderr, done.stderr[-2000:]  # 1: the corrupt file
    return records
