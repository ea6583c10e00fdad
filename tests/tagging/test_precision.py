"""bfloat16 where the CPU computes it: `keras_music.precision` and predict's --precision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_music.errors import ParameterError
from keras_music.precision import native_bfloat16, resolve_precision

REPO = Path(__file__).resolve().parents[2]


def test_native_bfloat16_reads_the_cpu_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_MUSIC_PRECISION", raising=False)  # the suite's own setting (conftest)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    assert native_bfloat16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert not native_bfloat16(cpuinfo)
    assert not native_bfloat16(tmp_path / "missing")  # not Linux: float32, never the slow choice
    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(ParameterError, match="precision='half': expected one of auto, float32, bfloat16"):
        resolve_precision("half")
    monkeypatch.setenv("KERAS_MUSIC_PRECISION", "bfloat16")  # what auto means, where set
    assert resolve_precision("auto") == "bfloat16" and resolve_precision("float32") == "float32"
    monkeypatch.setenv("KERAS_MUSIC_PRECISION", "fp16")
    with pytest.raises(ParameterError, match="KERAS_MUSIC_PRECISION='fp16'"):
        resolve_precision("auto")


def test_tagger_refuses_an_unknown_precision():
    from keras_music.tagging import Tagger

    with pytest.raises(ParameterError, match="precision="):
        Tagger.from_preset(precision="float16", load=False)


@pytest.mark.slow
def test_predict_in_bfloat16_stays_within_its_bound_of_float32(audio_dir):
    """The packaged model's probabilities in bfloat16 are float32's within 0.05 (bench.tagger_speed
    measured at most 0.044 over the 4Q clips) and name the same quadrant; on CPUs with native
    bfloat16 the arithmetic really changed."""
    song = audio_dir / "beethoven_op18no4_minor_44k_stereo.ogg"
    runs = {}
    for precision in ("float32", "bfloat16"):
        done = subprocess.run([sys.executable, "-m", "keras_music.predict", str(song), "--format", "json",
                               "--precision", precision], capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        (runs[precision],) = json.loads(done.stdout)
    single, half = (np.array(list(runs[p]["probabilities"].values())) for p in ("float32", "bfloat16"))
    assert np.abs(single - half).max() <= 0.05 and runs["float32"]["quadrant"] == runs["bfloat16"]["quadrant"]
    msd = [np.array(list(runs[p]["tag_probabilities"]["msd"].values())) for p in ("float32", "bfloat16")]
    assert np.abs(msd[0] - msd[1]).max() <= 0.05
    if native_bfloat16():
        assert np.abs(single - half).max() > 0
