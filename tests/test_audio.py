"""Decoding real files (every decoder backend installed), the resamplers, and the AudioFeatures
front end (LogMel / MFCC) against librosa.

The tensorflow-io cases run where it can be installed (TensorFlow 2.17; CI's second
environment runs `pytest tests/test_audio.py -k decoder` there) and skip elsewhere."""

from __future__ import annotations

import wave
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_music.audio.decoding import DECODERS, TRUNCATION_TOLERANCE, AudioDecodeError, SampleStream, audio_length, \
    decode_audio, load_audio, mix_to_mono, resample_like
from keras_music.audio.filterbank import mel_filterbank
from keras_music.audio.frontend import MFCC, AudioFeatures, LogMel, compute_features, resample
from keras_music.config import RECIPES, FeatureRecipe, config_from_dict, config_to_dict

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"

# From ../shared/audio/README.md: (rate, duration in s). MP3 durations are the source
# lengths (the decoder drops LAME's encoder delay), within 0.1 s of ffprobe's figures.
SHARED_AUDIO = {
    "bach_chorale_bwv269_calm_44k_stereo_16bit.wav": (44100, 10.0),
    "bach_chorale_bwv269_calm_22k_mono_64k.mp3": (22050, 25.078),
    "mozart_k545_bright_44k_stereo_16bit.flac": (44100, 10.0),
    "mozart_k545_bright_44k_stereo_128k.mp3": (44100, 20.036),
    "mozart_k545_bright_22k_mono_16bit.wav": (22050, 12.0),
    "beethoven_op18no4_minor_44k_stereo.ogg": (44100, 25.0),
    "beethoven_op18no4_minor_48k_mono_24bit.wav": (48000, 10.0),
}


def available(decoder: str) -> str:
    """The decoder, or a skip when its backend is not installed here."""
    if decoder == "tfio":
        pytest.importorskip("tensorflow_io", reason="tensorflow-io is not installed (it needs TensorFlow 2.17)")
    return decoder


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("name", sorted(SHARED_AUDIO))
def test_decoder_reads_every_shared_file_at_its_rate_and_duration(audio_dir, name, decoder):
    samples, rate = decode_audio(audio_dir / name, available(decoder))
    expected_rate, expected_seconds = SHARED_AUDIO[name]
    assert rate == expected_rate
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert abs(samples.size / rate - expected_seconds) < 0.1
    peak = np.abs(samples).max()
    assert 0.3 < peak <= 1.0, peak  # normalised to about -1 dBFS; 24-bit scaled right



def test_decoding_imports_and_decodes_without_tensorflow(audio_dir):
    """Extraction workers and prediction readers decode without starting TensorFlow (~10 s, ~1 GB)."""
    import subprocess
    import sys

    flac = audio_dir / "mozart_k545_bright_44k_stereo_16bit.flac"
    code = ("import sys\n"
            "import keras_music.audio.decoding as decoding\n"
            "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
            f"samples, rate = decoding.decode_audio({str(flac)!r})\n"
            "loaded += sorted(m for m in ('tensorflow', 'keras') if m in sys.modules and m not in loaded)\n"
            "print(loaded, samples.size, rate)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "441000", "44100"], result.stdout


def test_mix_to_mono_averages_channels_and_keeps_mono_float32_as_is():
    stereo = np.array([[0.5, -0.5], [1.0, 0.0], [0.25, 0.75]], np.float32)
    np.testing.assert_array_equal(mix_to_mono(stereo), [0.0, 0.5, 0.5])
    one_channel = stereo[:, :1]
    assert mix_to_mono(one_channel).base is stereo  # a view: no copy of a long mono file
    pcm = mix_to_mono(np.array([[-32768, 32767]], np.int16))
    assert pcm.dtype == np.float32 and pcm.tolist() == [-0.5]


def write_wav(path, samples: np.ndarray, rate=22050):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("not audio at all"), "cannot decode"),
    (lambda p: write_wav(p, np.zeros(0)), "zero samples"),
    (lambda p: write_wav(p, np.zeros(22050)), "entirely silent"),
])
def test_decoder_names_bad_audio(tmp_path, make, reason, decoder):
    path = tmp_path / "clip.wav"
    make(path)
    with pytest.raises(AudioDecodeError, match=reason) as error:
        decode_audio(path, available(decoder))
    assert str(path) in str(error.value) and "{{" not in str(error.value)


