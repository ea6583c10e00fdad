"""Check this installation and print what a bug report needs.

    python -m keras_music.doctor
    python -m keras_music.doctor --json

Prints the versions of Python, TensorFlow, Keras, KerasTuner, NumPy and the audio
libraries; the decoders found (libsndfile through soundfile; tensorflow-io if installed);
the devices TensorFlow sees and whether an LSTM on them runs the fused cuDNN kernel; then
writes a short generated tone in every format libsndfile can write here (WAV 16/24-bit,
FLAC, Ogg Vorbis, Opus, MP3) and decodes each back with the package's decoder; and says
whether musicnn's weights are ready (shipped in the package, their sha256 checked against its
manifest) and whether the packaged default emotion model is there. Exit status 0 when
everything needed works, 1 with a one-line reason per broken part, missing or damaged musicnn
weights included (`predict` without `--model` needs them); optional parts, such as
tensorflow-io, a GPU or the musicnn wheel (which only regenerates the shipped weights), are
reported but never make it fail.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
from pathlib import Path

from keras_music.version import __version__
from keras_music.tf_logging import import_tensorflow

# (format, subtype, extension) written and decoded back; libsndfile >= 1.1 writes MP3, >= 1.0.29 Opus.
FORMATS = [("WAV", "PCM_16", "wav"), ("WAV", "PCM_24", "wav"), ("FLAC", "PCM_16", "flac"),
           ("OGG", "VORBIS", "ogg"), ("OGG", "OPUS", "opus"), ("MP3", "MPEG_LAYER_III", "mp3")]
PACKAGES = ["tensorflow", "keras", "keras_tuner", "numpy", "pandas", "sklearn", "soundfile", "soxr", "matplotlib"]


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version(), "keras_music": __version__, "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "unknown")
        except Exception as error:  # noqa: BLE001  (any import failure is what we report)
            found[name] = None
            found[f"{name}_error"] = f"{type(error).__name__}: {error}"[:200]
    try:
        import soundfile

        found["libsndfile"] = soundfile.__libsndfile_version__
    except Exception:  # noqa: BLE001
        found["libsndfile"] = None
    return found


def decoders() -> dict[str, str]:
    """Each decoder backend: `ok` or why it cannot be used."""
    result = {}
    try:
        import soundfile  # noqa: F401

        result["soundfile"] = "ok"
    except Exception as error:  # noqa: BLE001
        result["soundfile"] = f"missing: {error}"
    try:
        import tensorflow_io  # noqa: F401

        result["tfio"] = "ok"
    except Exception as error:  # noqa: BLE001
        result["tfio"] = f"not available (optional; needs TensorFlow 2.17): {type(error).__name__}"
    return result


def devices() -> dict:
    """TensorFlow's devices and whether an LSTM there uses cuDNN (GPU only, default activations)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    info = {"cpu": len(tf.config.list_physical_devices("CPU")), "gpu": [gpu.name for gpu in gpus],
            "built_with_cuda": tf.test.is_built_with_cuda()}
    if gpus:
        info["cudnn_lstm"] = _cudnn_lstm_runs()
    else:
        info["cudnn_lstm"] = "no GPU: LSTMs run the generic kernel on CPU"
    return info


def _cudnn_lstm_runs() -> str:
    """Run one masked LSTM step on the GPU and say which kernel Keras picked."""
    import keras
    import numpy as np

    try:
        layer = keras.layers.LSTM(8)
        x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)  # right-padded, as the pipeline makes it
        layer(x, mask=mask)
        uses = getattr(layer, "use_cudnn", "auto")
        return f"ok (use_cudnn={uses}; default activations and right-padded masks keep the fused kernel)"
    except Exception as error:  # noqa: BLE001
        return f"failed: {type(error).__name__}: {error}"[:200]


