"""The Python API at the package root: its docstring examples run, and `Tagger` gives what `predict` gives."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_music as km

REPO = Path(__file__).resolve().parents[1]


def run_examples(obj, globs: dict) -> doctest.TestResults:
    """Run the `>>>` examples of `obj`'s docstring (and its methods') with `globs`; fail on any failure."""
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    module = sys.modules[obj.__module__]
    tests = [t for t in finder.find(obj, module=module, globs={**vars(module), **globs}) if t.examples]
    assert tests, f"{obj!r} has no runnable example in its docstring"
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} example(s) of {obj!r} failed (see the output above)"
    return results


def test_root_names_load_lazily_without_tensorflow():
    """`import keras_music` and `km.Tagger` start no TensorFlow (commands answer --help at once); a model does."""
    code = ("import sys, keras_music as km\nkm.Tagger, km.TagResult, km.ParameterError\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules), km.__version__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", km.__version__]


def test_every_public_name_is_documented_and_no_root_name_shadows_a_command():
    from keras_music.cli import COMMANDS

    for name in km.__all__:
        if name != "__version__":
            assert (getattr(km, name).__doc__ or "").strip(), f"km.{name} has no docstring"
    modules = {module.rsplit(".", 1)[-1] for module, _ in COMMANDS.values()}
    assert not modules & set(km.__all__), "a root name would be replaced by a CLI module once that is imported"


def test_light_examples():
    run_examples(km.ParameterError, {})
    run_examples(km.TagResult, {})


@pytest.mark.slow
def test_tagger_and_store_examples(audio_dir, tmp_path):
    """The examples of `Tagger` (the packaged preset, built on first use) and `FeatureStore.extract`."""
    song = audio_dir / "mozart_k545_bright_22k_mono_16bit.wav"
    run_examples(km.Tagger, {"SONG": song})
    run_examples(km.FeatureStore, {"MUSIC": audio_dir, "TMP": tmp_path})


@pytest.mark.slow
def test_fit_tagger_example_and_export(tmp_path):
    """`fit_tagger` on the demo data (str paths), then `run.export` -> a Tagger of that export."""
    run_examples(km.fit_tagger, {"TMP": tmp_path})
    run = km.TrainedRun.load(str(tmp_path / "run"))
    export = run.export(str(tmp_path / "models" / "mine"))
    assert export == tmp_path / "models" / "mine" / "1" and (export / "saved_model.pb").is_file()
    again = run.export(tmp_path / "models" / "mine", data="demo")  # thresholds tuned on data given anew
    assert again == tmp_path / "models" / "mine" / "2"
    tagger = km.Tagger.from_export(tmp_path / "models" / "mine")
    assert tagger.path == again and tagger.labels == json.loads((run.path / "config.json").read_text())["tags"]


@pytest.mark.slow
def test_tagger_equals_predict_on_files_waveforms_and_folders(export, audio_dir, tmp_path, capsys):
    """`tag` of a file = its `predict` record; `tag` of the decoded waveform = `tag` of the file; `embed` is
    the record's embedding; `tag_files` writes predict's records, resumes, and yields failures."""
    import soundfile

    from keras_music.predict import main

    tagger = km.Tagger.from_export(str(export.parent))
    song = audio_dir / "mozart_k545_bright_44k_stereo_16bit.flac"
    assert main([str(song), "--model", str(export), "--format", "json", "--embeddings", "--per-window",
                 "--out", str(tmp_path / "p.json")]) == 0
    (record,) = json.loads((tmp_path / "p.json").read_text())

    result = tagger.tag(song, embeddings=True)
    assert result.to_record(windows=True) == record  # the same numbers, to the last digit written
    assert result.file == str(song) and len(result.windows) > 1 and result.arousal is None  # not a 4Q model
    assert all(0 <= w.start < w.end <= result.seconds for w in result.windows)

    samples, rate = soundfile.read(song, dtype="float32")  # (n, 2) at 44.1 kHz
    from_waveform = tagger.tag(samples, sample_rate=rate)
    assert from_waveform.file is None and from_waveform.seconds == result.seconds
    np.testing.assert_allclose(list(from_waveform.probabilities.values()), list(result.probabilities.values()),
                               atol=1e-6)
    np.testing.assert_allclose(tagger.embed(str(song)), record["embedding"], atol=1e-7)

    with pytest.raises(km.ParameterError, match="sample_rate=None"):
        tagger.tag(samples)
    with pytest.raises(km.ParameterError, match="audio='.*nothing.mp3': no such file"):
        tagger.tag(tmp_path / "nothing.mp3")
    (tmp_path / "broken.mp3").write_bytes(b"ID3 not audio")
    with pytest.raises(ValueError, match="broken.mp3"):
        tagger.tag(tmp_path / "broken.mp3")

    folder = tmp_path / "music"
    folder.mkdir()
    for name in ("mozart_k545_bright_22k_mono_16bit.wav", "bach_chorale_bwv269_calm_22k_mono_64k.mp3"):
        (folder / name).write_bytes((audio_dir / name).read_bytes())
    (folder / "broken.mp3").write_bytes(b"ID3 not audio")
    out = tmp_path / "tags.jsonl"
    first = list(tagger.tag_files([folder], out=out))
    assert sorted(Path(r.file).name for r in first) == ["bach_chorale_bwv269_calm_22k_mono_64k.mp3", "broken.mp3",
                                                        "mozart_k545_bright_22k_mono_16bit.wav"]
    assert [r.ok for r in first].count(False) == 1 and "broken.mp3" in next(r.error for r in first if not r.ok)
    assert main([str(folder), "--model", str(export), "--out", str(out)]) == 1  # predict resumes it: nothing to do
    assert "3 file(s) already there" in capsys.readouterr().err
    assert list(tagger.tag_files([str(folder)], out=str(out))) == []  # resumed: all there
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and {km.TagResult.from_record(r).file for r in records} == {r.file for r in first}


def test_parameter_errors_pickle_and_name_flags_only_as_whole_words():
    import pickle

    error = km.ParameterError("data", "x", "metadata=foo and split_seed=1 with data=demo")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is km.ParameterError and str(again) == str(error)
    assert error.for_flags({"data": "--data", "seed": "--seed"}) == (
        "--data 'x': metadata=foo and split_seed=1 with --data demo")


@pytest.mark.slow
def test_waveforms_of_every_common_layout_and_early_stops(export, audio_dir, tmp_path):
    """A waveform as (n,), (n, 2), (2, n) or int16 PCM tags as its file does; bad ones are ParameterErrors;
    stopping a tag_files loop early stops its reader threads; its arguments are checked when called."""
    import threading

    import soundfile

    tagger = km.Tagger.from_export(export)
    song = audio_dir / "mozart_k545_bright_44k_stereo_16bit.flac"
    expected = np.array(list(tagger.tag(song).probabilities.values()))
    stereo, rate = soundfile.read(song, dtype="float32")
    pcm, _ = soundfile.read(song, dtype="int16")
    for name, waveform in {"(n, 2)": stereo, "(2, n)": stereo.T, "int16 (n, 2)": pcm}.items():
        got = np.array(list(tagger.tag(waveform, sample_rate=rate).probabilities.values()))
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)
    mono = tagger.tag(stereo.mean(axis=1), sample_rate=rate)
    np.testing.assert_allclose(list(mono.probabilities.values()), expected, atol=1e-5)
    for bad, match in [(np.zeros(rate), "entirely silent"), (np.full(rate, np.nan), "NaN"),
                       (np.ones((3, 3, 3)), "expected samples"), (np.array(["a"]), "expected float samples")]:
        with pytest.raises(km.ParameterError, match=match):
            tagger.tag(bad, sample_rate=rate)
    with pytest.raises(km.ParameterError, match="sample_rate=0"):
        tagger.tag(stereo, sample_rate=0)
    with pytest.raises(km.ParameterError, match="is a folder; tag_files tags folders"):
        tagger.tag(audio_dir)

    with pytest.raises(km.ParameterError, match="paths='.*nowhere': no such file or folder"):
        tagger.tag_files([tmp_path / "nowhere"])
    with pytest.raises(km.ParameterError, match="out='.*tags.json': tag_files appends"):
        tagger.tag_files([audio_dir], out=tmp_path / "tags.json")
    with pytest.raises(km.ParameterError, match="jobs=0"):
        tagger.tag_files([audio_dir], jobs=0)
    before = {t for t in threading.enumerate() if t.name.startswith("keras-music-read")}
    results = tagger.tag_files([audio_dir], jobs=2, batch_size=1)
    first = next(results)
    assert first.ok
    results.close()  # what `break` in a for loop does
    assert not {t for t in threading.enumerate() if t.name.startswith("keras-music-read")} - before


@pytest.mark.slow
def test_a_kept_unfinished_tag_files_loop_does_not_keep_the_process_alive(export, audio_dir):
    """A notebook that stops iterating keeps the generator: the process must still exit (daemon readers)."""
    code = (f"import keras_music as km\nresults = km.Tagger.from_export({str(export)!r}).tag_files("
            f"[{str(audio_dir)!r}] * 20, jobs=2, batch_size=1)\nprint(next(results).ok)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr[-2000:]
