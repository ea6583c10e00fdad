"""bench.predict: the 4-minute tracks are built from the clips in order (wrapping round), written as
44.1 kHz mono 16-bit WAVs of the clips' joined audio; rows say how many files and seconds a rate
came from; a wrong interpreter or document is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from bench.predict import TRACK_RATE, main, rate_row, track_groups, write_track

AUDIO = Path(__file__).resolve().parents[2].parent / "shared" / "audio"


def test_tracks_take_the_clips_in_order_and_wrap_round():
    assert track_groups(list("abcde"), tracks=2, clips_per_track=3) == [["a", "b", "c"], ["d", "e", "a"]]
    assert track_groups(["x"], tracks=2, clips_per_track=2) == [["x", "x"], ["x", "x"]]
    assert track_groups(list("ab"), tracks=0) == []


@pytest.mark.parametrize("files, tracks, clips", [([], 1, 8), (["a"], -1, 8), (["a"], 1, 0)])
def test_track_groups_refuses_what_makes_no_track(files, tracks, clips):
    with pytest.raises(ValueError, match="track_groups"):
        track_groups(files, tracks, clips)


def test_a_rate_row_names_its_count_and_wall_time():
    row = rate_row("floor", "floor", 100, 40.0)
    assert row == {"key": "floor", "measure": "floor: 100 files in 40 s", "value": 2.5, "unit": "files/s"}


def test_a_track_is_the_clips_joined_at_44_1_khz_mono_16_bit(tmp_path):
    clips = [AUDIO / "mozart_k545_bright_22k_mono_16bit.wav", AUDIO / "beethoven_op18no4_minor_44k_stereo.ogg"]
    seconds = write_track(clips, tmp_path / "track.wav")
    info = soundfile.info(tmp_path / "track.wav")
    expected = sum(soundfile.info(clip).duration for clip in clips)
    assert (info.samplerate, info.channels, info.subtype) == (TRACK_RATE, 1, "PCM_16")
    assert info.duration == pytest.approx(expected, abs=0.01) and seconds == pytest.approx(info.duration, abs=1e-6)


def test_a_missing_musicnn_interpreter_is_refused_before_the_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--musicnn-python", str(tmp_path / "python"), "--out", str(tmp_path / "predict.json")])
    assert exit.value.code == 2 and "no such interpreter" in capsys.readouterr().err


def test_a_document_without_the_block_is_refused_before_the_run(tmp_path):
    readme = tmp_path / "benchmarks.md"
    readme.write_text("# no blocks\n")
    with pytest.raises(ValueError, match="bench:predict"):
        main(["--readme", str(readme), "--out", str(tmp_path / "predict.json")])