def test_decoder_soundfile_keeps_what_a_truncated_mp3_holds_and_refuses_crumbs(tmp_path, audio_dir, caplog):
    """A cut download keeps the music that decodes (>= 1 s, with a warning); less, or noise, is refused."""
    source = (audio_dir / "mozart_k545_bright_44k_stereo_128k.mp3").read_bytes()
    cut, crumbs, fake = tmp_path / "cut.mp3", tmp_path / "crumbs.mp3", tmp_path / "fake.mp3"
    cut.write_bytes(source[: len(source) // 3])
    crumbs.write_bytes(source[:5000])
    fake.write_bytes(np.random.default_rng(0).bytes(5000))
    samples, rate = decode_audio(cut)
    assert rate == 44100 and 5.0 < samples.size / rate < 8.0  # a third of the 20 s
    assert "cut.mp3: shorter than its header says: keeping the 6." in caplog.text and "of the 20.0 s" in caplog.text
    with pytest.raises(AudioDecodeError, match=r"truncated: only 0\.2\d s decode of the 20\.0 s"):
        decode_audio(crumbs)
    with pytest.raises(AudioDecodeError, match="cannot decode as audio"):
        decode_audio(fake)


def test_a_long_file_read_block_by_block_keeps_what_decodes_as_decoding_it_whole_does(estimated_length_mp3s,
                                                                                      caplog):
    """MP3s without a Xing/Info frame announce an estimated length, a cut one the length it had.
    Read block by block (`SampleStream`, what predict does past --chunk-seconds) each gives
    exactly the samples of decoding it whole, and the same length policy: what decodes is
    kept, with one warning naming the file when it falls short of the header by more than 2%,
    and less than 1 s is refused."""
    recipe = FeatureRecipe(max_seconds=None)
    for name, path in estimated_length_mp3s.items():
        announced = audio_length(path, recipe.sample_rate)
        assert announced > 60 * recipe.sample_rate, name  # predict reads it block by block
        if name == "crumbs":
            refusal = r"crumbs\.mp3: truncated: only 0\.\d\d s decode of the 75\.0 s its header announces"
            with pytest.raises(AudioDecodeError, match=refusal):
                load_audio(path, recipe)
            with pytest.raises(AudioDecodeError, match=refusal):
                SampleStream(path, recipe).read_to_end()
            continue
        caplog.clear()
        whole = load_audio(path, recipe)
        warned_whole = [r.getMessage() for r in caplog.records]
        caplog.clear()
        stream = SampleStream(path, recipe)
        stream.fill(announced + 1)
        assert stream.finished
        np.testing.assert_array_equal(stream.take(0, stream.read), whole, err_msg=name)
        warned_stream = [r.getMessage() for r in caplog.records]
        assert len(whole) < announced, f"{name}: its header should overstate its length"
        large = len(whole) < TRUNCATION_TOLERANCE * announced
        assert large == (name != "cbr_no_info"), name
        assert warned_whole == warned_stream and len(warned_stream) == int(large), (name, warned_stream)
        for line in warned_stream:
            assert line.startswith(f"{path}: shorter than its header says: keeping the ") and line.count(path.name) == 1
    assert 69.9 < audio_seconds(estimated_length_mp3s["vbr_no_xing"]) < 70.1
    assert 37.0 < audio_seconds(estimated_length_mp3s["cut"]) < 38.0


def audio_seconds(path: Path) -> float:
    samples, rate = decode_audio(path)
    return len(samples) / rate


def test_decoder_tfio_refuses_a_truncated_mp3(tmp_path, audio_dir):
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes((audio_dir / "mozart_k545_bright_44k_stereo_128k.mp3").read_bytes()[:20000])
    with pytest.raises(AudioDecodeError, match="cannot decode as audio"):
        decode_audio(truncated, available("tfio"))


def test_decoder_soundfile_reads_opus_and_24_bit_wav(tmp_path):
    import soundfile

    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype("float32")
    soundfile.write(tmp_path / "tone.opus", tone, 48000, format="OGG", subtype="OPUS")
    soundfile.write(tmp_path / "tone24.wav", tone, 48000, subtype="PCM_24")
    opus, rate = decode_audio(tmp_path / "tone.opus")
    assert rate == 48000 and abs(opus.size - 48000) < 1000 and 0.4 < np.abs(opus).max() < 0.7  # lossy: overshoot
    wav24, rate = decode_audio(tmp_path / "tone24.wav")
    np.testing.assert_allclose(wav24, tone, atol=2 ** -22)


def test_soxr_and_fft_resamplers_agree_below_nyquist():
    t = np.arange(32000) / 32000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype("float32")
    soxr_out = resample_like(tone, 32000, FeatureRecipe(resampler="soxr_hq"))
    fft_out = resample_like(tone, 32000, FeatureRecipe(resampler="fft"))
    assert soxr_out.dtype == np.float32 and soxr_out.shape == fft_out.shape == (22050,)
    np.testing.assert_allclose(soxr_out[500:-500], fft_out[500:-500], atol=2e-3)


def test_resample_keeps_a_tone_and_has_no_delay():
    rate, target, freq = 44100, 22050, 440.0
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * freq * t).astype("float32"), rate, target).numpy()
    assert out.shape == (target,)
    expected = np.sin(2 * np.pi * freq * np.arange(target) / target)
    np.testing.assert_allclose(out[100:-100], expected[100:-100], atol=1e-3)
    graph = tf.function(lambda x: resample(x, 48000, 22050))
    assert graph(tf.zeros([48000])).shape == (22050,)


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    for recipe in (FeatureRecipe(), FeatureRecipe(n_mels=96, hop_length=512, fmin=20.0, fmax=8000.0),
                   FeatureRecipe(mel_scale="htk", mel_norm="none")):
        ours = mel_filterbank(recipe)
        theirs = librosa.filters.mel(sr=recipe.sample_rate, n_fft=recipe.n_fft, n_mels=recipe.n_mels,
                                     fmin=recipe.fmin, fmax=recipe.mel_fmax, htk=recipe.mel_scale == "htk",
                                     norm="slaney" if recipe.mel_norm == "slaney" else None)
        np.testing.assert_allclose(ours, theirs.T, atol=1e-7)


