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
    tagger = km.Tagger.from_export(tmp_path / "models" / "mine")
    assert tagger.path == export and tagger.labels == json.loads((run.path / "config.json").read_text())["tags"]


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