def decode_round_trip() -> dict[str, str]:
    """Write a 1 s tone in every format and decode it with the package's decoder."""
    import numpy as np
    import soundfile

    from keras_music.audio.decoding import AudioDecodeError, decode_audio

    rate = 44100
    tone = (0.4 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype("float32")
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, subtype, ext in FORMATS:
            name = f"{fmt.lower()}-{subtype.lower()}"
            path = Path(tmp) / f"tone-{subtype.lower()}.{ext}"
            write_rate = 48000 if subtype == "OPUS" else rate
            try:
                soundfile.write(path, tone if write_rate == rate else np.resize(tone, 48000), write_rate,
                                format=fmt, subtype=subtype)
            except Exception as error:  # noqa: BLE001
                result[name] = f"cannot write here ({type(error).__name__}: {error})"[:200]
                continue
            try:
                samples, got = decode_audio(path)
                result[name] = "ok" if got == write_rate and abs(samples.size - write_rate) < 0.1 * write_rate \
                    else f"decoded {samples.size} samples at {got} Hz, expected about {write_rate} at {write_rate} Hz"
            except AudioDecodeError as error:
                result[name] = f"failed: {error}"
    return result


def pretrained() -> dict[str, str]:
    """Where the pretrained parts stand: musicnn's shipped weights (their sha256 checked against
    the manifest beside them; without them, converted in the cache or convertible from the
    musicnn wheel), whether that wheel is installed (optional: it only regenerates them) and the
    packaged default emotion model."""
    from keras_music.config import DEFAULT_EMOTION_MODEL, MUSICNN_MANIFEST_NAME, MUSICNN_PACKAGED_DIR
    from keras_music.tagging.presets import RUN_FILES
    from keras_music.models.musicnn import (
        INSTALL_HINT,
        MUSICNN_VERSION,
        REBUILD_HINT,
        WEIGHTS,
        WeightsDigestError,
        check_digest,
        installed_checkpoint,
        weights_dir,
    )

    found = {}
    for weights in WEIGHTS:
        shipped, converted = MUSICNN_PACKAGED_DIR / f"{weights}.npz", weights_dir() / f"{weights}.npz"
        if shipped.is_file():
            try:
                digest = check_digest(shipped)
                found[weights] = f"ok (packaged: {shipped}; sha256 {digest} as {MUSICNN_MANIFEST_NAME} records)"
            except WeightsDigestError as error:
                found[weights] = f"damaged: {error}"
            continue
        checkpoint = installed_checkpoint(weights)
        found[weights] = (f"ok (not packaged; converted: {converted})" if converted.is_file() else
                          f"ok (not packaged; converted on first use from {checkpoint})" if checkpoint else
                          f"missing: not packaged in {MUSICNN_PACKAGED_DIR} (reinstall keras_music) nor converted; "
                          f"or `{INSTALL_HINT}`")
    wheel = installed_checkpoint(WEIGHTS[0])
    found["musicnn wheel"] = (
        f"installed ({wheel.parent}); optional: `{REBUILD_HINT}` regenerates the packaged weights from it" if wheel
        else f"not installed (optional: only to regenerate the packaged weights, musicnn {MUSICNN_VERSION}: "
             f"`{INSTALL_HINT}`, then `{REBUILD_HINT}`)")
    run = DEFAULT_EMOTION_MODEL / "run"
    lacking = [name for name in RUN_FILES if not (run / name).is_file()]
    found["default emotion model"] = (f"ok ({run}; built into the cache on first use)" if not lacking else
                                      f"missing {', '.join(lacking)} in {run}: predict then needs --model")
    return found


def problems(report: dict) -> list[str]:
    """One line per broken required part."""
    lines = [f"{name} does not import ({report['versions'].get(f'{name}_error')})"
             for name in PACKAGES if report["versions"].get(name) is None]
    if report["decoders"].get("soundfile") != "ok":
        lines.append(f"the default decoder is missing: {report['decoders']['soundfile']}")
    lines += [f"decoding {name}: {status}" for name, status in report.get("decode", {}).items() if status != "ok"]
    lines += [f"musicnn's {name} weights: {status}" for name, status in report.get("pretrained", {}).items()
              if name.endswith("_musicnn") and not status.startswith("ok")]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_music.doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of the text report.")
    args = parser.parse_args(argv)
    import_tensorflow()  # after parsing: --help and usage errors answer without TensorFlow
    report = {"versions": versions(), "decoders": decoders(), "pretrained": pretrained()}
    if report["versions"].get("tensorflow"):
        report["devices"] = devices()
    if report["decoders"]["soundfile"] == "ok":
        report["decode"] = decode_round_trip()
    report["problems"] = problems(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"keras_music {__version__} doctor")
        for section in ("versions", "decoders", "pretrained", "devices", "decode"):
            if section in report:
                print(f"\n{section}:")
                for key, value in report[section].items():
                    print(f"  {key}: {value}")
        print("\nresult: " + ("everything needed works" if not report["problems"] else
                              f"{len(report['problems'])} problem(s)"))
    for line in report["problems"]:
        print(f"error: {line}", file=sys.stderr)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