def librosa_features(samples, recipe):
    librosa = pytest.importorskip("librosa")
    from scipy.fft import dct

    power = librosa.feature.melspectrogram(
        y=samples, sr=recipe.sample_rate, n_fft=recipe.n_fft, hop_length=recipe.hop_length,
        n_mels=recipe.n_mels, fmin=recipe.fmin, fmax=recipe.mel_fmax, center=True, pad_mode="constant",
        power=2.0)
    log_mel = 10 * np.log10(power + recipe.log_floor)
    return log_mel.T, dct(log_mel, type=2, norm="ortho", axis=0)[: recipe.n_mfcc].T


def test_features_match_librosa_on_the_same_samples(audio_dir):
    """Same samples in: our tf.signal log-mel / MFCC against librosa's reference recipe."""
    recipe = FeatureRecipe()
    samples, rate = decode_audio(audio_dir / "mozart_k545_bright_22k_mono_16bit.wav")
    assert rate == recipe.sample_rate
    features = compute_features(samples, recipe)
    log_mel, mfcc = features["mel"], features["mfcc"]
    ref_mel, ref_mfcc = librosa_features(samples, recipe)
    assert log_mel.shape == ref_mel.shape == (recipe.num_frames(samples.size), 64)
    audible = ref_mel > -80
    mel_error = np.abs(log_mel - ref_mel)[audible].max()
    mfcc_error = np.abs(mfcc - ref_mfcc).max()
    print(f"\nlog-mel max |ours - librosa| above -80 dB: {mel_error:.5f} dB; MFCC max: {mfcc_error:.5f}")
    assert mel_error <= 0.01 and mfcc_error <= 0.01


def test_end_to_end_features_agree_with_librosa_after_resampling(audio_dir):
    """Decode + resample 44.1 kHz stereo FLAC through the package (libsndfile + the recipe's soxr) and librosa."""
    librosa = pytest.importorskip("librosa")
    recipe = FeatureRecipe()
    path = audio_dir / "mozart_k545_bright_44k_stereo_16bit.flac"
    ours = compute_features(load_audio(path, recipe), recipe)["mel"]
    reference, _ = librosa_features(librosa.load(path, sr=recipe.sample_rate, mono=True, duration=30)[0], recipe)
    assert ours.shape == reference.shape
    # Same decoder (libsndfile) and resampler (soxr HQ) as librosa: every band agrees, the top
    # ones included (with the FFT resampler, bands 56-63 differed by up to 15 dB near Nyquist).
    low = reference[:, :56] > -60
    error = np.abs(ours - reference)[:, :56][low]
    top = np.abs(ours - reference)[:, 56:][reference[:, 56:] > -60]
    print(f"\nend to end, bands 0-55 above -60 dB: max {error.max():.3f} dB, p99 {np.percentile(error, 99):.3f} dB;"
          f" bands 56-63: median {np.median(top):.3f} dB, max {top.max():.3f} dB")
    assert error.max() <= 0.01 and top.max() <= 0.01


def test_front_end_round_trips_in_a_saved_model(tmp_path):
    recipe = FeatureRecipe(n_mels=32, n_mfcc=13)
    inputs = keras.Input(shape=(None,), name="waveform")
    model = keras.Model(inputs, AudioFeatures(recipe, name="features")(inputs))
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 22050)).astype("float32")
    expected = model.predict(audio, verbose=0)
    assert expected["mel"].shape == (2, recipe.num_frames(22050), 32) and expected["mfcc"].shape == (2, 22, 13)
    single = compute_features(audio[0], recipe)
    np.testing.assert_allclose(single["mel"], expected["mel"][0], atol=1e-4)
    model.save(tmp_path / "front_end.keras")
    restored = keras.saving.load_model(tmp_path / "front_end.keras").predict(audio, verbose=0)
    assert restored.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(expected[name], restored[name], atol=1e-5)


def test_compute_features_gives_the_recipes_named_features():
    samples = np.random.default_rng(1).normal(0, 0.1, 22050).astype("float32")
    features = compute_features(samples)
    assert list(features) == ["mel", "mfcc"] == list(FeatureRecipe().feature_dims)
    assert features["mel"].shape == (1 + 22050 // 1024, 64) and features["mfcc"].shape == (1 + 22050 // 1024, 20)
    only_mel = compute_features(samples, FeatureRecipe(n_mfcc=0))
    assert list(only_mel) == ["mel"]
    np.testing.assert_array_equal(only_mel["mel"], features["mel"])


def test_layers_round_trip_in_a_saved_model(tmp_path):
    recipe = FeatureRecipe(n_mels=32, n_mfcc=13)
    inputs = keras.Input(shape=(None,), name="waveform")
    log_mel = LogMel(config_to_dict(recipe), name="log_mel")(inputs)
    model = keras.Model(inputs, [log_mel, MFCC(13, name="mfcc")(log_mel)])
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 22050)).astype("float32")
    expected = model.predict(audio, verbose=0)
    assert expected[0].shape == (2, recipe.num_frames(22050), 32) and expected[1].shape == (2, 22, 13)
    model.save(tmp_path / "front_end.keras")
    restored = keras.saving.load_model(tmp_path / "front_end.keras")
    for a, b in zip(expected, restored.predict(audio, verbose=0)):
        np.testing.assert_allclose(a, b, atol=1e-5)



@pytest.mark.parametrize("layer", [AudioFeatures(FeatureRecipe(n_mels=32)), LogMel(), MFCC(13)])
def test_layers_keep_the_names_saved_models_hold(layer):
    """Saved models name the layers `keras_music>AudioFeatures` etc., with the module they were saved from
    (`keras_music.audio` before it became a package): both still load."""
    name = type(layer).__name__
    assert keras.saving.get_registered_name(type(layer)) == f"keras_music>{name}"
    config = keras.saving.serialize_keras_object(layer)
    config["module"] = "keras_music.audio"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


def test_recipe_rejects_bad_values():
    with pytest.raises(ValueError, match="mel_scale"):
        FeatureRecipe(mel_scale="bark")
    with pytest.raises(ValueError, match="n_mfcc"):
        FeatureRecipe(n_mfcc=100)
    with pytest.raises(ValueError, match="fmax"):
        FeatureRecipe(fmax=20000.0)
    with pytest.raises(ValueError, match="mel_compression"):
        FeatureRecipe(mel_compression="log")


def test_recipes_name_their_features_and_old_recipe_json_keeps_its_meaning():
    assert FeatureRecipe().feature_dims == {"mel": 64, "mfcc": 20}
    assert FeatureRecipe(n_mfcc=0).feature_dims == {"mel": 64}
    assert RECIPES["4q"] == FeatureRecipe()
    musicnn = RECIPES["musicnn"]
    assert musicnn.feature_dims == {"mel": 96} and musicnn.mel_compression == "musicnn"
    assert (musicnn.sample_rate, musicnn.n_fft, musicnn.hop_length) == (16000, 512, 256)
    # A recipe.json written before the named features existed (today's fields only).
    old = {"sample_rate": 22050, "n_fft": 2048, "hop_length": 1024, "n_mels": 64, "fmin": 0.0, "fmax": None,
           "log_floor": 1e-10, "n_mfcc": 20, "mel_scale": "slaney", "mel_norm": "slaney", "center": True,
           "max_seconds": 30.0}
    assert config_from_dict(FeatureRecipe, old) == FeatureRecipe()
    for recipe in RECIPES.values():
        assert config_from_dict(FeatureRecipe, config_to_dict(recipe)) == recipe


# --- the musicnn recipe against musicnn 0.1.0's own input (../shared/reference/musicnn) -------------

MUSICNN_FILES = ("mozart_k545_bright_22k_mono_16bit.wav", "beethoven_op18no4_minor_44k_stereo.ogg",
                 "bach_chorale_bwv269_calm_22k_mono_64k.mp3")
# One float16 step of the power mel (relative 2**-10 at most) moves log10(10000 x + 1) by at most
# log10(1 + 2**-10) = 4.2e-4: float32 STFT noise may round a value to the neighbouring float16.
FLOAT16_STEP = 5e-4


def musicnn_patches(features: np.ndarray, frames: int = 187) -> np.ndarray:
    """musicnn's `batch_data(path, 187, 187)`: non-overlapping patches from frame 0, the tail dropped."""
    return np.stack([features[start:start + frames] for start in range(0, len(features) - frames + 1, frames)])


def musicnn_reference(name: str) -> np.ndarray:
    path = SHARED_REFERENCE / "musicnn" / f"MTT_musicnn__{Path(name).stem}.npz"
    if not path.is_file():
        pytest.skip(f"musicnn reference not found at {path}")
    with np.load(path) as arrays:
        return arrays["patches"]


@pytest.mark.parametrize("name", MUSICNN_FILES)
def test_musicnn_recipe_reproduces_musicnn_patches_from_the_same_samples(audio_dir, name):
    """Test A: librosa's decoding + soxr_hq resampling (as musicnn), then OUR front end."""
    librosa = pytest.importorskip("librosa")
    reference = musicnn_reference(name)
    samples, _ = librosa.load(audio_dir / name, sr=16000)
    ours = musicnn_patches(compute_features(samples, RECIPES["musicnn"])["mel"])
    assert ours.shape == reference.shape
    error = np.abs(ours - reference)
    print(f"\n{name}: musicnn patches {reference.shape}, same samples: max |ours - musicnn| {error.max():.2e}, "
          f"{np.mean(error > 1e-5):.3%} of values a float16 step apart (tolerance {FLOAT16_STEP:.0e}, one step)")
    assert error.max() <= FLOAT16_STEP


@pytest.mark.parametrize("name", MUSICNN_FILES)
def test_musicnn_recipe_from_our_decoder_and_resampler(audio_dir, name):
    """Test B (measured, loose bound): OUR decoding and resampling (the recipe's: libsndfile + soxr) instead
    of librosa's calls; musicnn used librosa.load(sr=16000), i.e. libsndfile/audioread + soxr_hq too."""
    reference = musicnn_reference(name)
    recipe = RECIPES["musicnn"]
    ours = musicnn_patches(compute_features(load_audio(audio_dir / name, recipe), recipe)["mel"])
    count = min(len(ours), len(reference))
    error = np.abs(ours[:count] - reference[:count])
    low, top = error[..., :88], error[..., 88:]  # bands 88-95 lie above ~7 kHz, near the 8 kHz Nyquist
    print(f"\n{name}: {len(ours)} patches (musicnn {len(reference)}); bands 0-87: median {np.median(low):.2e}, "
          f"p99 {np.percentile(low, 99):.3f}, max {low.max():.3f}; bands 88-95: median {np.median(top):.3f}, "
          f"max {top.max():.3f}")
    assert abs(len(ours) - len(reference)) <= 1
    # Measured: every band within one float16 step (the FFT resampler differed by up to 2.5 above ~7 kHz).
    assert low.max() <= 5e-4 and top.max() <= 5e-4
